"""The screen pop of a caller the knowledge base did not settle (常见问题 → 0 or 2).

A caller who heard a recorded answer while waiting and then pressed 0 (an operator)
or 2 (back to the queue) reaches an agent: the pop says so, with the entries heard,
so the agent does not read the same answer out again. The call's `kb_offers` rows
are written as the IVR's knowledge-base flow writes them; the 0 is the caller name
the flow sets, as AMI's AgentCalled reports it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard.agent_pop import AgentDesk, kb_heard, pop_payload
from db.models import KbOffer
from db.session import unit_of_work
from ivr.kb_flow import OPERATOR_MARK
from kb.entries import EntryIn, import_entries, live_entries
from telephony.ami import AMIEvent
from tests.store.test_agent_workspace import Site, agent_in, answered, site  # noqa: F401

ENTRIES = [
    EntryIn(
        key=key,
        title=title,
        phrasings=[f"{title}呢", f"请问{title}", f"{title}啊"],
        keywords=[title[:2]],
        answer_zh=f"{title}的解答。",
        category="水电气暖",
        status="published",
    )
    for key, title in (("heating", "暖气不热找谁"), ("water", "停水了怎么办"))
]
PUBLISHED = datetime(2026, 1, 5, tzinfo=UTC)


def heard_on_the_call(sessions, uniqueid: str, heard: list[str], accepted: str = "") -> None:  # type: ignore[no-untyped-def]
    """Offers as the flow writes them: each entry offered, the chosen ones heard."""
    with unit_of_work(sessions) as session:
        import_entries(session, ENTRIES, "test", PUBLISHED)
        rows = {row.key: row for row in live_entries(session, PUBLISHED.date() + timedelta(1))}
        for key in ("heating", "water", *heard):
            session.add(
                KbOffer(
                    entry_id=rows[key].id,
                    channel="queue",
                    uniqueid=uniqueid,
                    caller_number="13911112222",
                    heard=key in heard,
                    accepted=key == accepted,
                )
            )


def test_the_pop_names_the_answer_a_caller_heard_before_coming_to_the_agent(
    site: Site,  # noqa: F811
) -> None:
    client, _, _, sessions = site
    heard_on_the_call(sessions, "1800000001.1", ["heating"])
    answered(sessions, "1800000001.1")
    agent_in(client)
    pop = client.get("/agent/pop", params={"uniqueid": "1800000001.1"}).json()
    assert pop["kb"]["entries"] == [{"key": "heating", "title": "暖气不热找谁"}]
    assert "「暖气不热找谁」" in pop["queue"] and OPERATOR_MARK in pop["queue"]
    assert "停水了怎么办" not in pop["queue"]  # offered in the list, never heard


def test_a_plain_call_has_no_knowledge_base_line(site: Site) -> None:  # noqa: F811
    client, _, _, sessions = site
    answered(sessions, "1800000002.1")
    agent_in(client)
    pop = client.get("/agent/pop", params={"uniqueid": "1800000002.1"}).json()
    assert pop["kb"] is None and OPERATOR_MARK not in (pop["queue"] or "")


def test_zero_after_an_answer_says_the_caller_asked_for_an_operator(site: Site) -> None:  # noqa: F811
    _, config, _, sessions = site
    heard_on_the_call(sessions, "1800000003.1", ["water", "heating"])
    with unit_of_work(sessions) as session:
        pop = pop_payload(
            session, config.tz, "1800000003.1", queue="hotline-agents", caller_name=OPERATOR_MARK
        )
        again = kb_heard(session, "1800000003.1")
    assert pop["kb"]["operator"] is True
    assert [e["key"] for e in pop["kb"]["entries"]] == ["heating", "water"]  # newest first
    assert pop["queue"].startswith("hotline-agents · ") and "按0" in pop["queue"]
    assert again is not None and again["operator"] is False and "按0" not in again["label"]


def test_an_accepted_answer_is_not_named_to_the_agent(site: Site) -> None:  # noqa: F811
    _, _, _, sessions = site
    heard_on_the_call(sessions, "1800000004.1", ["heating"], accepted="heating")
    with unit_of_work(sessions) as session:
        assert kb_heard(session, "1800000004.1") is None


def test_agent_called_keeps_the_caller_name_the_flow_set() -> None:
    desk = AgentDesk()
    desk.feed(
        AMIEvent(
            "AgentCalled",
            {
                "MemberName": "a1",
                "Uniqueid": "1800000005.1",
                "Linkedid": "1800000005.1",
                "Channel": "PJSIP/citizen-00000001",
                "CallerIDNum": "13911112222",
                "CallerIDName": OPERATOR_MARK,
                "Queue": "hotline-agents",
                "Interface": "PJSIP/a1",
            },
        )
    )
    ring = desk.ring("a1")
    assert ring is not None and ring.caller_name == OPERATOR_MARK


def test_the_workspace_pop_says_the_ringing_caller_pressed_zero(site: Site) -> None:  # noqa: F811
    """The caller name of the ring (AMI's AgentCalled) reaches the pop the agent's page reads."""
    client, _, _, sessions = site
    heard_on_the_call(sessions, "1800000006.1", ["heating"])
    answered(sessions, "1800000006.1")
    agent_in(client)
    desk = client.app.state.desk  # type: ignore[attr-defined]
    desk.feed(
        AMIEvent(
            "AgentCalled",
            {
                "MemberName": "a1",
                "Uniqueid": "1800000006.1",
                "Linkedid": "1800000006.1",
                "Channel": "PJSIP/citizen-00000006",
                "CallerIDNum": "13911112222",
                "CallerIDName": OPERATOR_MARK,
                "Queue": "hotline-agents",
                "Interface": "PJSIP/a1",
            },
        )
    )
    pop = client.get("/agent/pop", params={"uniqueid": "1800000006.1"}).json()
    assert pop["kb"]["operator"] is True and "按0" in pop["queue"]

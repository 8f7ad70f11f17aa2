"""The knowledge base in the agent's workspace (issue 23, item 6, agents first), through the
real app on a migrated store with the 40 sample entries published.

An agent searches (nothing recorded), uses an entry on a call they answered (one
`kb_offers` row: agent, the caller's number and Uniqueid, the query, the score, heard
and accepted) and files the 咨询 with it: the ticket is closed at once as 直办 已解释
with the entry's answer and category, the offer gets the ticket and the ticket page
names the entry's key and version. Calls are queue_log and call rows written here, as
in tests/store/test_agent_workspace.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig
from core.vocabulary import CallDirection, ClosedAs, EventKind, Handling, TicketStatus
from dashboard.agent_accounts import add_agent
from dashboard.app import create_app
from dashboard.auth import hash_password
from db.departments import department_by_code
from db.models import Call, KbEntry, KbOffer, QueueLogEntry, Ticket, TicketEvent
from db.session import unit_of_work
from db.tickets import ticket_for_call
from kb.entries import EntryIn, import_entries, load_file
from tests.support.console_city import PASSWORD, csrf_of, login
from tests.support.console_site import audit_rows, console_site

SAMPLE = Path(__file__).resolve().parents[2] / "kb" / "sample_entries.yaml"
NUMBER = "13911113333"
HEATING = "嗯那个我家暖汽不热找谁啊"  # a held-out phrasing of heating-not-warm
Site = tuple[TestClient, HotlineConfig, sessionmaker[Session]]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    config, _, _, sessions = console_site(tmp_path)
    published = [e.model_copy(update={"status": "published"}) for e in load_file(SAMPLE)]
    other_line = published[0].model_copy(
        update={"key": "heating-other-line", "lines": ["99999"], "answer_zh": "只在专线答复。"}
    )
    draft = published[0].model_copy(update={"key": "heating-draft", "status": "draft"})
    with unit_of_work(sessions) as session:
        import_entries(session, [*published, other_line, draft], "test")
        add_agent(session, config, "a1", hash_password(PASSWORD))
        add_agent(session, config, "a2", hash_password(PASSWORD))
    with TestClient(create_app(config, sessions), base_url="http://127.0.0.1") as client:
        yield client, config, sessions


def agent_in(client: TestClient, name: str = "a1") -> str:
    client.cookies.clear()
    assert login(client, name).status_code == 303
    return csrf_of(client, "/agent")


def answered(sessions: sessionmaker[Session], uniqueid: str, agent: str = "a1") -> None:
    """A call from NUMBER that agent answered (the call row and queue_log's CONNECT)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    with unit_of_work(sessions) as session:
        session.add(
            Call(
                uniqueid=uniqueid,
                direction=CallDirection.INBOUND,
                caller_number=NUMBER,
                did="12345",
                started_at=start,
                answered_at=start,
                last_step="queue",
            )
        )
        for at, event, who in ((start, "ENTERQUEUE", "NONE"), (start, "CONNECT", agent)):
            session.add(
                QueueLogEntry(
                    at=at, callid=uniqueid, queue="hotline-agents", agent=who, event=event
                )
            )


def entry_id(sessions: sessionmaker[Session], key: str) -> int:
    with unit_of_work(sessions) as session:
        found = session.scalar(select(KbEntry.id).where(KbEntry.key == key))
        assert found is not None
        return found


def offers(sessions: sessionmaker[Session]) -> list[KbOffer]:
    with unit_of_work(sessions) as session:
        rows = list(session.scalars(select(KbOffer).order_by(KbOffer.id)))
        session.expunge_all()
    return rows


def use(client: TestClient, csrf: str, entry: int, uniqueid: str = "", **extra: str):  # type: ignore[no-untyped-def]
    data = {"csrf": csrf, "entry_id": str(entry), "query": HEATING, "score": "0.52"}
    return client.post(
        "/agent/kb/use",
        data={**data, "uniqueid": uniqueid, **extra},
        headers={"accept": "application/json"},
    )


def file(client: TestClient, csrf: str, uniqueid: str, **fields: str):  # type: ignore[no-untyped-def]
    form = {
        "csrf": csrf,
        "uniqueid": uniqueid,
        "request_type": "consultation",
        "description": HEATING,
        "handling": "dispatch",  # the form's default: a used entry makes a 咨询 直办
        **fields,
    }
    return client.post("/agent/file", data=form, headers={"accept": "application/json"})


def test_an_agent_searches_and_nothing_is_recorded(site: Site) -> None:
    client, config, sessions = site
    agent_in(client)
    found = client.get("/kb/search", params={"q": HEATING}).json()
    assert found["threshold"] == config.kb.threshold
    first = found["matches"][0]
    assert first["key"] == "heating-not-warm" and first["offered"] is True
    assert first["version"] == 1 and first["category"] and first["answer_zh"]
    keys = {m["key"] for m in found["matches"]}
    assert not keys & {"heating-other-line", "heating-draft"}  # another line's, a draft
    assert client.get("/agent").text.count('id="kb-q"') == 1  # the workspace's search box
    assert "Alt+K" in client.get("/agent").text
    assert offers(sessions) == []  # showing proposals records nothing


def test_a_consultation_answered_from_an_entry_closes_as_direct(site: Site) -> None:
    client, _, sessions = site
    answered(sessions, "1800000100.1")
    csrf = agent_in(client)
    heating = entry_id(sessions, "heating-not-warm")
    used = use(client, csrf, heating, "1800000100.1")
    assert used.status_code == 200, used.text
    data = used.json()
    assert data["key"] == "heating-not-warm" and data["version"] == 1
    [offer] = offers(sessions)
    assert (offer.entry_id, offer.channel, offer.caller_number, offer.uniqueid) == (
        heating,
        "agent",
        NUMBER,
        "1800000100.1",
    )
    assert offer.query == HEATING and offer.score == pytest.approx(0.52)
    assert offer.heard and offer.accepted and offer.ticket_id is None
    assert [a.detail for a in audit_rows(sessions, "agent_kb_use")] == [
        "heating-not-warm v1 call 1800000100.1"
    ]

    done = file(client, csrf, "1800000100.1", kb_offer=str(offer.id))
    assert done.status_code == 200, done.text
    assert done.json()["handling"] == "direct" and done.json()["status"] == "closed"
    with unit_of_work(sessions) as session:
        ticket = ticket_for_call(session, "1800000100.1")
        entry = session.get(KbEntry, heating)
        assert ticket is not None and entry is not None
        assert ticket.status == TicketStatus.CLOSED and ticket.handling == Handling.DIRECT
        assert ticket.closed_as == ClosedAs.EXPLAINED and ticket.department_id is None
        assert ticket.reply == entry.answer_zh  # the agent wrote none: the entry's answer
        assert (ticket.category, ticket.category_source) == (entry.category, "staff")
        assert session.get(KbOffer, offer.id).ticket_id == ticket.id  # type: ignore[union-attr]
        note = session.scalar(
            select(TicketEvent.note).where(
                TicketEvent.ticket_id == ticket.id, TicketEvent.kind == EventKind.CLOSED
            )
        )
        number = ticket.number
    assert note is not None and "heating-not-warm v1" in note and "直办" in note
    assert "heating-not-warm v1" in client.get(f"/tickets/{number}").text  # the ticket page
    assert len(audit_rows(sessions, "agent_file_direct")) == 1
    # the offer is on its ticket now: it answers no other call
    answered(sessions, "1800000100.2")
    again = file(client, csrf, "1800000100.2", kb_offer=str(offer.id))
    assert again.status_code == 422


def test_the_agents_reply_and_category_win_and_a_complaint_keeps_its_outcome(site: Site) -> None:
    client, _, sessions = site
    answered(sessions, "1800000101.1")
    answered(sessions, "1800000101.2")
    csrf = agent_in(client)
    fee = use(client, csrf, entry_id(sessions, "heating-fee"), "1800000101.1").json()
    done = file(client, csrf, "1800000101.1", kb_offer=str(fee["offer_id"]),
                reply="按面积每平方米收费，详见供热公司公告。", category="供暖")  # fmt: skip
    assert done.status_code == 200, done.text
    with unit_of_work(sessions) as session:
        unit = department_by_code(session, "S1")
        assert unit is not None
        unit_id = unit.id
    ticket = ticket_of(sessions, "1800000101.1")
    assert ticket.reply == "按面积每平方米收费，详见供热公司公告。" and ticket.category == "供暖"
    assert ticket.closed_as == ClosedAs.EXPLAINED
    # an entry read out on a complaint is linked, but the agent's 派单 stands
    noise = use(client, csrf, entry_id(sessions, "noise-complaint"), "1800000101.2").json()
    done = file(client, csrf, "1800000101.2", request_type="complaint",
                kb_offer=str(noise["offer_id"]), department_id=str(unit_id))  # fmt: skip
    assert done.status_code == 200, done.text
    ticket = ticket_of(sessions, "1800000101.2")
    assert ticket.status == TicketStatus.DISPATCHED and ticket.department_id == unit_id
    assert offers(sessions)[-1].ticket_id == ticket.id


def test_an_entry_used_before_the_call_was_bound_takes_the_calls_number(site: Site) -> None:
    client, _, sessions = site
    csrf = agent_in(client)
    used = use(client, csrf, entry_id(sessions, "id-card"))  # no call bound yet
    assert used.status_code == 200, used.text
    assert offers(sessions)[0].uniqueid is None
    answered(sessions, "1800000102.1")
    done = file(client, csrf, "1800000102.1", kb_offer=str(used.json()["offer_id"]))
    assert done.status_code == 200, done.text
    [offer] = offers(sessions)
    assert (offer.uniqueid, offer.caller_number) == ("1800000102.1", NUMBER)
    assert offer.ticket_id == ticket_of(sessions, "1800000102.1").id


def test_what_an_agent_may_not_use_and_who_may_not_use_at_all(site: Site) -> None:
    client, _, sessions = site
    answered(sessions, "1800000103.1", agent="a2")  # a2's call, not a1's
    answered(sessions, "1800000103.2")
    csrf = agent_in(client)
    heating = entry_id(sessions, "heating-not-warm")
    assert use(client, csrf, entry_id(sessions, "heating-draft")).status_code == 404
    assert use(client, csrf, entry_id(sessions, "heating-other-line")).status_code == 404
    assert use(client, csrf, 999999).status_code == 404
    assert use(client, csrf, heating, "1800000103.1").status_code == 403  # not their call
    assert use(client, "wrong", heating).status_code == 403  # CSRF
    assert offers(sessions) == []
    # an offer made on one call does not close another
    one = use(client, csrf, heating, "1800000103.2").json()
    answered(sessions, "1800000103.3")
    other = file(client, csrf, "1800000103.3", kb_offer=str(one["offer_id"]))
    assert other.status_code == 422 and "知识库" in other.json()["detail"]
    with unit_of_work(sessions) as session:
        assert ticket_for_call(session, "1800000103.3") is None  # nothing half-filed
    # supervisors, staff and admins search (/kb/search) but never use on a call
    for user in ("boss", "s1"):
        token = agent_in_as(client, user)
        assert client.get("/kb/search", params={"q": HEATING}).status_code == 200
        assert use(client, token, heating).status_code == 403, user
    assert len(offers(sessions)) == 1


def agent_in_as(client: TestClient, username: str) -> str:
    client.cookies.clear()
    assert login(client, username).status_code == 303
    return csrf_of(client, "/kb")


def ticket_of(sessions: sessionmaker[Session], uniqueid: str) -> Ticket:
    with unit_of_work(sessions) as session:
        ticket = ticket_for_call(session, uniqueid)
        assert ticket is not None
        session.expunge(ticket)
    return ticket


def test_the_entry_versions_an_offer_points_at_stay_the_text_read_out(site: Site) -> None:
    """An entry edited after it was read out: the offer keeps the version the caller heard."""
    client, _, sessions = site
    answered(sessions, "1800000104.1")
    csrf = agent_in(client)
    old = entry_id(sessions, "gas-leak")
    used = use(client, csrf, old, "1800000104.1").json()
    with unit_of_work(sessions) as session:
        entry = session.get(KbEntry, old)
        assert entry is not None
        changed = EntryIn(
            key="gas-leak",
            title=entry.title,
            phrasings=["闻到燃气味怎么办", "燃气泄漏找谁", "家里漏气打什么电话"],
            keywords=["燃气"],
            answer_zh="立即开窗通风，离开房间后拨打燃气抢修电话。",
            status="published",
        )
        import_entries(session, [changed], "test")
    done = file(client, csrf, "1800000104.1", kb_offer=str(used["offer_id"]))
    assert done.status_code == 200, done.text
    ticket = ticket_of(sessions, "1800000104.1")
    assert ticket.reply == used["answer_zh"]  # the version read out, not the newer one
    with unit_of_work(sessions) as session:
        assert session.get(KbOffer, used["offer_id"]).entry_id == old  # type: ignore[union-attr]
        note = session.scalar(
            select(TicketEvent.note).where(
                TicketEvent.ticket_id == ticket.id, TicketEvent.kind == EventKind.CLOSED
            )
        )
    assert note is not None and "gas-leak v1" in note


def test_an_entry_one_agent_used_with_no_call_is_not_another_agents(site: Site) -> None:
    """The offer is the agent's: a2 cannot file a1's unbound use onto a2's call (it could
    before the offer recorded its agent)."""
    client, _, sessions = site
    csrf = agent_in(client, "a1")
    used = use(client, csrf, entry_id(sessions, "id-card"))  # no call bound
    assert used.status_code == 200, used.text
    assert offers(sessions)[0].agent_id is not None
    answered(sessions, "1800000105.1", agent="a2")
    token = agent_in(client, "a2")
    stolen = file(client, token, "1800000105.1", kb_offer=str(used.json()["offer_id"]))
    assert stolen.status_code == 422 and "知识库" in stolen.json()["detail"]
    assert offers(sessions)[0].ticket_id is None

"""The agent's workspace `/agent` (issue 20), through the real app on a migrated store.

No Asterisk and no browser: the calls an agent answered are queue_log rows and
call rows written here, as the queue_log reader and the IVR would write them;
the hang-up handler's ticket is made by the IVR's own `call_end`. The state
buttons are shown to reach AMI (a fake manager records the actions) and to say
so clearly when Asterisk is not there; that the pop follows a real ring is the
live tests' business, not this file's.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig
from core.deadlines import due_at
from core.vocabulary import CallDirection, ClosedAs, Handling, TicketStatus, Urgency
from dashboard.agent_accounts import add_agent
from dashboard.app import create_app
from dashboard.auth import hash_password
from db.departments import department_by_code
from db.models import Call, QueueLogEntry, Ticket, TicketDraft
from db.session import unit_of_work
from db.tickets import create_ticket, ticket_for_call
from ivr.store import CallEnd, IvrOperations
from tests.support.console_city import PASSWORD, ConsoleCity, csrf_of, login
from tests.support.console_site import audit_rows, console_site
from tests.support.fake_ami import BANNER, FakeManager

NUMBER = "13911112222"
Site = tuple[TestClient, HotlineConfig, ConsoleCity, sessionmaker[Session]]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    config, _, city, sessions = console_site(tmp_path)
    with unit_of_work(sessions) as session:
        add_agent(session, config, "a1", hash_password(PASSWORD))
        add_agent(session, config, "a2", hash_password(PASSWORD))
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        yield client, config, city, sessions


def agent_in(client: TestClient, name: str = "a1") -> str:
    assert login(client, name).status_code == 303
    return csrf_of(client, "/agent")


def answered(
    sessions: sessionmaker[Session], uniqueid: str, agent: str = "a1", number: str = NUMBER
) -> datetime:
    """A call that queued 12 s, rang agent 3 s and talked 95 s (queue_log and the call row)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    with unit_of_work(sessions) as session:
        session.add(
            Call(
                uniqueid=uniqueid,
                direction=CallDirection.INBOUND,
                caller_number=number,
                did="12345",
                started_at=start,
                answered_at=start,
                last_step="queue",
            )
        )
        for at, event, data in (
            (start, "ENTERQUEUE", ("", number, "1")),
            (start + timedelta(seconds=15), "CONNECT", ("12", f"{uniqueid}9", "3")),
            (start + timedelta(seconds=110), "COMPLETEAGENT", ("12", "95", "1")),
        ):
            session.add(
                QueueLogEntry(
                    at=at,
                    callid=uniqueid,
                    queue="hotline-agents",
                    agent=agent if event != "ENTERQUEUE" else "NONE",
                    event=event,
                    data1=data[0] or None,
                    data2=data[1] or None,
                    data3=data[2] or None,
                )
            )
    return start


def file(client: TestClient, csrf: str, uniqueid: str, **fields: str):  # type: ignore[no-untyped-def]
    form = {
        "csrf": csrf,
        "uniqueid": uniqueid,
        "request_type": "complaint",
        "category": "城市管理",
        "urgency": "emergency",
        "place": "人民路 1 号",
        "description": "路灯坏了三天",
        "handling": "dispatch",
        **fields,
    }
    return client.post("/agent/file", data=form, headers={"accept": "application/json"})


def ticket_of(sessions: sessionmaker[Session], uniqueid: str) -> Ticket:
    with unit_of_work(sessions) as session:
        ticket = ticket_for_call(session, uniqueid)
        assert ticket is not None
        session.expunge(ticket)
    return ticket


def test_an_agent_lands_on_the_workspace(site: Site) -> None:
    client, _, _, _ = site
    assert login(client, "a1").headers["location"] == "/"
    page = client.get("/")  # follows to /agent
    assert page.status_code == 200 and page.url.path == "/agent"
    for dom_id in ("state", "pop", "pop-tickets", "ticket-form", "answer", "file", "f-uniqueid"):
        assert f'id="{dom_id}"' in page.text, dom_id
    assert "F2" in page.text and "F8" in page.text  # the shortcuts are listed
    assert '<script type="module" src="/static/agent.js">' in page.text
    assert "password" not in page.text.lower().replace('type="password"', "")
    current = client.get("/agent/current").json()
    assert current["state"]["state"] == "logged_out" and current["pop"] is None


def test_agents_and_supervisors_keep_to_their_own_pages(site: Site) -> None:
    client, _, city, _ = site
    agent_in(client)
    for path in ("/rates", "/calls", "/live", "/robot", "/admin/audit", "/live/events"):
        assert client.get(path).status_code == 403, path
    assert client.get(f"/tickets/{city.tickets['S1']}").status_code == 403  # not theirs
    client.cookies.clear()
    login(client, "boss")
    assert client.get("/agent").status_code == 403
    assert client.get("/agent/current").status_code == 403
    assert client.get("/agent/phone").status_code == 403


def test_the_phone_secret_goes_to_the_agent_as_json_only(site: Site) -> None:
    client, config, _, _ = site
    agent_in(client)
    seat = client.get("/agent/phone")
    assert seat.headers["cache-control"] == "no-store"
    data = seat.json()
    assert data["uri"].startswith("sip:agent-w") and data["wsUrl"].endswith(
        f":{config.agents.wss_port}/ws"
    )
    assert data["password"] and data["password"] not in client.get("/agent").text


def test_the_pop_lists_earlier_tickets_open_first_with_a_warning(site: Site) -> None:
    client, _, _, sessions = site
    now = datetime.now(UTC)
    with unit_of_work(sessions) as session:
        old = create_ticket(
            session,
            caller_number=NUMBER,
            local_day=now.date(),
            accepted_at=now - timedelta(days=9),
            category="噪音",
        )
        old.status, old.closed_at = TicketStatus.CLOSED, now - timedelta(days=5)
        create_ticket(
            session,
            caller_number=NUMBER,
            local_day=now.date(),
            accepted_at=now - timedelta(days=20),
            category="供水",
        )
        numbers = list(session.scalars(select(Ticket.number).order_by(Ticket.id.desc()).limit(2)))
    answered(sessions, "1800000000.1")
    agent_in(client)
    pop = client.get("/agent/pop", params={"uniqueid": "1800000000.1"}).json()
    assert pop["number"] == NUMBER  # agents see the whole number
    assert [t["number"] for t in pop["tickets"]] == numbers  # the open (older) one first
    assert [t["open"] for t in pop["tickets"]] == [True, False]
    assert numbers[0] in pop["warning"] and "未办结" in pop["warning"]
    assert "未知" in pop["warning"]  # no category known yet: says it may be another matter
    # a call the agent never had shows nothing
    assert client.get("/agent/pop", params={"uniqueid": "1800000000.2"}).status_code == 403


def test_dispatch_fills_the_calls_ticket_with_agent_unit_due_and_queue_figures(site: Site) -> None:
    client, config, _, sessions = site
    start = answered(sessions, "1800000001.1")
    csrf = agent_in(client)
    with unit_of_work(sessions) as session:
        unit = department_by_code(session, "S1")
        assert unit is not None
        unit_id, unit_name = unit.id, unit.name
    done = file(client, csrf, "1800000001.1", department_id=str(unit_id))
    assert done.status_code == 200, done.text
    assert done.json()["unit"] == unit_name
    ticket = ticket_of(sessions, "1800000001.1")
    assert ticket.status == TicketStatus.DISPATCHED and ticket.department_id == unit_id
    assert ticket.source == "agent" and ticket.handling == Handling.DISPATCH
    assert ticket.caller_number == NUMBER and ticket.place == "人民路 1 号"
    assert ticket.accepted_at == start
    assert ticket.due_at == due_at(start, Urgency.EMERGENCY, config.deadlines, config.tz)
    assert (ticket.queue, ticket.wait_seconds, ticket.talk_seconds) == ("hotline-agents", 12, 95)
    with unit_of_work(sessions) as session:
        from agents.store import agent_of_user
        from dashboard.users import user_by_name

        user = user_by_name(session, "a1")
        assert user is not None
        agent = agent_of_user(session, user.id)
        assert agent is not None and ticket.agent_id == agent.id
    assert [r.detail for r in audit_rows(sessions, "agent_file_dispatch")] == [
        f"ticket {ticket.number} call 1800000001.1"
    ]
    # the same call cannot be filed twice
    assert file(client, csrf, "1800000001.1", department_id=str(unit_id)).status_code == 409


def test_a_call_the_agent_never_had_is_refused(site: Site) -> None:
    client, _, _, sessions = site
    answered(sessions, "1800000002.1", agent="a2")  # a2 answered it, not a1
    csrf = agent_in(client)
    refused = file(
        client, csrf, "1800000002.1", handling="direct", closed_as="explained", reply="x"
    )
    assert refused.status_code == 403
    assert file(client, csrf, "no-such-call", handling="direct").status_code == 403
    saved = client.post(
        "/agent/draft", data={"csrf": csrf, "uniqueid": "1800000002.1", "body": "{}"}
    )
    assert saved.status_code == 403
    with unit_of_work(sessions) as session:
        assert ticket_for_call(session, "1800000002.1") is None
    # and nothing without the CSRF token
    answered(sessions, "1800000002.2")
    assert file(client, "", "1800000002.2", handling="direct").status_code == 403


def test_a_draft_survives_the_hang_up_and_fills_the_same_ticket(site: Site) -> None:
    client, config, _, sessions = site
    answered(sessions, "1800000003.1")
    csrf = agent_in(client)
    body = json.dumps({"request_type": "help", "description": "家里停水", "handling": "direct"})
    saved = client.post(
        "/agent/draft", data={"csrf": csrf, "uniqueid": "1800000003.1", "body": body}
    )
    assert saved.status_code == 200, saved.text
    # the caller hangs up: the hang-up handler makes the call's ticket (source "agent")
    with unit_of_work(sessions) as session:
        IvrOperations(config).call_end(
            session,
            CallEnd("1800000003.1", NUMBER, "12345", None, [], "16", "agent", agent="a1"),
        )
    made = ticket_of(sessions, "1800000003.1")
    assert made.source == "agent" and made.status == TicketStatus.ACCEPTED
    # a reload restores the draft, bound to that call
    current = client.get("/agent/current").json()
    assert [(d["uniqueid"], json.loads(d["body"])) for d in current["drafts"]] == [
        ("1800000003.1", json.loads(body))
    ]
    assert client.get("/agent/draft", params={"uniqueid": "1800000003.1"}).json()["body"] == body
    done = file(
        client,
        csrf,
        "1800000003.1",
        request_type="help",
        description="家里停水",
        handling="direct",
        closed_as="explained",
        reply="已告知停水检修至今晚 8 点",
    )
    assert done.status_code == 200, done.text
    assert done.json()["number"] == made.number
    with unit_of_work(sessions) as session:
        count = session.scalar(select(func.count()).where(Ticket.origin_uniqueid == "1800000003.1"))
        drafts = session.scalar(select(func.count()).select_from(TicketDraft))
    assert (count, drafts) == (1, 0)
    ticket = ticket_of(sessions, "1800000003.1")
    assert ticket.status == TicketStatus.CLOSED and ticket.closed_as == ClosedAs.EXPLAINED
    assert ticket.handling == Handling.DIRECT and ticket.reply == "已告知停水检修至今晚 8 点"
    assert ticket.description == "家里停水" and ticket.talk_seconds == 95


def test_direct_needs_how_it_closed_and_a_reply(site: Site) -> None:
    client, _, _, sessions = site
    answered(sessions, "1800000004.1")
    csrf = agent_in(client)
    assert file(client, csrf, "1800000004.1", handling="direct", reply="ok").status_code == 422
    assert (
        file(client, csrf, "1800000004.1", handling="direct", closed_as="resolved").status_code
        == 409
    )
    done = file(
        client, csrf, "1800000004.1", handling="direct", closed_as="resolved", reply="已解决"
    )
    assert done.status_code == 200 and done.json()["status"] == "closed"
    assert ticket_of(sessions, "1800000004.1").closed_as == ClosedAs.RESOLVED


def test_merge_archives_the_new_ticket_into_the_callers_open_one(site: Site) -> None:
    client, _, _, sessions = site
    now = datetime.now(UTC)
    with unit_of_work(sessions) as session:
        target = create_ticket(
            session, caller_number=NUMBER, local_day=now.date(), category="城市管理"
        ).number
    answered(sessions, "1800000005.1")
    csrf = agent_in(client)
    pop = client.get("/agent/pop", params={"uniqueid": "1800000005.1"}).json()
    assert [t["number"] for t in pop["tickets"]] == [target]
    done = file(client, csrf, "1800000005.1", handling="merge", merge_into=target)
    assert done.status_code == 200, done.text
    merged = ticket_of(sessions, "1800000005.1")
    assert merged.status == TicketStatus.ARCHIVED and merged.handling == Handling.MERGE
    with unit_of_work(sessions) as session:
        original = session.scalars(select(Ticket).where(Ticket.number == target)).one()
        assert merged.merged_into_id == original.id and original.urge_count == 1


def test_a_confidential_ticket_hides_number_and_text_from_a_supervisor(site: Site) -> None:
    client, _, _, sessions = site
    answered(sessions, "1800000006.1")
    csrf = agent_in(client)
    done = file(
        client,
        csrf,
        "1800000006.1",
        handling="direct",
        closed_as="explained",
        reply="已转公安机关",
        description="举报邻居家暴",
        confidential="1",
    )
    number = done.json()["number"]
    own = client.get(f"/tickets/{number}")  # the agent who filed it sees it all
    assert own.status_code == 200 and NUMBER in own.text and "举报邻居家暴" in own.text
    client.cookies.clear()
    login(client, "a2")
    assert client.get(f"/tickets/{number}").status_code == 403  # another agent: not theirs
    client.cookies.clear()
    login(client, "boss")
    page = client.get(f"/tickets/{number}")
    assert page.status_code == 200
    for secret in (NUMBER, "举报邻居家暴", "已转公安机关"):
        assert secret not in page.text
    assert "（保密）" in page.text


def test_state_buttons_say_clearly_when_asterisk_is_not_there(site: Site) -> None:
    client, _, _, sessions = site
    csrf = agent_in(client)
    refused = client.post("/agent/state", data={"csrf": csrf, "action": "ready"})
    assert refused.status_code == 503 and "Asterisk" in refused.json()["detail"]
    bad = client.post("/agent/state", data={"csrf": csrf, "action": "pause", "reason": "nap"})
    assert bad.status_code == 422
    assert audit_rows(sessions, "agent_ready_failed")


class AgreeingManager(FakeManager):
    """The project's fake manager, but answering every action with Success (the base
    one says Goodbye, which ends the link after the first action)."""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        await writer.drain()
        try:
            while True:
                block = (await reader.readuntil(b"\r\n\r\n")).decode()
                self.received.append(block)
                action_id = next(
                    (x.split(": ", 1)[1] for x in block.split("\r\n") if x.startswith("ActionID")),
                    "",
                )
                writer.write(
                    f"Response: Success\r\nActionID: {action_id}\r\nMessage: ok\r\n\r\n".encode()
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def test_state_buttons_send_queue_actions_over_ami(tmp_path: Path) -> None:
    """Only that the right actions go out (a fake manager): not that app_queue obeys."""
    loop = asyncio.new_event_loop()
    manager = AgreeingManager()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(manager.__aenter__())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(5)
    try:
        config, _, _, sessions = console_site(tmp_path)
        ami = config.asterisk.ami.model_copy(update={"port": manager.port})
        asterisk = config.asterisk.model_copy(update={"ami": ami})
        config = config.model_copy(update={"asterisk": asterisk})
        with unit_of_work(sessions) as session:
            add_agent(session, config, "a1", hash_password(PASSWORD))
        with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
            csrf = agent_in(client)
            done = client.post(
                "/agent/state", data={"csrf": csrf, "action": "pause", "reason": "training"}
            )
            assert done.status_code == 200, done.text
            assert done.json()["state"] == "paused" and done.json()["reason"] == "training"
            sent = "\n".join(manager.received)
            assert "Action: QueueAdd" in sent and "MemberName: a1" in sent
            assert "Action: QueuePause" in sent and "Reason: training" in sent
            assert (
                client.post("/agent/state", data={"csrf": csrf, "action": "logout"}).json()["state"]
                == "logged_out"
            )
            assert "Action: QueueRemove" in "\n".join(manager.received)
    finally:
        asyncio.run_coroutine_threadsafe(manager.__aexit__(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

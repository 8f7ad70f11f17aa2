"""Listening in from the console (issue 21): who may, what is checked before AMI is used.

No Asterisk: the console app on a migrated store, its AMI replaced by a fake. An
agent's, a staff member's and (by default `monitoring.listen_roles`) an admin's
request is refused with 403 and the fake fails the test if anything is asked of
it; a supervisor's request with a bad mode, phone or call is refused the same way.
A good request reaches AMI with exactly the validated values, and the session's
row and audit entry are written (the live test does it through the real Asterisk).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agents import listen as listen_module
from core.config import HotlineConfig
from dashboard import listen as listen_page
from dashboard.agent_accounts import add_agent
from dashboard.app import create_app
from dashboard.auth import hash_password
from db.models import ListenSession
from db.session import unit_of_work
from telephony.ami import AMIEvent, OriginateResult
from tests.support.console_city import PASSWORD, csrf_of, login
from tests.support.console_site import audit_rows, console_site

UNIQUEID = "1764897600.41"
CALLER = "Local/script9@sim-citizen-0000002a;1"
AGENT_CHANNEL = "PJSIP/agent-w001-0000002b"


class NoAMI:
    """An AMI client that fails the test if anything at all is asked of it."""

    def __getattr__(self, name: str) -> Any:
        pytest.fail(f"AMI was used ({name}) for a request that should have been refused")


class FakeAMI:
    """Records actions; Getvar BRIDGEPEER names the agent's channel; Originate answers."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, dict[str, str]]] = []
        self.originated: list[dict[str, Any]] = []
        self.queues: list[asyncio.Queue[AMIEvent]] = []

    async def connect(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def action(self, name: str, **fields: str) -> dict[str, str]:
        self.actions.append((name, fields))
        if name == "Getvar":
            return {"Value": AGENT_CHANNEL}
        if name == "Hangup":  # Asterisk would report the leg's end
            for queue in self.queues:
                queue.put_nowait(AMIEvent("Hangup", {"Uniqueid": "1764897600.44"}))
        return {}

    async def originate(self, channel: str, **kw: Any) -> OriginateResult:
        self.originated.append({"channel": channel, **kw})
        return OriginateResult("1", True, 4, "PJSIP/agent-w002-0000002c", "1764897600.44", {})

    def subscribe(self, *names: str, maxsize: int = 0) -> asyncio.Queue[AMIEvent]:
        queue: asyncio.Queue[AMIEvent] = asyncio.Queue()
        self.queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[AMIEvent]) -> None:
        pass


Site = tuple[TestClient, HotlineConfig, sessionmaker[Session]]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    config, _, _, sessions = console_site(tmp_path)
    with unit_of_work(sessions) as session:
        add_agent(session, config, "a1", hash_password(PASSWORD))  # seat agent-w001
    monkeypatch.setattr(listen_page, "ami_client", lambda config: NoAMI())
    app = create_app(config)
    # the desk saw a1 answer a citizen (what AMI's AgentCalled and AgentConnect say)
    for name in ("AgentCalled", "AgentConnect"):
        app.state.desk.feed(
            AMIEvent(
                name,
                {
                    "MemberName": "a1",
                    "Uniqueid": UNIQUEID,
                    "Linkedid": UNIQUEID,
                    "Channel": CALLER,
                    "CallerIDNum": "13911112222",
                    "Queue": "hotline-agents",
                    "Interface": "PJSIP/agent-w001",
                },
            )
        )
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client, config, sessions


def _ask(client: TestClient, token: str, **fields: str):  # type: ignore[no-untyped-def]
    form = {"uniqueid": UNIQUEID, "mode": "listen", "phone": "agent-w002", "csrf": token, **fields}
    return client.post("/live/listen", data=form, headers={"accept": "application/json"})


def _rows(sessions: sessionmaker[Session]) -> list[ListenSession]:
    with unit_of_work(sessions) as session:
        rows = list(session.scalars(select(ListenSession)))
        session.expunge_all()
    return rows


@pytest.mark.parametrize(("name", "page"), [("a1", "/agent"), ("s1", "/live"), ("admin", "/live")])
def test_agents_staff_and_admins_may_not_listen_in(site: Site, name: str, page: str) -> None:
    client, _, sessions = site
    assert login(client, name).status_code == 303
    token = csrf_of(client, page)
    for mode in ("listen", "whisper", "barge"):
        assert _ask(client, token, mode=mode).status_code == 403
    assert client.get("/live/listen").status_code == 403
    assert client.post("/live/listen/1/stop", data={"csrf": token}).status_code == 403
    assert _rows(sessions) == []
    if name != "a1":  # an agent is stopped before any console page (not even audited)
        refused = audit_rows(sessions, "listen_refused")
        assert refused and {r.username for r in refused} == {name}
    assert audit_rows(sessions, "listen_in") == []


@pytest.mark.parametrize(
    "fields",
    [
        {"mode": "spy"},
        {"mode": "listen,w"},
        {"mode": ""},
        {"phone": "agent-w001"},  # a1's own seat: an agent's phone never hears another call
        {"phone": "PJSIP/agent-w002"},
        {"phone": "agent-w999"},  # not a seat of this installation
        {"phone": "agent-w002&PJSIP/x"},
        {"phone": "sim-Boss"},
        {"phone": "Local/x@hotline-outbound"},
        {"uniqueid": "1764897600.99"},  # no live agent call of that id
        {"uniqueid": "1764897600.41,x"},
        {"csrf": "nope"},
    ],
)
def test_bad_values_never_reach_ami(site: Site, fields: dict[str, str]) -> None:
    client, _, sessions = site
    login(client, "boss")
    token = csrf_of(client, "/live")
    answer = _ask(client, token, **fields)
    assert answer.status_code in (403, 409, 422), answer.text
    assert _rows(sessions) == [] and audit_rows(sessions, "listen_in") == []


def test_a_supervisor_is_offered_the_agent_calls(site: Site) -> None:
    client, _, _ = site
    login(client, "boss")
    data = client.get("/live/listen").json()
    (call,) = data["calls"]
    assert call["uniqueid"] == UNIQUEID and call["agent"] == "a1"
    assert "channel" not in call and "interface" not in call
    assert [m for m, _ in data["modes"]] == ["listen", "whisper", "barge"]
    assert "agent-w001" not in data["phones"] and "agent-w002" in data["phones"]
    page = client.get("/live")
    assert 'id="listen"' in page.text and 'src="/static/live.js"' in page.text


@pytest.mark.parametrize(("mode", "tell", "quiet"), [("whisper", False, "q"), ("barge", True, "")])
def test_a_supervisor_listens_in_with_validated_values_only(
    site: Site, monkeypatch: pytest.MonkeyPatch, mode: str, tell: bool, quiet: str
) -> None:
    client, config, sessions = site
    monitoring = config.monitoring.model_copy(update={"tell_agent": tell})
    client.app.state.config = config.model_copy(update={"monitoring": monitoring})  # type: ignore[attr-defined]
    fake = FakeAMI()
    monkeypatch.setattr(listen_page, "ami_client", lambda config: fake)
    login(client, "boss")
    token = csrf_of(client, "/live")
    answer = _ask(client, token, mode=mode)
    assert answer.status_code == 200, answer.text
    assert fake.actions == [("Getvar", {"Channel": CALLER, "Variable": "BRIDGEPEER"})]
    (dialled,) = fake.originated
    assert dialled["channel"] == "PJSIP/agent-w002"
    assert (dialled["context"], dialled["exten"]) == (listen_module.CONTEXT, mode)
    assert dialled["variables"] == {"HOTLINE_SPY": AGENT_CHANNEL, "HOTLINE_SPY_QUIET": quiet}
    (row,) = _rows(sessions)
    assert (row.supervisor, row.uniqueid, row.mode, row.phone) == (
        "boss",
        UNIQUEID,
        mode,
        "agent-w002",
    )
    assert row.channel == "PJSIP/agent-w002-0000002c" and row.ended_at is None
    (entry,) = audit_rows(sessions, "listen_in")
    assert entry.username == "boss" and entry.object_id == row.id
    assert client.get("/live/listen").json()["sessions"][0]["id"] == row.id

    # stop: AMI hangs up exactly the supervisor's leg
    stopped = client.post(f"/live/listen/{row.id}/stop", data={"csrf": token})
    assert stopped.status_code == 200, stopped.text
    assert fake.actions[-1] == ("Hangup", {"Channel": "PJSIP/agent-w002-0000002c"})
    deadline = time.monotonic() + 10
    while _rows(sessions)[0].ended_at is None:  # the watch writes the end on the Hangup
        assert time.monotonic() < deadline, "the session's end was not written"
        time.sleep(0.05)
    (row,) = _rows(sessions)
    assert row.ended_at is not None and row.ended_at >= row.started_at
    assert client.post(f"/live/listen/{row.id}/stop", data={"csrf": token}).status_code == 404
    assert len(audit_rows(sessions, "listen_in")) == 1

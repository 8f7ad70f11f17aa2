"""Who may end a listening-in session (结束监听): its own supervisor, or an admin.

A supervisor stops only the sessions they started; another supervisor's stop is
refused with 403, audited `listen_refused`, and AMI is not asked to hang up
anything. An admin may stop any session, but only when admins may listen in at
all (`monitoring.listen_roles`; by default they may not, and get 403 like any
other refused role). The list of sessions `/live/listen` offers to stop follows
the same rule. No Asterisk: the console app with a fake AMI (as
`test_listen_refusals`).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig
from dashboard import listen as listen_page
from dashboard.agent_accounts import add_agent
from dashboard.app import create_app
from dashboard.auth import hash_password
from dashboard.users import add_user
from db.models import ListenSession
from db.session import unit_of_work
from telephony.ami import AMIEvent
from tests.store.test_listen_refusals import CALLER, UNIQUEID, FakeAMI
from tests.support.console_city import PASSWORD, csrf_of, login
from tests.support.console_site import audit_rows, console_site

LEG = "PJSIP/agent-w002-0000002c"  # the fake's supervisor leg


def _site(tmp_path: Path, listen_roles: list[str]) -> tuple[TestClient, sessionmaker[Session]]:
    config, _, _, sessions = console_site(tmp_path)
    monitoring = config.monitoring.model_copy(update={"listen_roles": listen_roles})
    config = config.model_copy(update={"monitoring": monitoring})
    with unit_of_work(sessions) as session:
        add_agent(session, config, "a1", hash_password(PASSWORD))  # seat agent-w001
        add_user(session, "boss2", hash_password(PASSWORD), "supervisor", None)
    app = create_app(config)
    for name in ("AgentCalled", "AgentConnect"):  # a1 is talking with a citizen
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
    return TestClient(app, base_url="http://127.0.0.1"), sessions


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeAMI:
    found = FakeAMI()
    monkeypatch.setattr(listen_page, "ami_client", lambda config: found)
    return found


def _start(client: TestClient) -> int:
    """boss listens in; the session's id."""
    assert login(client, "boss").status_code == 303
    token = csrf_of(client, "/live")
    form = {"uniqueid": UNIQUEID, "mode": "listen", "phone": "agent-w002", "csrf": token}
    answer = client.post("/live/listen", data=form)
    assert answer.status_code == 200, answer.text
    client.cookies.clear()
    return int(answer.json()["session"])


def _stop(client: TestClient, who: str, session_id: int) -> int:
    client.cookies.clear()
    assert login(client, who).status_code == 303
    token = csrf_of(client, "/live")
    return client.post(f"/live/listen/{session_id}/stop", data={"csrf": token}).status_code


def _ended(sessions: sessionmaker[Session], session_id: int) -> bool:
    with unit_of_work(sessions) as session:
        row = session.get_one(ListenSession, session_id)
        return row.ended_at is not None


def _wait_ended(sessions: sessionmaker[Session], session_id: int) -> None:
    deadline = time.monotonic() + 10
    while not _ended(sessions, session_id):  # the leg's watch writes the end on its Hangup
        assert time.monotonic() < deadline, "the session's end was not written"
        time.sleep(0.05)


def _hangups(fake: FakeAMI) -> list[dict[str, str]]:
    return [fields for name, fields in fake.actions if name == "Hangup"]


def test_another_supervisor_may_not_stop_a_session(tmp_path: Path, fake: FakeAMI) -> None:
    client, sessions = _site(tmp_path, ["supervisor"])
    with client:
        session_id = _start(client)
        assert _stop(client, "boss2", session_id) == 403
        assert _hangups(fake) == [] and not _ended(sessions, session_id)
        (refused,) = audit_rows(sessions, "listen_refused")
        assert (refused.username, refused.object_id) == ("boss2", session_id)
        assert "boss" in (refused.detail or "")
        assert client.get("/live/listen").json()["sessions"] == []  # not offered to boss2
        assert audit_rows(sessions, "listen_stop") == []

        assert _stop(client, "boss", session_id) == 200  # its own supervisor may
        assert _hangups(fake) == [{"Channel": LEG}]
        _wait_ended(sessions, session_id)
        (stopped,) = audit_rows(sessions, "listen_stop")
        assert (stopped.username, stopped.object_id) == ("boss", session_id)


def test_an_admin_may_stop_any_session_when_admins_may_listen(
    tmp_path: Path, fake: FakeAMI
) -> None:
    client, sessions = _site(tmp_path, ["supervisor", "admin"])
    with client:
        session_id = _start(client)
        login(client, "admin")
        (offered,) = client.get("/live/listen").json()["sessions"]
        assert offered["id"] == session_id and offered["supervisor"] == "boss"
        assert _stop(client, "admin", session_id) == 200
        assert _hangups(fake) == [{"Channel": LEG}]
        _wait_ended(sessions, session_id)
        (stopped,) = audit_rows(sessions, "listen_stop")
        assert (stopped.username, stopped.object_id) == ("admin", session_id)
        assert audit_rows(sessions, "listen_refused") == []


def test_an_admin_may_not_stop_when_admins_may_not_listen(tmp_path: Path, fake: FakeAMI) -> None:
    client, sessions = _site(tmp_path, ["supervisor"])
    with client:
        session_id = _start(client)
        assert _stop(client, "admin", session_id) == 403
        assert _hangups(fake) == [] and not _ended(sessions, session_id)
        assert [r.username for r in audit_rows(sessions, "listen_refused")] == ["admin"]
    with unit_of_work(sessions) as session:
        assert session.scalars(select(ListenSession.supervisor)).all() == ["boss"]


def test_config_default_lets_only_supervisors_listen() -> None:
    assert HotlineConfig.model_fields["monitoring"].default.listen_roles == ["supervisor"]

"""Trust without Asterisk in the room: secrets, rendering, validation at the edges, the web
app's limits, file modes, retention. (What needs the real Asterisk is in test_trust_calls.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import wave
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callback_robot.attempts import create_attempt
from callback_robot.dialer import Dialer
from core.config import HotlineConfig, load_config
from core.vocabulary import AttemptOutcome, TicketStatus
from dashboard.app import create_app
from db.migrate import upgrade
from db.models import CallbackAttempt, RetentionDeletion, Ticket
from db.runtime import Spool
from db.session import make_engine, make_session_factory, unit_of_work
from db.tickets import create_ticket
from hotline.app import prepare_store
from privacy.retention import run_retention
from telephony.ami import AMIClient, AMIFieldError
from telephony.fastagi import FastAGIServer
from tests.support.config import write_config
from tests.support.fake_ami import FakeManager
from tools.local_asterisk.render import AsteriskLayout, RenderError, render

CLI = [sys.executable, "-m", "hotline.cli"]


def cli(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args, "-c", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        check=False,
    )


def rendered(config: HotlineConfig, out: Path) -> dict[str, str]:
    layout = AsteriskLayout(out, out / "state", out / "run", Path("/usr/lib/asterisk/modules"))
    files = render(config, layout, out)
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in files)  # secrets inside
    return {path.name: path.read_text() for path in files}


# -- 1. AMI cannot become a shell -----------------------------------------------------------
def test_rendered_secrets_are_generated_strong_and_per_phone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOTLINE_AMI_SECRET", raising=False)
    config = load_config(write_config(tmp_path))
    files = rendered(config, tmp_path / "etc")
    assert "local-only-not-a-secret" not in "".join(files.values())
    assert f"secret = {config.ami_secret()}" in files["manager.conf"]
    passwords = re.findall(r"password = (\S+)", files["pjsip_phones.conf"])
    seats = re.findall(r"password = (\S+)", files["pjsip_agents.conf"])
    agents = config.agents
    assert len(passwords) == len(config.asterisk.sip.citizen_phones)
    assert len(seats) == agents.webrtc_seats + agents.desk_seats
    every = passwords + seats
    assert len(every) == len(set(every)) and min(map(len, every)) >= 20  # one secret per phone
    assert f"HOTLINE_AGI_KEY={config.agi_key()}" in files["hotline_globals.conf"]
    agi_urls = re.findall(
        r"AGI\(([^,)]*)", files["extensions.conf"]
    )  # the URL, before any argument
    assert agi_urls and all(url.endswith("?key=${HOTLINE_AGI_KEY}") for url in agi_urls)


def test_the_robots_ami_user_has_least_privilege_and_no_module_runs_commands(
    tmp_path: Path,
) -> None:
    config = load_config(write_config(tmp_path))
    files = rendered(config, tmp_path / "etc")
    robot = files["manager.conf"].split(f"[{config.asterisk.ami.username}]")[1].split("\n[")[0]
    grants = set()
    for line in robot.splitlines():
        if line.startswith(("read", "write")):
            grants |= {c.strip() for c in line.split("=", 1)[1].split(",")}
    assert grants and not grants & {"system", "command", "config", "all"}
    assert "eventfilter(action(include),name(OriginateResponse))" in robot
    loaded = re.findall(r"^load = (\S+)", files["modules.conf"], re.M)
    assert not {"app_system.so", "func_shell.so", "func_env.so"} & set(loaded)
    assert "autoload = no" in files["modules.conf"]


def test_the_test_user_exists_only_with_simulators(tmp_path: Path) -> None:
    on = rendered(load_config(write_config(tmp_path / "on")), tmp_path / "on" / "etc")
    assert "[hotline-test]" in on["manager_test_user.conf"]
    off_config = load_config(write_config(tmp_path / "off", asterisk={"include_simulators": False}))
    off = rendered(off_config, tmp_path / "off" / "etc")
    assert "[hotline-test]" not in off["manager_test_user.conf"]
    assert '#include "sim-citizen.conf"' not in off["hotline_simulators.conf"]


def test_a_weak_secret_is_refused_off_loopback_and_a_broken_one_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTLINE_AMI_SECRET", "local-only-not-a-secret")
    exposed = load_config(write_config(tmp_path / "x", asterisk={"ami": {"host": "0.0.0.0"}}))
    with pytest.raises(RenderError, match=r"asterisk\.ami\.host is not loopback"):
        rendered(exposed, tmp_path / "x" / "etc")
    rendered(load_config(write_config(tmp_path / "lo")), tmp_path / "lo" / "etc")  # loopback: ok
    monkeypatch.setenv("HOTLINE_AMI_SECRET", "abc;def-long-enough-secret")
    with pytest.raises(RenderError, match=r"\$HOTLINE_AMI_SECRET.*';'"):
        rendered(load_config(write_config(tmp_path / "semi")), tmp_path / "semi" / "etc")


def test_check_config_warns_when_simulators_face_the_network(tmp_path: Path) -> None:
    exposed = write_config(tmp_path, asterisk={"sip": {"bind": "0.0.0.0"}})
    done = cli(exposed, "check-config")
    assert done.returncode == 0
    assert (
        "include_simulators is true" in done.stderr and "asterisk.sip.bind 0.0.0.0" in done.stderr
    )
    quiet = cli(write_config(tmp_path / "lo"), "check-config")
    assert "warning" not in quiet.stderr


# -- 2. nothing from outside becomes an AMI header or a dial string -------------------------
INJECTIONS = ["7001\nContext: hotline-diag", "1@trunk&PJSIP/999"]


def test_import_refuses_numbers_that_are_not_numbers(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert cli(config, "db", "upgrade").returncode == 0
    tickets = [
        {"external_id": f"X-{i}", "caller_number": number, "accepted_at": "2026-11-20 09:00"}
        for i, number in enumerate([*INJECTIONS, "13800000009"])
    ]
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"tickets": tickets}), encoding="utf-8")
    done = cli(config, "tickets", "import", str(batch))
    assert done.returncode == 1
    refused = [line for line in done.stdout.splitlines() if line.strip().startswith("refused")]
    assert len(refused) == 2
    assert all("is not a phone number" in line for line in refused)
    assert "tickets: 1 created" in done.stdout


async def test_the_ami_client_sends_nothing_with_a_line_break_in_it() -> None:
    async with FakeManager() as manager:
        client = AMIClient("127.0.0.1", manager.port, "u", "s", ping_interval=60)
        await client.connect()
        try:
            for channel in INJECTIONS[:1]:
                with pytest.raises(AMIFieldError, match="line break"):
                    await client.originate(channel, context="hotline-survey", exten="s")
            with pytest.raises(AMIFieldError):
                await client.action("Getvar", Channel="x", Variable="A\r\nAction: Command")
            await client.action("Ping")  # the link is fine and was used after
        finally:
            await client.close()
    sent = "".join(manager.received)
    assert "Originate" not in sent and "Getvar" not in sent and "Action: Ping" in sent


@pytest.mark.parametrize("number", INJECTIONS)
async def test_the_dialer_refuses_a_number_that_is_not_one(tmp_path: Path, number: str) -> None:
    config = load_config(write_config(tmp_path))
    upgrade(config.database_url)
    sessions = make_session_factory(make_engine(config.database_url))
    with unit_of_work(sessions) as session:
        ticket = create_ticket(
            session,
            caller_number=number,
            local_day=date(2026, 11, 20),
            accepted_at=datetime(2026, 11, 20, 1, tzinfo=UTC),
        )
        attempt = create_attempt(session, ticket.id, datetime.now(UTC), "test")
        ids = (attempt.id, ticket.id)
    async with FakeManager() as manager:
        client = AMIClient("127.0.0.1", manager.port, "u", "s", ping_interval=60)
        await client.connect()
        try:
            await Dialer(config, client, sessions).place(ids[0], ids[1], number)
        finally:
            await client.close()
    assert not any("Originate" in block for block in manager.received)
    with unit_of_work(sessions) as session:
        done = session.get(CallbackAttempt, ids[0])
        assert done is not None and done.outcome == AttemptOutcome.FAILED
        assert done.hangup_cause == "not a phone number"


# -- 3. FastAGI answers only Asterisk ------------------------------------------------------
ENV = (
    "agi_network: yes\nagi_network_script: {script}\nagi_request: agi://127.0.0.1/{script}\n"
    "agi_channel: Local/x;1\nagi_uniqueid: 1764130000.7\nagi_callerid: 13800000001\n\n"
)


async def closed_without_a_word(reader: asyncio.StreamReader) -> bool:
    """The server closed the connection without sending anything (a reset counts: unread)."""
    try:
        return await asyncio.wait_for(reader.read(), 5) == b""
    except ConnectionResetError:
        return True


async def test_fastagi_closes_strangers_unread_and_refuses_requests_without_the_key() -> None:
    called: list[str] = []

    async def handler(agi) -> None:  # type: ignore[no-untyped-def]
        called.append(agi.uniqueid)

    server = FastAGIServer(
        {"survey": handler}, "127.0.0.1", 0, key="the-key", allowed_peers=["127.0.0.1"]
    )
    await server.start()
    try:
        # a client on another loopback address: closed before it is read
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, local_addr=("127.0.0.2", 0)
        )
        writer.write(ENV.format(script="survey?key=the-key").encode())
        await writer.drain()
        assert await closed_without_a_word(reader)
        writer.close()
        # an allowed address without the key: no command is sent, the handler never runs
        for script in ("survey", "survey?key=wrong"):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(ENV.format(script=script).encode())
            await writer.drain()
            assert await closed_without_a_word(reader)
            writer.close()
        assert called == [] and server.refused == 3
        # with the key it is served
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(ENV.format(script="survey?key=the-key").encode())
        await writer.drain()
        assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"SET VARIABLE")
        writer.write(b"200 result=1\n")
        await writer.drain()
        writer.close()
        await asyncio.sleep(0.2)
        assert called == ["1764130000.7"]
    finally:
        await server.stop()


async def test_fastagi_caps_concurrent_connections(caplog: pytest.LogCaptureFixture) -> None:
    release = asyncio.Event()

    async def slow(agi) -> None:  # type: ignore[no-untyped-def]
        await release.wait()

    server = FastAGIServer({"ivr": slow}, "127.0.0.1", 0, max_connections=2)
    await server.start()
    writers = []
    try:
        for _ in range(2):
            _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(ENV.format(script="ivr").encode())
            writers.append(writer)
        await asyncio.sleep(0.3)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert await closed_without_a_word(reader)
        writers.append(writer)
        assert "agi.max_connections" in caplog.text
    finally:
        release.set()
        for writer in writers:
            writer.close()
        await server.stop()


# -- 4. the web app checks before it reads -------------------------------------------------
def test_the_import_endpoint_refuses_before_reading_and_bounds_what_it_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(write_config(tmp_path, web={"max_import_bytes": 65536}))
    prepare_store(config)
    monkeypatch.setenv("HOTLINE_IMPORT_TOKEN", "a-long-import-token-for-tests")
    auth = {"Authorization": "Bearer a-long-import-token-for-tests"}
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/openapi.json").status_code == 404
        big = client.post("/api/import", content=b"[" + b" " * 70000 + b"]", headers=auth)
        assert big.status_code == 413 and "web.max_import_bytes" in big.text
        deep = client.post("/api/import", content=b"[" * 30 + b"]" * 30, headers=auth)
        assert deep.status_code == 422 and "nested deeper" in deep.text
        many = {
            "external_id": "E-1",
            "caller_number": "13800000001",
            "accepted_at": "2026-11-20 09:00",
            "events": [{"kind": "urged", "at": "2026-11-20 10:00"}] * 201,
        }
        refused = client.post("/api/import", json=[many], headers=auth)
        assert refused.status_code == 200
        assert "at most 200 items" in json.dumps(refused.json(), ensure_ascii=False)


def test_a_huge_post_without_a_token_is_refused_from_its_headers(tmp_path: Path) -> None:
    """A 100 MB body announced: the answer comes before a byte of it is sent."""
    config_path = write_config(tmp_path)
    config = load_config(config_path)
    prepare_store(config)
    env = {**os.environ, "HOTLINE_IMPORT_TOKEN": "a-long-import-token-for-tests"}
    server = subprocess.Popen(
        [*CLI, "web", "-c", str(config_path)], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import socket
    import time

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                probe = socket.create_connection(("127.0.0.1", config.web.port), timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline, "the web app did not start"
                time.sleep(0.2)
        rss_before = _rss_kib(server.pid)
        with probe:
            probe.sendall(
                b"POST /api/import HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 104857600\r\n\r\n"
            )
            probe.settimeout(10)
            started = time.monotonic()
            answer = probe.recv(4096)
            elapsed = time.monotonic() - started
            assert answer.startswith(b"HTTP/1.1 401"), answer[:80]
            sent = 0
            try:  # the server has answered: what it still lets us push is not kept
                for _ in range(100):
                    sent += probe.send(b" " * 1048576)
            except OSError:
                pass
        rss_after = _rss_kib(server.pid)
        print(f"401 after {elapsed * 1000:.1f} ms; {sent} body bytes pushed after it; "
              f"server RSS {rss_before} -> {rss_after} KiB")  # fmt: skip
        assert rss_after - rss_before < 20 * 1024  # nowhere near the announced 100 MB
    finally:
        server.terminate()
        server.wait(10)


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


def test_text_from_an_import_is_printed_as_text(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert cli(config, "db", "upgrade").returncode == 0
    batch = tmp_path / "markup.json"
    record = {
        "external_id": "M-1",
        "caller_number": "13800000001",
        "accepted_at": "2026-11-20 09:00",
        "description": "[/x] [bold red]not markup[/]",
        "department_code": "[/x]",
    }
    batch.write_text(json.dumps([record]), encoding="utf-8")
    done = cli(config, "tickets", "import", str(batch))
    assert done.returncode == 1 and "'[/x]'" in done.stdout  # the refusal, verbatim
    record.pop("department_code")
    batch.write_text(json.dumps([record]), encoding="utf-8")
    assert cli(config, "tickets", "import", str(batch)).returncode == 0
    number = json.loads(cli(config, "tickets", "list", "--format", "json").stdout)[0]["number"]
    shown = cli(config, "tickets", "show", number)
    assert shown.returncode == 0 and "[/x] [bold red]not markup[/]" in shown.stdout


# -- 5. personal data ------------------------------------------------------------------------
def test_the_database_spool_and_secrets_are_owner_only(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    prepare_store(config)
    database = Path(config.database_url.removeprefix("sqlite:///"))
    assert database.stat().st_mode & 0o777 == 0o600
    spooled = Spool(config.spool_dir).put("ticket", {"uniqueid": "1.1", "caller": "13800000001"})
    assert spooled.stat().st_mode & 0o777 == 0o600
    assert config.spool_dir.stat().st_mode & 0o777 == 0o700
    config.agi_key()
    assert (config.state_dir / "secrets" / "agi-key").stat().st_mode & 0o777 == 0o600


def _wav(path: Path, age_days: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x10\x00" * 8000)
    stamp = (datetime.now() - timedelta(days=age_days)).timestamp()
    os.utime(path, (stamp, stamp))
    return str(path)


def test_retention_deletes_old_recordings_keeps_open_tickets_and_audits(
    tmp_path: Path, database_url: str
) -> None:
    config = load_config(
        write_config(
            tmp_path,
            database={"url": database_url},
            privacy={"retention_days": {"recordings": 30, "transcripts": 30}},
        )
    )
    prepare_store(config)
    sessions = make_session_factory(make_engine(config.database_url))
    now = datetime(2026, 11, 26, 4, tzinfo=UTC)
    old_day = config.recordings_dir / "2026" / "09" / "01"
    new_day = config.recordings_dir / "2026" / "11" / "20"
    old_closed = _wav(old_day / "1756700000.1_12345_13800000001.wav", 86)
    old_open = _wav(old_day / "1756700000.2_12345_13800000002-request.wav", 86)
    old_survey = _wav(config.recordings_dir / "survey/2026/09/02/1756800000.3_attempt1.wav", 85)
    recent = _wav(new_day / "1763600000.4_12345_13800000004.wav", 6)
    with unit_of_work(sessions) as session:
        for path, status, caller in (
            (old_closed, TicketStatus.CLOSED, "13800000001"),
            (old_open, TicketStatus.DISPATCHED, "13800000002"),
            (recent, TicketStatus.CLOSED, "13800000004"),
        ):
            ticket = create_ticket(
                session,
                caller_number=caller,
                local_day=date(2026, 9, 1),
                accepted_at=datetime(2026, 9, 1, 2, tzinfo=UTC),
            )
            ticket.status, ticket.recording_path = status, path
            ticket.transcript = "我家楼下的路灯坏了"
    report = run_retention(config, sessions, now)
    assert sorted(report.recordings_deleted) == sorted([old_closed, old_survey])
    assert report.recordings_kept_for_open_tickets == [old_open]
    assert not Path(old_closed).exists() and not Path(old_survey).exists()
    assert Path(old_open).exists() and Path(recent).exists()
    with unit_of_work(sessions) as session:
        audit = {(r.kind, r.target) for r in session.query(RetentionDeletion)}
        assert {("recording", old_closed), ("recording", old_survey)} <= audit
        closed = session.query(Ticket).filter(Ticket.caller_number == "13800000001").one()
        assert closed.recording_path is None and closed.transcript is None
        still_open = session.query(Ticket).filter(Ticket.caller_number == "13800000002").one()
        assert still_open.recording_path == old_open and still_open.transcript
    assert run_retention(config, sessions, now).recordings_deleted == []  # idempotent

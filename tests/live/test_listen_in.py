"""Listening in (监听 / 耳语 / 强插) through the console and the real Asterisk.

A scripted citizen (a 440 Hz tone as its voice) reaches a scripted agent (660 Hz)
through app_queue; a supervisor logged in to the console asks `/live/listen` for
each mode in turn, with a scripted supervisor's phone (`Local/NAME@sim-supervisor`:
it answers, plays a 1 kHz tone file as its voice and records what it hears). What each party hears is
recorded on the far half of its Local channel (AMI MixMonitor, r(): the frames the
hotline sent it), only while the session lasts:

- listen: the supervisor hears citizen and agent, nobody hears the supervisor;
- whisper: the agent hears the supervisor, the citizen does not;
- barge: both do.

Each session is exactly one `listen_sessions` row with its start and end (written on
the supervisor leg's Hangup) and one `listen_in` audit entry.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agents.listen import MODES, sessions_of
from dashboard.app import create_app
from dashboard.auth import hash_password
from dashboard.users import add_user
from db.session import unit_of_work
from hotline.app import Hotline
from telephony.ami import AMIClient
from tests.support.agents import log_in_agent, log_out_everyone, scripted_agent
from tests.support.calls import calls_ended, citizen_call
from tests.support.config import free_port
from tests.support.console_city import PASSWORD, csrf_of, login, serve_console
from tests.support.console_site import audit_rows
from tests.support.events import eventually, wait_for_event
from tests.support.tones import loudness, tone_wav

AGENTS_LINE = "12300"
CITIZEN_HZ, AGENT_HZ, SUPERVISOR_HZ = 440, 660, 1000
HEARD, SILENT = 0.1, 0.03  # a tone's share of what a party hears: present, absent
SESSION_SECONDS = 4.0


@pytest.fixture
async def floor(hotline: Hotline, ami: AMIClient) -> AsyncIterator[Hotline]:
    yield hotline
    await log_out_everyone(hotline, ami)


def far_half(channel: str) -> str:
    """The scripted party's own half of a Local channel (;1 is the hotline's side)."""
    assert channel.startswith("Local/") and channel.endswith(";1"), channel
    return channel[:-1] + "2"


async def _wav(path: Path) -> Path:
    await eventually(lambda: path.exists() and path.stat().st_size > 8000, what=str(path))
    return path


async def _session(
    hotline: Hotline,
    ami: AMIClient,
    client: httpx.Client,
    token: str,
    folder: Path,
    voice: Path,
    uniqueid: str,
    mode: str,
    citizen: str,
    agent: str,
) -> dict[str, tuple[float, float, float, float]]:
    """One session in mode: {party: (rms, share 440, share 660, share 1000)} of what it heard."""
    name = f"sup{mode}"
    await ami.action("DBPut", Family="simsup", Key=name, Val=str(folder / f"{mode}-supervisor"))
    await ami.action("DBPut", Family="simsupvoice", Key=name, Val=str(voice.with_suffix("")))
    form = {"uniqueid": uniqueid, "mode": mode, "phone": f"sim-{name}", "csrf": token}
    answer = await asyncio.to_thread(client.post, "/live/listen", data=form)
    assert answer.status_code == 200, answer.text
    session_id = answer.json()["session"]
    await asyncio.sleep(0.5)  # ChanSpy attaches right after the supervisor's answer
    hears = {
        "citizen": folder / f"{mode}-citizen-hears.wav",
        "agent": folder / f"{mode}-agent-hears.wav",
    }
    for party, channel in (("citizen", citizen), ("agent", agent)):
        await ami.action(
            "MixMonitor",
            Channel=far_half(channel),
            File=str(folder / f"{mode}-{party}.wav"),
            Options=f"r({hears[party]})",
        )
    await asyncio.sleep(SESSION_SECONDS)
    for channel in (citizen, agent):
        await ami.action("StopMixMonitor", Channel=far_half(channel))
    stopped = await asyncio.to_thread(
        client.post, f"/live/listen/{session_id}/stop", data={"csrf": token}
    )
    assert stopped.status_code == 200, stopped.text

    def ended() -> bool:
        with unit_of_work(hotline.sessions) as session:
            rows = [r for r in sessions_of(session, uniqueid) if r.id == session_id]
            return bool(rows) and rows[0].ended_at is not None

    await eventually(ended, timeout=10, what=f"the end of the {mode} session")
    heard = {**hears, "supervisor": folder / f"{mode}-supervisor-hears.wav"}
    found = {}
    for party, path in heard.items():
        await _wav(path)
        rms, citizen_share = loudness(path, CITIZEN_HZ)
        agent_share = loudness(path, AGENT_HZ)[1]
        supervisor_share = loudness(path, SUPERVISOR_HZ)[1]
        found[party] = (rms, citizen_share, agent_share, supervisor_share)
        print(
            f"{mode:8s} {party:10s} hears: rms {rms:.3f}, 440 Hz {citizen_share:.2f}, "
            f"660 Hz {agent_share:.2f}, 1 kHz {supervisor_share:.2f}"
        )
    return found


async def test_a_supervisor_listens_whispers_and_barges(floor: Hotline, ami: AMIClient) -> None:
    voices = floor.config.state_dir / "voices"
    voices.mkdir(parents=True, exist_ok=True)
    tone = tone_wav(voices / "citizen-tone-440.wav", CITIZEN_HZ, rate=8000, seconds=60)
    voice = tone_wav(voices / "supervisor-tone-1000.wav", SUPERVISOR_HZ, rate=8000, seconds=20)
    folder = floor.config.recordings_dir / "listen-in"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o777)
    agent = await scripted_agent(floor, ami, "zhao", answer_after="1", talk=60)
    await log_in_agent(floor, ami, agent)
    with unit_of_work(floor.sessions) as session:
        add_user(session, "boss", hash_password(PASSWORD), "supervisor", None)
    app = create_app(floor.config, floor.sessions, follow_ami=True)
    connects = ami.subscribe("AgentConnect")
    results = {}
    try:
        with serve_console(app, free_port()) as base:
            client = httpx.Client(base_url=base, timeout=60)
            assert login(client, "boss").status_code == 303  # type: ignore[arg-type]
            token = csrf_of(client, "/live")  # type: ignore[arg-type]
            placed = asyncio.create_task(
                citizen_call(ami, AGENTS_LINE, f"p{tone.with_suffix('')}|h", caller="13900139041")
            )
            connect = await wait_for_event(
                connects, lambda e: e.get("MemberName") == "zhao", timeout=40
            )
            uniqueid = connect.get("Uniqueid")
            citizen, agent_leg = connect.get("Channel"), connect.get("DestChannel")

            async def offered() -> bool:
                data = (await asyncio.to_thread(client.get, "/live/listen")).json()
                return any(c["uniqueid"] == uniqueid for c in data["calls"])

            await eventually(offered, what="the agent call offered on the live page")
            for mode in MODES:
                results[mode] = await _session(
                    floor, ami, client, token, folder, voice, uniqueid, mode, citizen, agent_leg
                )
            await ami.action("Hangup", Channel=citizen)
            await placed
            await asyncio.to_thread(client.close)
    finally:
        ami.unsubscribe(connects)
    await calls_ended(floor, uniqueid)

    for mode, heard in results.items():
        rms, citizen_share, agent_share, _ = heard["supervisor"]
        assert rms > 0.01 and citizen_share > HEARD and agent_share > HEARD, (mode, heard)
    assert results["listen"]["citizen"][3] < SILENT and results["listen"]["agent"][3] < SILENT
    assert results["whisper"]["agent"][3] > HEARD, results["whisper"]
    assert results["whisper"]["citizen"][3] < SILENT, results["whisper"]
    assert results["barge"]["agent"][3] > HEARD and results["barge"]["citizen"][3] > HEARD
    for mode in MODES:  # and each still hears the other party
        assert results[mode]["citizen"][2] > HEARD and results[mode]["agent"][1] > HEARD

    with unit_of_work(floor.sessions) as session:
        rows = sessions_of(session, uniqueid)
        assert [r.mode for r in rows] == list(MODES)
        for row in rows:
            assert row.supervisor == "boss" and row.agent_id == agent.agent_id
            assert row.phone == f"sim-sup{row.mode}" and row.channel
            assert row.ended_at is not None and row.ended_at > row.started_at
        ids = [r.id for r in rows]
    entries = audit_rows(floor.sessions, "listen_in")
    assert sorted(e.object_id for e in entries) == sorted(ids)  # one entry per session
    assert all(e.username == "boss" for e in entries)

"""`hotline cluster up | status | drain | down` (issue 22) on one box, with the real programs.

One cluster's life, start to end, as an operator lives it: `up` with 2 nodes
and 2 FastAGI workers (no robots, no transcribers: light on a 2-core
machine) starts a private PostgreSQL, Kamailio, both nodes' Asterisk and
HAProxy and the workers; a second `up` starts nothing. A SIPp caller on
127.0.0.100 calls 12345 at the front and hangs up in the menu: the call
becomes a ticket in PostgreSQL, its call row naming the node that took it.
`status` shows both nodes active and both workers up, and so does the
console's `/healthz` (`hotline serve` on the cluster's config: each node at
the front, its AMI, each HAProxy's workers). `drain ast2` disables it in
Kamailio and marks it draining in the store; the next calls all land on
ast1, and `/healthz` stays 200, naming ast2 drained on purpose; `undrain`
puts it back. `down` stops everything `up` started and
leaves alone a process it did not start whose command line names the same
config; a second `down` stops nothing. And an `up` that fails (another
program holds the front's SIP port) stops what it had started, leaves no
record, and names the log to read.

The addresses are a block no other test uses (front .110, nodes .111/.112,
workers .121/.122, PostgreSQL .130, callers .100), so this test never meets
the suite's other Asterisk on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from core.config import HotlineConfig
from db.cluster import draining_nodes
from db.models import Call, Ticket
from db.session import make_engine, make_session_factory
from tests.support.config import free_port
from tests.support.events import eventually
from tests.support.live_cluster import SLOW, cluster_folder, hotline_cli
from tests.support.web_process import hotline_process, stderr_of

FRONT = "127.0.0.110"
CALLERS = "127.0.0.100"
DATABASE_URL = "postgresql+psycopg://hotline@127.0.0.130:5432/hotline"
CLUSTER = {
    "front": {"address": FRONT},
    "nodes": [
        {"name": "ast1", "address": "127.0.0.111", "rtp_start": 20000, "rtp_end": 20999},
        {"name": "ast2", "address": "127.0.0.112", "rtp_start": 21000, "rtp_end": 21999},
    ],
    "workers": [
        {"name": "agi1", "address": "127.0.0.121"},
        {"name": "agi2", "address": "127.0.0.122"},
    ],
    "database_url": DATABASE_URL,
    "jobs": {"robots": 0, "transcribers": 0},
}
SCENARIO = Path(__file__).parents[1] / "data" / "sipp" / "caller_hangs_up.xml"


def hotline(*args: str, config: Path, timeout: float = SLOW) -> subprocess.CompletedProcess[str]:
    return hotline_cli(config, *args, timeout=timeout)


@pytest.fixture
def cluster_config(
    asterisk_install: object, built_prompts: HotlineConfig
) -> Iterator[HotlineConfig]:
    """A cluster config in a folder of its own (tests.support.live_cluster)."""
    with cluster_folder("hotline-cluster-test-", built_prompts, CLUSTER, DATABASE_URL) as config:
        yield config


def caller_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((CALLERS, 0))
        return int(probe.getsockname()[1])


def call_and_hang_up(folder: Path, caller: str, seconds: float = 6.0) -> None:
    """One SIPp call to 12345 at the front from `caller`, hung up after `seconds` (in the menu)."""
    callers = folder / f"callers-{caller}.csv"
    callers.write_text(f"SEQUENTIAL\n{caller};\n")
    argv = ["sipp", "-sf", str(SCENARIO), "-inf", str(callers), "-s", "12345", "-nostdin"]
    argv += ["-i", CALLERS, "-p", str(caller_port()), "-mp", str(free_port())]
    argv += ["-m", "1", "-d", str(int(seconds * 1000)), "-timeout", "120", f"{FRONT}:5060"]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=folder,
        check=False,
    )
    assert done.returncode == 0, f"SIPp call from {caller} failed: {done.stdout[-2000:]}"


def ticket_of(database_url: str, caller: str) -> tuple[str, str | None] | None:
    """The ticket number of the caller's call and the node its call row names, once written."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            found = session.execute(
                select(Ticket.number, Call.node)
                .join(Call, Call.ticket_id == Ticket.id)
                .where(Ticket.caller_number == caller)
            ).first()
            return (str(found[0]), found[1]) if found else None
    finally:
        engine.dispose()


def draining(database_url: str) -> set[str]:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            return draining_nodes(session)
    finally:
        engine.dispose()


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.mark.timeout(1800)
async def test_a_cluster_from_up_to_down(cluster_config: HotlineConfig) -> None:
    config = cluster_config.source
    folder = config.parent
    book = cluster_config.state_dir / "cluster" / "processes.json"

    # up: every process started and recorded; a second up starts nothing
    started = hotline("cluster", "up", config=config)
    assert started.returncode == 0, started.stdout + started.stderr
    records = json.loads(book.read_text())["processes"]
    roles = sorted(f"{p['role']}:{p['name']}" for p in records)
    for part in ("postgres:pg", "kamailio:front", "asterisk:ast1", "asterisk:ast2"):
        assert part in roles
    for part in ("haproxy:ast1", "haproxy:ast2", "worker:agi1", "worker:agi2"):
        assert part in roles
    again = hotline("cluster", "up", config=config)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 started" in again.stdout

    # a call through the front becomes a ticket in PostgreSQL, with the node that took it
    call_and_hang_up(folder, "13800000001")
    first = await eventually(
        lambda: ticket_of(DATABASE_URL, "13800000001"), timeout=120, what="the call's ticket"
    )
    assert first[1] in ("ast1", "ast2")

    # status: both nodes active at the front, both workers up in both HAProxies
    status = await eventually(
        lambda: (s := hotline("cluster", "status", config=config)).returncode == 0 and s,
        timeout=60,
        every=2,
        what="a healthy status",
    )
    lines = status.stdout.splitlines()
    assert sum("kamailio" in x and "active" in x for x in lines) == 2, status.stdout
    assert sum("haproxy" in x and "agi1 UP" in x and "agi2 UP" in x for x in lines) == 2

    # the console (`hotline serve` on the cluster's config): its /healthz shows the same parts
    with hotline_process("serve", config, cluster_config.web.port):
        health = f"http://127.0.0.1:{cluster_config.health.port}/healthz"
        checks = await eventually(
            lambda: healthy(health, config), timeout=90, every=1, what="the console's /healthz 200"
        )
        assert "asterisk" not in checks and "robot" not in checks, checks
        for node in ("ast1", "ast2"):
            assert checks[f"kamailio {node}"]["detail"].startswith("active"), checks
            assert checks[f"node {node}"]["detail"].startswith("AMI up"), checks
            assert {"agi1 UP", "agi2 UP"} <= set(checks[f"haproxy {node}"]["detail"].split(", "))

        # drain ast2: out of the front and the robots; the next calls all land on ast1
        drained = hotline("cluster", "drain", "ast2", "--timeout", "300", config=config)
        assert drained.returncode == 0, drained.stdout + drained.stderr
        assert draining(DATABASE_URL) == {"ast2"}
        callers = [f"1380000010{i}" for i in range(3)]
        for caller in callers:
            call_and_hang_up(folder, caller, seconds=3.0)
        for caller in callers:
            ticket = await eventually(
                lambda c=caller: ticket_of(DATABASE_URL, c), timeout=120, what=f"{caller}'s ticket"
            )
            assert ticket[1] == "ast1", f"{caller}'s call went to {ticket[1]} while ast2 drained"
        # drained on purpose is not a fault: the console stays healthy and says why
        checks = await eventually(
            lambda: (c := healthy(health, config)) and "drain ast2" in c and c,
            timeout=60,
            every=1,
            what="ast2 drained in the console's /healthz",
        )
        assert "drained on purpose" in checks["kamailio ast2"]["detail"], checks
        back = hotline("cluster", "undrain", "ast2", config=config)
        assert back.returncode == 0, back.stdout + back.stderr
        assert draining(DATABASE_URL) == set()

    # down: everything up started, and only that
    stranger = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)", str(config), "serve"]
    )
    try:
        stopped = hotline("cluster", "down", config=config)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert not any(alive(p["pid"]) for p in records), stopped.stdout
        assert stranger.poll() is None
        assert "0 stopped" in hotline("cluster", "down", config=config).stdout
    finally:
        stranger.kill()
        stranger.wait()


def healthy(url: str, config: Path) -> dict[str, dict[str, object]] | None:
    """The checks of a /healthz that answers 200 (None: another answer, or none yet)."""
    try:
        answer = httpx.get(url, timeout=10)
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        print(answer.text)  # which check fails, for the log of a run that times out
        if answer.status_code == 500:
            print(stderr_of("serve", config)[-3000:])
        return None
    return answer.json()["checks"]  # type: ignore[no-any-return]


def processes_naming(folder: Path) -> list[int]:
    """Live processes whose command line names something in folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and alive(int(entry.name)):
            try:
                argv = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(folder).encode() in argv:
                found.append(int(entry.name))
    return found


@pytest.mark.timeout(900)
def test_a_failed_up_stops_what_it_started_and_names_the_log(
    cluster_config: HotlineConfig,
) -> None:
    config = cluster_config.source
    # another program holds the front's SIP port: Kamailio cannot start
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((FRONT, 5060))
        failed = hotline("cluster", "up", config=config)
    said = failed.stdout + failed.stderr
    assert failed.returncode != 0, said
    assert "kamailio front exited" in said and "kamailio.log" in said
    assert "postgres pg: stopped again" in said  # the PostgreSQL this up started
    book = json.loads((cluster_config.state_dir / "cluster" / "processes.json").read_text())
    assert book["processes"] == [] and book["mounts"] == []
    assert processes_naming(config.parent) == []

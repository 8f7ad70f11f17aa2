"""`hotline cluster status`: every part of the cluster, looked at from outside, one row each.

Kamailio's view of the nodes (`kamcmd dispatcher.list`), each node's AMI and
channel count, each node's HAProxy's view of the workers (its stats socket's
`show stat`), PostgreSQL, the robots' heartbeats, the job queue's depth, and
whether every process `up` recorded still runs. A row that is not ok makes
the command exit non-zero.
"""

from __future__ import annotations

import csv
import io
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from callback_robot.status import is_stalled
from core.config import ClusterConfig, ClusterNode
from db.cluster import draining_nodes
from db.jobs import QueueBacklog, queue_backlog
from db.models import RobotHeartbeat
from db.session import make_engine, make_session_factory
from telephony.kamailio import FrontNode, KamailioUnreachable, dispatcher_list
from tools.cluster.layout import ClusterLayout
from tools.cluster.processes import ProcessBook, is_ours
from tools.cluster.runtime_nodes import NodeAsterisk, channel_count
from tools.local_asterisk.local import AsteriskError


@dataclass(frozen=True)
class Row:
    """One line of the status table."""

    part: str  # kamailio, node, haproxy, postgres, robot, jobs, process
    name: str
    ok: bool
    detail: str


def front_rows(
    cluster: ClusterConfig, layout: ClusterLayout, draining: frozenset[str] = frozenset()
) -> list[Row]:
    """Each node as Kamailio sees it: active, inactive (probing) or disabled (drained).

    A node disabled at the front while the store has it draining was taken out
    on purpose (`hotline cluster drain`): that is not a fault.
    """
    try:
        listed = dispatcher_list(layout.kamailio_ctl())
    except KamailioUnreachable as exc:
        return [Row("kamailio", "front", False, str(exc))]
    rows = []
    for node in cluster.nodes:
        found = front_node_of(listed, node)
        if found is None:
            rows.append(Row("kamailio", node.name, False, "not in Kamailio's dispatcher list"))
            continue
        drained = found.state == "disabled" and node.name in draining
        detail = f"{found.state} ({found.flags}), {found.load} calls counted"
        rows.append(
            Row(
                "kamailio",
                node.name,
                found.active or drained,
                detail + (", drained on purpose" if drained else ""),
            )
        )
    return rows


def front_node_of(listed: list[FrontNode], node: ClusterNode) -> FrontNode | None:
    """The dispatcher entry of a node: by its duid, else by its address and SIP port."""
    for entry in listed:
        if entry.duid == node.name or (entry.address, entry.port) == (node.address, node.sip_port):
            return entry
    return None


def node_rows(nodes: list[NodeAsterisk]) -> list[Row]:
    """Each node's AMI (its banner) and its channel count (`core show channels count`)."""
    rows = []
    for node in nodes:
        if not node.ami_answers():
            rows.append(Row("asterisk", node.node.name, False, "AMI does not answer"))
            continue
        try:
            count = channel_count(node.rx("core show channels count", timeout=5))
        except AsteriskError as exc:
            rows.append(Row("asterisk", node.node.name, False, f"AMI up; CLI: {exc}"))
            continue
        rows.append(Row("asterisk", node.node.name, True, f"AMI up, {count} channels"))
    return rows


def haproxy_stat(path: Path, timeout: float = 2.0) -> str:
    """`show stat` on a HAProxy stats socket: its CSV (OSError when it does not answer)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(str(path))
        conn.sendall(b"show stat\n")
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def worker_states(stat_csv: str, backend: str = "workers") -> dict[str, str]:
    """Each worker's status in the backend (UP, DOWN, MAINT, "UP 1/2" ...)."""
    text = stat_csv.lstrip("# ")
    states = {}
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("pxname") == backend and row.get("svname") not in ("BACKEND", "FRONTEND"):
            states[row["svname"]] = row.get("status", "")
    return states


def haproxy_rows(cluster: ClusterConfig, layout: ClusterLayout) -> list[Row]:
    rows = []
    for node in cluster.nodes:
        try:
            states = worker_states(haproxy_stat(layout.haproxy_stats(node)))
        except OSError as exc:
            rows.append(Row("haproxy", node.name, False, f"stats socket: {exc.strerror or exc}"))
            continue
        up = [w for w, s in states.items() if s.startswith("UP")]
        detail = ", ".join(f"{w} {s}" for w, s in sorted(states.items())) or "no workers"
        rows.append(Row("haproxy", node.name, len(up) == len(cluster.workers), detail))
    return rows


@dataclass(frozen=True)
class StoreView:
    """What the store says of the cluster: heartbeats, the queue, the nodes drained."""

    beats: list[tuple[str, datetime]]
    backlog: list[QueueBacklog]
    draining: frozenset[str]


def store_view(session: Session) -> StoreView:
    beats = [(b.robot_id, b.beat_at) for b in session.scalars(select(RobotHeartbeat))]
    return StoreView(beats, queue_backlog(session), frozenset(draining_nodes(session)))


def read_store_view(cluster: ClusterConfig) -> StoreView | str:
    """The store's view, or why PostgreSQL could not give it."""
    engine = make_engine(cluster.database_url)
    try:
        with make_session_factory(engine)() as session:
            return store_view(session)
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"
    finally:
        engine.dispose()


def view_rows(view: StoreView, now: datetime) -> list[Row]:
    """The robots' heartbeats, the queue's depth, the draining nodes."""
    rows = []
    for robot_id, beat_at in view.beats:
        age = (now - beat_at).total_seconds()
        stalled = is_stalled(beat_at, now)
        rows.append(Row("robot", robot_id, not stalled, f"last dispatch pass {age:.0f} s ago"))
    todo = ", ".join(
        f"{b.queue} {b.todo} (oldest {b.oldest_age_seconds:.0f} s)" for b in view.backlog
    )
    rows.append(Row("jobs", "queue", True, todo or "empty"))
    for name in sorted(view.draining):
        rows.append(Row("drain", name, True, "draining: no new calls from the front or robots"))
    return rows


def process_rows(book: ProcessBook) -> list[Row]:
    """Every process `up` recorded: still running, or gone."""
    return [
        Row(
            "process",
            entry.key,
            alive := is_ours(entry),
            f"pid {entry.pid} {'running' if alive else 'GONE'}; log {entry.log}",
        )
        for entry in book.processes
    ]


def cluster_status(
    cluster: ClusterConfig,
    layout: ClusterLayout,
    nodes: list[NodeAsterisk],
    book: ProcessBook,
    now: datetime | None = None,
) -> list[Row]:
    """Every row, in the order a call meets the parts."""
    view = read_store_view(cluster)
    if isinstance(view, str):
        stored = [Row("postgres", "store", False, view)]
        draining: frozenset[str] = frozenset()
    else:
        stored = [Row("postgres", "store", True, "reachable"), *view_rows(view, now or utc_now())]
        draining = view.draining
    return [
        *front_rows(cluster, layout, draining),
        *node_rows(nodes),
        *haproxy_rows(cluster, layout),
        *stored,
        *process_rows(book),
    ]


def utc_now() -> datetime:
    return datetime.now(UTC)

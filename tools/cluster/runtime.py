"""`hotline cluster up` and `down`: every host of the cluster on one box, in order, recorded.

`up` renders the files, then starts what is not running yet, each waited for
until ready: PostgreSQL (a private one, only for a loopback URL where nothing
answers; migrated), Kamailio, each node's Asterisk, each node's HAProxy, the
FastAGI workers, the robots, the transcribers and one node daemon per node.
Every process is recorded in state_dir/cluster/processes.json as it starts
(tools/cluster/processes.py), so a second `up` starts only what is missing
and `down` stops exactly these, last first. When a start fails, what this
`up` started is stopped again and the error names the log to read.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from core.config import ClusterConfig, ClusterNode, HotlineConfig
from db.migrate import upgrade
from telephony.kamailio import KamailioUnreachable, dispatcher_list
from tools.cluster.checks import ToolMissing, tool
from tools.cluster.layout import ClusterLayout, cluster_of
from tools.cluster.processes import (
    STATE_FILE,
    ProcessBook,
    ProcessRecord,
    is_ours,
    record_for,
    stop,
    stop_all,
)
from tools.cluster.render import render_cluster
from tools.cluster.runtime_launch import (
    Launch,
    StartFailed,
    hotline_launch,
    http_ok,
    start,
    unix_socket_answers,
)
from tools.cluster.runtime_nodes import NodeAsterisk, node_asterisks
from tools.cluster.runtime_postgres import (
    STOP_SIGNAL,
    PostgresStartError,
    PostgresTarget,
    create_database,
    start_postgres,
)
from tools.local_asterisk.local import AsteriskError, unmount
from tools.local_asterisk.render import RenderError

Progress = Callable[[str], None]
# helper B's node daemon: `up` starts one per node only once the module exists
NODE_DAEMON_MODULE = "hotline.node_daemon"


class ClusterError(Exception):
    """The cluster could not be brought up (or a config does not fit); one-line message."""


def book_path(layout: ClusterLayout) -> Path:
    return layout.state_dir / STATE_FILE


def check_database_url(config: HotlineConfig, cluster: ClusterConfig) -> None:
    """Every process gets this config: its store must be the cluster's PostgreSQL."""
    if config.database_url != cluster.database_url:
        raise ClusterError(
            f"{config.source}: database.url must be cluster.database_url "
            f"({cluster.database_url}) for `hotline cluster up`: every process it starts "
            "reads this config"
        )


@dataclass
class ClusterRuntime:
    """Starting and stopping one config's cluster."""

    config: HotlineConfig
    layout: ClusterLayout
    progress: Progress = lambda _line: None
    book: ProcessBook = field(init=False)
    started: list[ProcessRecord] = field(default_factory=list)
    mounted: list[Path] = field(default_factory=list)  # mounts this `up` made

    def __post_init__(self) -> None:
        self.book = ProcessBook.load(book_path(self.layout))

    @property
    def cluster(self) -> ClusterConfig:
        return cluster_of(self.config)

    # -- up -------------------------------------------------------------------------------
    def up(self) -> list[ProcessRecord]:
        """Start what is missing; return what this call started (ClusterError on a failure)."""
        check_database_url(self.config, self.cluster)
        try:
            render_cluster(self.config, self.layout)
            self.progress(f"rendered into {self.layout.out_dir}")
            self.postgres()
            self.kamailio()
            for node in node_asterisks(self.config, self.layout):
                self.asterisk(node)
            for node in self.cluster.nodes:
                self.haproxy(node)
            self.ours()
        except (
            StartFailed,
            AsteriskError,
            PostgresStartError,
            ToolMissing,
            RenderError,
            OSError,
        ) as exc:
            self.progress(f"FAILED: {exc}")
            self.undo()
            raise ClusterError(str(exc)) from None
        return self.started

    def running(self, role: str, name: str) -> bool:
        """Already up from an earlier `up` (and still the process it recorded)."""
        entry = self.book.find(role, name)
        if entry is not None and is_ours(entry):
            self.progress(f"{role} {name}: running (pid {entry.pid})")
            return True
        return False

    def keep(self, entry: ProcessRecord) -> None:
        self.book.record(entry)
        self.started.append(entry)
        self.progress(f"{entry.role} {entry.name}: started (pid {entry.pid}, log {entry.log})")

    def undo(self) -> None:
        """Stop what this `up` started (last first); what ran before stays."""
        for entry in reversed(self.started):
            stop(entry)
            self.book.forget(entry)
            self.progress(f"{entry.role} {entry.name}: stopped again")
        self.started = []
        if self.mounted:
            unmount(list(reversed(self.mounted)))
            self.book.mounts = [m for m in self.book.mounts if Path(m) not in self.mounted]
            self.book.save()
            self.mounted = []

    def postgres(self) -> None:
        target = PostgresTarget.of(self.cluster.database_url)
        if self.running("postgres", "pg"):
            return
        if not target.ours_to_start():
            self.progress(f"postgres: {target.host}:{target.port} answers; not started by us")
        else:
            self.progress(f"postgres: starting on {target.host}:{target.port}")
            home = self.layout.state_dir / "postgres"
            pid, data, log = start_postgres(target, home)
            self.keep(record_for("postgres", "pg", pid, (str(data),), log, STOP_SIGNAL))
            create_database(target, log)
        self.progress("postgres: migrating the store")
        try:
            upgrade(self.cluster.database_url)
        except SQLAlchemyError as exc:
            raise PostgresStartError(
                f"cannot migrate the store at {target.host}:{target.port}/{target.database}: "
                f"{type(exc).__name__} (is it the hotline's database, and may "
                f"{target.user} create tables in it?)"
            ) from None

    def kamailio(self) -> None:
        if self.running("kamailio", "front"):
            return
        cfg = self.layout.kamailio_dir() / "kamailio.cfg"
        ctl = self.layout.kamailio_ctl()
        self.layout.run_dir.mkdir(parents=True, exist_ok=True)

        def answers() -> bool:
            try:
                dispatcher_list(ctl, timeout=1.0)
            except KamailioUnreachable:
                return False
            return True

        launch = Launch(
            "kamailio",
            "front",
            [str(tool("kamailio")), "-DD", "-E", "-f", str(cfg)],
            (str(cfg),),
            self.layout.state_dir / "kamailio" / "kamailio.log",
            answers,
        )
        self.launched(launch)

    def asterisk(self, node: NodeAsterisk) -> None:
        if self.running("asterisk", node.node.name):
            return
        self.progress(f"asterisk {node.node.name}: starting ({node.conf})")
        mounted = node.prepare()
        self.book.add_mounts(mounted)  # recorded first: a failed boot still unmounts them
        self.mounted.extend(mounted)
        proc = node.boot()
        self.keep(record_for("asterisk", node.node.name, proc.pid, node.tell(), node.console_log))

    def haproxy(self, node: ClusterNode) -> None:
        if self.running("haproxy", node.name):
            return
        cfg = self.layout.haproxy_file(node)
        stats = self.layout.haproxy_stats(node)
        launch = Launch(
            "haproxy",
            node.name,
            [str(tool("haproxy")), "-db", "-f", str(cfg)],
            (str(cfg),),
            self.layout.state_dir / node.name / "log" / "haproxy.log",
            lambda: unix_socket_answers(stats),
        )
        self.launched(launch)

    def ours(self) -> None:
        """The FastAGI workers, robots, transcribers and node daemons: `hotline` processes."""
        source = self.config.source.resolve()
        logs = self.layout.state_dir / "logs"
        for worker in self.cluster.workers:
            health = f"http://{worker.address}:{worker.health_port}/healthz"
            self.ours_one(
                hotline_launch(
                    "worker",
                    worker.name,
                    ("serve", "--worker", worker.name),
                    source,
                    logs / f"{worker.name}.log",
                    ready=lambda url=health: http_ok(url),  # type: ignore[misc]
                )
            )
        for i in range(1, self.cluster.jobs.robots + 1):
            name = f"robot{i}"
            self.ours_one(
                hotline_launch("robot", name, ("robot", "run"), source, logs / f"{name}.log")
            )
        for i in range(1, self.cluster.jobs.transcribers + 1):
            name = f"transcriber{i}"
            args = ("jobs", "worker", "--name", name)
            self.ours_one(hotline_launch("transcriber", name, args, source, logs / f"{name}.log"))
        if importlib.util.find_spec(NODE_DAEMON_MODULE) is None:
            self.progress(
                f"node daemons: not started: {NODE_DAEMON_MODULE} is not built yet "
                "(recordings and CDRs stay on the nodes' disks)"
            )
            return
        for node in self.cluster.nodes:
            args = ("cluster", "node-daemon", "--node", node.name)
            log = logs / f"node-daemon-{node.name}.log"
            self.ours_one(hotline_launch("node-daemon", node.name, args, source, log))

    def ours_one(self, launch: Launch) -> None:
        if not self.running(launch.role, launch.name):
            self.launched(launch)

    def launched(self, launch: Launch) -> None:
        self.progress(f"{launch.role} {launch.name}: starting")
        proc = start(launch)
        self.keep(record_for(launch.role, launch.name, proc.pid, launch.tell, launch.log))

    # -- down -----------------------------------------------------------------------------
    def down(self) -> list[ProcessRecord]:
        """Stop every recorded process, last first, and release this cluster's mounts."""
        return stop_all(self.book, unmount, self.progress)

"""`hotline cluster render | up | status | drain | undrain | down | node-daemon` (issue 22).

A thin shell: the work is in tools/cluster (render, runtime, status, drain).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hotline.cli.support import ConfigOption, config_or_exit, console, fail

if TYPE_CHECKING:
    from core.config import HotlineConfig
    from tools.cluster.layout import ClusterLayout

cluster_app = typer.Typer(
    help="Scale-out: Kamailio, Asterisk nodes, FastAGI workers (render, up, status, drain, down)."
)
OutOption = Annotated[
    Path | None,
    typer.Option("--out", help="Folder of the rendered files (default: state_dir/cluster/etc)."),
]


@cluster_app.command("render")
def cluster_render(
    out: Annotated[Path, typer.Option("--out", help="Folder to write every host's files into.")],
    check: Annotated[
        bool, typer.Option("--check/--no-check", help="Run kamailio -c and haproxy -c on them.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Write kamailio.cfg with dispatcher.list, each node's Asterisk tree and haproxy.cfg."""
    from core.config import ConfigError
    from tools.cluster.checks import ToolMissing, check_haproxy, check_kamailio
    from tools.cluster.layout import cluster_of, default_layout
    from tools.cluster.render import render_cluster
    from tools.local_asterisk.render import RenderError

    cfg = config_or_exit(config)
    layout = default_layout(cfg, out)
    try:
        written = render_cluster(cfg, layout)
    except (ConfigError, RenderError) as exc:
        raise fail(str(exc)) from None
    cluster = cluster_of(cfg)
    console.print(f"{len(written)} files in {layout.out_dir}", markup=False)
    console.print(f"  kamailio: {layout.kamailio_dir() / 'kamailio.cfg'}", markup=False)
    for node in cluster.nodes:
        console.print(
            f"  {node.name}: {layout.node_dir(node)}/asterisk.conf, {layout.haproxy_file(node)}",
            markup=False,
        )
    if not check:
        return
    try:
        results = [("kamailio.cfg", check_kamailio(layout.kamailio_dir() / "kamailio.cfg"))]
        results += [
            (layout.haproxy_file(n).name, check_haproxy(layout.haproxy_file(n)))
            for n in cluster.nodes
        ]
    except ToolMissing as exc:
        raise fail(str(exc)) from None
    for name, result in results:
        console.print(f"  {name}: {'ok' if result.ok else 'FAILED'}", markup=False)
    bad = [
        f"{name}: {result.output.splitlines()[-1:]}" for name, result in results if not result.ok
    ]
    if bad:
        raise fail("; ".join(bad))


def layout_for(cfg: HotlineConfig, out: Path | None) -> ClusterLayout:
    """The cluster's layout; its rendered files in `out` or state_dir/cluster/etc."""
    from tools.cluster.layout import default_layout

    return default_layout(cfg, out if out is not None else cfg.state_dir / "cluster" / "etc")


def say(line: str) -> None:
    console.print(f"  {line}", markup=False)


@cluster_app.command("up")
def cluster_up(out: OutOption = None, config: ConfigOption = None) -> None:
    """Render, then start what is not running: PostgreSQL, Kamailio, nodes, HAProxy, workers ..."""
    from core.config import ConfigError
    from tools.cluster.runtime import ClusterError, ClusterRuntime

    cfg = config_or_exit(config)
    try:
        runtime = ClusterRuntime(cfg, layout_for(cfg, out), say)
        console.print("cluster up:", markup=False)
        started = runtime.up()
    except (ClusterError, ConfigError) as exc:
        raise fail(str(exc)) from None
    console.print(
        f"cluster up: {len(started)} started, {len(runtime.book.processes) - len(started)} "
        f"were running; calls to sip:12345@{runtime.cluster.front.address}:"
        f"{runtime.cluster.front.sip_port}",
        markup=False,
    )


@cluster_app.command("down")
def cluster_down(config: ConfigOption = None) -> None:
    """Stop what `cluster up` started (and nothing else), last started first."""
    from tools.cluster.runtime import ClusterRuntime

    cfg = config_or_exit(config)
    runtime = ClusterRuntime(cfg, layout_for(cfg, None), say)
    stopped = runtime.down()
    console.print(f"cluster down: {len(stopped)} stopped", markup=False)


@cluster_app.command("status")
def cluster_status_command(out: OutOption = None, config: ConfigOption = None) -> None:
    """Kamailio's nodes, AMI and channels, HAProxy's workers, the store, robots, processes."""
    from rich.table import Table

    from tools.cluster.layout import cluster_of
    from tools.cluster.processes import ProcessBook
    from tools.cluster.runtime import book_path
    from tools.cluster.runtime_nodes import node_asterisks
    from tools.cluster.status import cluster_status
    from tools.local_asterisk.local import AsteriskError

    cfg = config_or_exit(config)
    layout = layout_for(cfg, out)
    try:
        nodes = node_asterisks(cfg, layout, install_missing=False)
    except AsteriskError as exc:
        raise fail(str(exc)) from None
    book = ProcessBook.load(book_path(layout))
    rows = cluster_status(cluster_of(cfg), layout, nodes, book)
    table = Table("part 部件", "name 名称", "ok 正常", "detail 详情")
    for row in rows:
        table.add_row(row.part, row.name, "✓" if row.ok else "✗ DOWN", row.detail)
    console.print(table)
    down = [f"{r.part} {r.name}" for r in rows if not r.ok]
    if down:
        raise fail(f"not ok: {', '.join(down)}")


@cluster_app.command("drain")
def cluster_drain(
    node: Annotated[str, typer.Argument(help="The node to take out (cluster.nodes name).")],
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for its calls to end.", min=0)
    ] = 600.0,
    out: OutOption = None,
    config: ConfigOption = None,
) -> None:
    """Take a node out of Kamailio and the robots, then wait until it has no channel."""
    from core.config import ConfigError
    from telephony.kamailio import KamailioRefused, KamailioUnreachable
    from tools.cluster.drain import DrainTimeout, drain, node_named
    from tools.cluster.layout import cluster_of
    from tools.cluster.runtime_nodes import node_asterisks
    from tools.local_asterisk.local import AsteriskError

    cfg = config_or_exit(config)
    layout = layout_for(cfg, out)
    try:
        cluster = cluster_of(cfg)
        wanted = node_named(cluster, node)
        nodes = node_asterisks(cfg, layout, install_missing=False)
        target = next(n for n in nodes if n.node == wanted)
        drain(cluster, layout.kamailio_ctl(), target, timeout, say)
    except (
        ConfigError,
        KamailioRefused,
        KamailioUnreachable,
        AsteriskError,
        DrainTimeout,
    ) as exc:
        raise fail(str(exc)) from None


@cluster_app.command("undrain")
def cluster_undrain(
    node: Annotated[str, typer.Argument(help="The node to put back (cluster.nodes name).")],
    out: OutOption = None,
    config: ConfigOption = None,
) -> None:
    """Put a drained node back: active in Kamailio, robot calls again."""
    from core.config import ConfigError
    from telephony.kamailio import KamailioRefused, KamailioUnreachable
    from tools.cluster.drain import node_named, undrain
    from tools.cluster.layout import cluster_of

    cfg = config_or_exit(config)
    layout = layout_for(cfg, out)
    try:
        cluster = cluster_of(cfg)
        undrain(cluster, layout.kamailio_ctl(), node_named(cluster, node), say)
    except (ConfigError, KamailioRefused, KamailioUnreachable) as exc:
        raise fail(str(exc)) from None


@cluster_app.command("node-daemon")
def cluster_node_daemon(
    node: Annotated[str, typer.Option("--node", help="The node this daemon serves.")],
    config: ConfigOption = None,
    verbose: bool = False,
) -> None:
    """Ship the node's finished recordings and CDRs into the store, until SIGTERM/SIGINT."""
    from hotline.cli.support import setup_logging

    cfg = config_or_exit(config)
    setup_logging(verbose, cfg)
    try:
        from hotline.node_daemon import run_node_daemon
    except ImportError:
        raise fail("the node daemon is not built yet (hotline/node_daemon.py)") from None
    from core.config import ConfigError

    try:
        run_node_daemon(cfg, node)
    except ConfigError as exc:
        raise fail(str(exc)) from None

"""`hotline cluster render`: every host's files of the scale-out (issue 22).

`up`, `status`, `drain` and `down` are not built yet (docs/scaling-out.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hotline.cli.support import ConfigOption, config_or_exit, console, fail

cluster_app = typer.Typer(help="Scale-out: Kamailio, Asterisk nodes, FastAGI workers (render).")


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

"""`hotline cluster render`: every host's files from one config, the same on every run.

out/kamailio/kamailio.cfg, dispatcher.list and phones.cfg (the SIP front; the
last holds the phones' passwords and is its owner's only), out/nodes/astN/
(each node's Asterisk tree, for `asterisk -C out/nodes/astN/asterisk.conf`),
out/haproxy/astN.cfg (each node's FastAGI balancer). A file this renderer
wrote last time for a node that is gone is removed (the list of what it wrote
is kept in out/rendered.txt); nothing else in out is touched.
"""

from __future__ import annotations

from pathlib import Path

from core.config import HotlineConfig
from tools.cluster.haproxy import haproxy_cfg
from tools.cluster.kamailio import (
    PHONES_FILE,
    dispatcher_list,
    kamailio_cfg,
    phone_secrets,
    phones_cfg,
)
from tools.cluster.layout import ClusterLayout, cluster_of
from tools.cluster.nodes import render_node

MANIFEST = "rendered.txt"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_secret(path: Path, text: str) -> Path:
    """A file of passwords: created readable by its owner only, before anything is in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text, encoding="utf-8")
    return path


def render_cluster(config: HotlineConfig, layout: ClusterLayout) -> list[Path]:
    """Write every host's files into layout.out_dir; return them (ConfigError without cluster:)."""
    cluster = cluster_of(config)
    kamailio = layout.kamailio_dir()
    layout.run_dir.mkdir(parents=True, exist_ok=True)  # kamailio -c makes its rundir in it
    written = [
        write(kamailio / "kamailio.cfg", kamailio_cfg(cluster, layout)),
        write(kamailio / "dispatcher.list", dispatcher_list(cluster)),
        write_secret(kamailio / PHONES_FILE, phones_cfg(phone_secrets(config))),
    ]
    for node in cluster.nodes:
        written += render_node(config, node, layout)
        written.append(write(layout.haproxy_file(node), haproxy_cfg(config, node, layout)))
    forget_stale(layout.out_dir, written)
    return written


def forget_stale(out_dir: Path, written: list[Path]) -> None:
    """Remove what the last render wrote and this one did not; record this one's files."""
    manifest = out_dir / MANIFEST
    now = sorted(str(path.relative_to(out_dir)) for path in written)
    if manifest.exists():
        for name in set(manifest.read_text(encoding="utf-8").split()) - set(now):
            (out_dir / name).unlink(missing_ok=True)
    manifest.write_text("\n".join(now) + "\n", encoding="utf-8")

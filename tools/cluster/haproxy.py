"""Each node's HAProxy: its FastAGI requests spread over the healthy workers."""

from __future__ import annotations

from core.config import ClusterConfig, ClusterNode, HotlineConfig
from tools.cluster.layout import ClusterLayout


def haproxy_cfg(config: HotlineConfig, node: ClusterNode, layout: ClusterLayout) -> str:
    """The node's haproxy.cfg: `mode tcp`, least connections, redispatch, HTTP health checks.

    A worker is checked on its health port (`/healthz` of `hotline serve`)
    every second; two failures take it out, so a stuck event loop stops
    getting calls even while its AGI port still accepts. A connection
    refused by a dead worker is sent to another one (`option redispatch`,
    `retries`). A call lives as long as its AGI session: the client and
    server timeouts are the AGI handler's. Connections leave from the node's
    own address, so a worker can tell the nodes apart (agi.allowed_peers).
    """
    cluster: ClusterConfig = config.cluster  # type: ignore[assignment]
    session = int(config.agi.handler_timeout)
    servers = [
        f"    server {w.name} {w.address}:{w.agi_port} check port {w.health_port} "
        "inter 1s fall 2 rise 2"
        for w in cluster.workers
    ]
    lines = [
        "# written by `hotline cluster render` from config.yaml; do not edit",
        f"# node {node.name}: its dialplan's HOTLINE_AGI is agi://{node.address}:{node.agi_port}",
        "global",
        "    maxconn 4096",
        f"    stats socket {layout.haproxy_stats(node)} mode 600 level admin",
        "",
        "defaults",
        "    mode tcp",
        "    timeout connect 1s",
        f"    timeout client {session}s",
        f"    timeout server {session}s",
        "    timeout check 1s",
        "    retries 2",
        "    option redispatch",
        "",
        "frontend agi",
        f"    bind {node.address}:{node.agi_port}",
        "    default_backend workers",
        "",
        "backend workers",
        "    mode tcp",
        "    balance leastconn",
        "    option redispatch",
        f"    source {node.address}",
        "    option httpchk",
        f"    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host {node.name}",
        "    http-check expect status 200",
        *servers,
    ]
    return "\n".join(lines) + "\n"

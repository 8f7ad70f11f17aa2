"""Kamailio's files: kamailio.cfg (the SIP front's routing), dispatcher.list (the nodes)
and phones.cfg (who may register, with which password: readable by its owner only)."""

from __future__ import annotations

from core.config import ClusterConfig, ClusterNode, ConfigError, HotlineConfig
from core.paths import project_dir
from core.seats import seat_password, seats
from tools.cluster.layout import ClusterLayout
from tools.local_asterisk.render import fill

TEMPLATE = project_dir() / "tools" / "cluster" / "templates" / "kamailio.cfg"
# the one dispatcher set: every node answers every line
NODES_SET = 1
PHONES_FILE = "phones.cfg"


def node_uri(node: ClusterNode) -> str:
    """The node as dispatcher.list names it (and as `kamcmd dispatcher.set_state` takes it)."""
    return f"sip:{node.address}:{node.sip_port}"


def dispatcher_list(cluster: ClusterConfig) -> str:
    """One line per node: set, SIP URI, flags, priority, attributes.

    `duid` names the node for algorithm 10's call counting; `maxload=0`: no
    cap of the front's own (a node refuses what it cannot take with a 503).
    """
    lines = [
        "# written by `hotline cluster render` from config.yaml; do not edit",
        "# setid destination flags priority attributes",
    ]
    for node in cluster.nodes:
        lines.append(f"{NODES_SET} {node_uri(node)} 0 0 duid={node.name};maxload=0")
    return "\n".join(lines) + "\n"


def kamailio_values(cluster: ClusterConfig, layout: ClusterLayout) -> dict[str, str]:
    """The placeholders of the kamailio.cfg template."""
    front = cluster.front
    return {
        "RUN_DIR": str(layout.run_dir),
        "MODULE_DIR": str(layout.kamailio_module_dir),
        "FRONT_ADDRESS": front.address,
        "FRONT_SIP_PORT": str(front.sip_port),
        "FRONT_WS_PORT": str(front.ws_port),
        "FR_TIMER_MS": str(front.fr_timer_ms),
        "FR_INV_TIMER_MS": str(front.fr_inv_timer_ms),
        "DISPATCHER_LIST": str(layout.kamailio_dir() / "dispatcher.list"),
        "PING_FROM": f"sip:hotline-front@{front.address}",
        "PROBING_INTERVAL": str(front.probing_interval_seconds),
        "PROBING_THRESHOLD": str(front.probing_threshold),
        "DISPATCHER_SET": str(NODES_SET),
        "ALGORITHM": str(front.algorithm),
        "PHONES_NETWORK": front.phones_network,
        "REALM": front.address,
        "PHONE_SECRETS": str(layout.kamailio_dir() / PHONES_FILE),
    }


def kamailio_cfg(cluster: ClusterConfig, layout: ClusterLayout) -> str:
    """The SIP front's kamailio.cfg, filled from the cluster section."""
    text = TEMPLATE.read_text(encoding="utf-8")
    return fill(text, kamailio_values(cluster, layout), str(TEMPLATE))


def phone_secrets(config: HotlineConfig) -> dict[str, str]:
    """Every phone that may register at the front, and its SIP password.

    The agents' seats (browser and desk phones) with the passwords their
    phones already use (`core.seats.seat_password`), and the configured test
    phones (`asterisk.sip.citizen_phones`).
    """
    agents, key = config.agents, config.agent_sip_key()
    secrets = {
        seat.endpoint: seat_password(key, seat.endpoint)
        for seat in seats(agents.webrtc_seats, agents.desk_seats)
    }
    for user in config.asterisk.sip.citizen_phones:
        secrets[user] = config.phone_secret(user)
    return secrets


def phones_cfg(secrets: dict[str, str]) -> str:
    """The statements that fill Kamailio's `phones` table at start (included by kamailio.cfg)."""
    lines = ["# written by `hotline cluster render`; secrets: keep it readable by its owner only"]
    for user, secret in sorted(secrets.items()):
        for text, what in ((user, "phone name"), (secret, f"{user}'s password")):
            if not text or any(c in text for c in '"\\\n\r$'):
                raise ConfigError(f"{what} cannot be written for Kamailio (quotes, $, newline)")
        lines.append(f'$sht(phones=>{user}) = "{secret}";')
    return "\n".join(lines) + "\n"

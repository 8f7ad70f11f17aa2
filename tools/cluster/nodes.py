"""Each Asterisk node's tree: the one-box tree, rendered with the node's own values.

The node differs from the one box only where it must: its systemname (its
Uniqueids read ast1-…), its SIP address and RTP range, its AMI address and
port, its own disk, and FastAGI through its local HAProxy. It also knows the
SIP front: a `sip-front` endpoint that Kamailio's address is identified as
(no authentication, so the front's OPTIONS get 200, not 401), the way in for
callers and the way out for the robot (`PJSIP/{number}@sip-front`).
"""

from __future__ import annotations

from pathlib import Path

from core.config import ClusterConfig, ClusterNode, HotlineConfig
from core.sip_front import FRONT_ENDPOINT, FRONT_OUTBOUND, FRONT_WEBRTC_ENDPOINT
from tools.cluster.layout import ClusterLayout
from tools.local_asterisk.render import AsteriskLayout, render

FRONT_FILE = "pjsip_front.conf"
GENERATED = "; written by `hotline cluster render` from config.yaml; do not edit\n"


def node_config(config: HotlineConfig, node: ClusterNode, layout: ClusterLayout) -> HotlineConfig:
    """The config as this node's Asterisk sees it (values already validated by `cluster:`)."""
    ast = config.asterisk
    sip = ast.sip.model_copy(
        update={
            "bind": node.address,
            "port": node.sip_port,
            "rtp_start": node.rtp_start,
            "rtp_end": node.rtp_end,
        }
    )
    ami = ast.ami.model_copy(update={"host": node.address, "port": node.ami_port})
    asterisk = ast.model_copy(
        update={
            "sip": sip,
            "ami": ami,
            "systemname": node.name,
            "outbound_channel": FRONT_OUTBOUND,
        }
    )
    agi = config.agi.model_copy(update={"host": node.address, "port": node.agi_port})
    # MixMonitor writes to the node's own disk: a stalled store never blocks media
    paths = config.paths.model_copy(
        update={"recordings_dir": layout.node_state(node) / "recordings"}
    )
    return config.model_copy(update={"asterisk": asterisk, "agi": agi, "paths": paths})


def front_conf(cluster: ClusterConfig, node: ClusterNode) -> str:
    """The `sip-front` endpoint, aor and identify: Kamailio, known by its address."""
    front = cluster.front
    return GENERATED + "\n".join(
        [
            "; Kamailio (cluster.front): callers' INVITEs come from it, the robot's calls and",
            "; the agents' calls go out through it; identified by address, no authentication",
            f"[{FRONT_ENDPOINT}]",
            "type = endpoint",
            "context = hotline-in",
            "disallow = all",
            "allow = ulaw,alaw",
            "dtmf_mode = auto",
            "direct_media = no",
            "rtp_symmetric = yes",
            "force_rport = yes",
            f"media_address = {node.address}",
            f"aors = {FRONT_ENDPOINT}",
            "",
            f"[{FRONT_ENDPOINT}]",
            "type = aor",
            f"contact = sip:{front.address}:{front.sip_port}",
            "qualify_frequency = 0",
            "",
            f"[{FRONT_ENDPOINT}]",
            "type = identify",
            f"endpoint = {FRONT_ENDPOINT}",
            f"match = {front.address}",
            "",
            "; the agents' browser phones, rung through the front (PJSIP/agent-w001@"
            f"{FRONT_WEBRTC_ENDPOINT}):",
            "; DTLS-SRTP, ICE and rtcp-mux as a browser seat on one box; the front passes the",
            "; SDP through, so media flows between the browser and this node",
            f"[{FRONT_WEBRTC_ENDPOINT}]",
            "type = endpoint",
            "context = hotline-agent-phones",
            "disallow = all",
            "allow = ulaw,alaw",
            "webrtc = yes",
            "dtls_auto_generate_cert = yes",
            "dtmf_mode = rfc4733",
            "direct_media = no",
            "rtp_symmetric = yes",
            "force_rport = yes",
            f"media_address = {node.address}",
            f"aors = {FRONT_ENDPOINT}",
            "",
        ]
    )


def render_node(config: HotlineConfig, node: ClusterNode, layout: ClusterLayout) -> list[Path]:
    """Write the node's Asterisk tree (the one-box renderer, the node's values) and its front."""
    cluster: ClusterConfig = config.cluster  # type: ignore[assignment]
    etc = layout.node_dir(node)
    state = layout.node_state(node)
    asterisk = AsteriskLayout(
        etc_dir=etc,
        state_dir=state,
        run_dir=layout.run_dir / node.name,
        module_dir=layout.asterisk_module_dir,
    )
    written = render(node_config(config, node, layout), asterisk, etc)
    front = etc / FRONT_FILE
    front.write_text(front_conf(cluster, node), encoding="utf-8")
    pjsip = etc / "pjsip.conf"
    pjsip.write_text(
        pjsip.read_text(encoding="utf-8")
        + "\n; the SIP front (Kamailio), rendered by `hotline cluster render`\n"
        + f'#include "{FRONT_FILE}"\n',
        encoding="utf-8",
    )
    front.chmod(0o600)
    return [*written, front]

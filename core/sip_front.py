"""How a cluster's Asterisk nodes reach phones and the outside: through the SIP front.

Every node has two PJSIP endpoints for Kamailio (rendered by
tools/cluster/nodes.py): `sip-front`, for callers, desk phones and the way out,
and `sip-front-webrtc`, the same front for the agents' browser phones, whose
calls must carry DTLS-SRTP and ICE (the front passes SDP through untouched).
Agents' phones register at the front, so a node rings a desk seat as
`PJSIP/<seat>@sip-front`, a browser seat as `PJSIP/<seat>@sip-front-webrtc`,
and dials a citizen as `PJSIP/<number>@sip-front`. The channel such a dial
makes is named after the endpoint (`PJSIP/sip-front-0000002a`), not after the
seat.
"""

from __future__ import annotations

from core.seats import PREFIX

FRONT_ENDPOINT = "sip-front"
FRONT_WEBRTC_ENDPOINT = "sip-front-webrtc"
FRONT_OUTBOUND = f"PJSIP/{{number}}@{FRONT_ENDPOINT}"  # asterisk.outbound_channel's form


def front_endpoint(seat: str) -> str:
    """The node's endpoint that reaches a seat through the front (a browser seat's has DTLS)."""
    return FRONT_WEBRTC_ENDPOINT if seat.startswith(PREFIX["webrtc"]) else FRONT_ENDPOINT


def front_interface(seat: str) -> str:
    """How a node rings a seat: through the front, where the phone registered."""
    return f"PJSIP/{seat}@{front_endpoint(seat)}"


def front_websocket(address: str, ws_port: int) -> str:
    """Where the agents' browser phones register in a cluster: the front's SIP over WebSocket."""
    return f"ws://{address}:{ws_port}"

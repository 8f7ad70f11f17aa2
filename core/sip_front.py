"""How a cluster's Asterisk nodes reach phones and the outside: through the SIP front.

Every node has one PJSIP endpoint for Kamailio, `sip-front` (rendered by
tools/cluster/nodes.py). Agents' phones register at the front, so a node rings
a seat as `PJSIP/<seat>@sip-front`, and dials a citizen as
`PJSIP/<number>@sip-front`. The channel such a dial makes is named after the
endpoint (`PJSIP/sip-front-0000002a`), not after the seat.
"""

from __future__ import annotations

FRONT_ENDPOINT = "sip-front"
FRONT_OUTBOUND = f"PJSIP/{{number}}@{FRONT_ENDPOINT}"  # asterisk.outbound_channel's form


def front_interface(seat: str) -> str:
    """How a node rings a seat: through the front, where the phone registered."""
    return f"PJSIP/{seat}@{FRONT_ENDPOINT}"

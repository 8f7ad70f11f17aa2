"""The one AMI client factory: `asterisk.ami` and the secret, mapped to a client once.

`telephony` may not read the config and the store takes plain values, so the
mapping lives on a floor of its own that may import both `core` and
`telephony`; the robot, the console's live calls and `hotline serve` all build
their links here, so a new AMI setting is passed on in one place.
"""

from __future__ import annotations

from core.config import HotlineConfig
from telephony.ami import AMIClient


def ami_client(config: HotlineConfig) -> AMIClient:
    """An AMI client for this config (not connected yet)."""
    ami = config.asterisk.ami
    return AMIClient(
        ami.host,
        ami.port,
        ami.username,
        config.ami_secret(),
        connect_timeout=ami.connect_timeout,
        reconnect_max_delay=ami.reconnect_max_delay,
        secret_hint=ami.secret_env,
    )

"""The one AMI client factory: `asterisk.ami` and the secret, mapped to a client once.

`telephony` may not read the config and the store takes plain values, so the
mapping lives on a floor of its own that may import both `core` and
`telephony`; the robot, the console's live calls and `hotline serve` all build
their links here, so a new AMI setting is passed on in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from core.config import HotlineConfig
from telephony.ami import AMIClient, AMIError, AMIEvent

log = logging.getLogger(__name__)


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


async def follow_events(
    config: HotlineConfig,
    stop: asyncio.Event,
    names: Iterable[str],
    feed: Callable[[AMIEvent], None],
    linked: Callable[[bool], None],
    what: str,
) -> None:
    """Feed the named AMI events to feed until stop, on a link of their own.

    An unreachable Asterisk is retried every few seconds; linked(up) says
    whether the link is up, on every turn (the console's live pages show it).
    """
    while not stop.is_set():
        client = ami_client(config)
        try:
            await client.connect()
        except (AMIError, OSError) as exc:
            linked(False)
            log.info("%s: AMI not reachable (%s); retrying", what, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 3)
            continue
        queue = client.subscribe(*names)
        try:
            while not stop.is_set():
                linked(client.connected.is_set())
                try:
                    feed(await asyncio.wait_for(queue.get(), 1))
                except TimeoutError:
                    continue
        finally:
            linked(False)
            client.unsubscribe(queue)
            await client.close()

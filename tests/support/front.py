"""The SIP front for tests: Kamailio running `hotline cluster render`'s kamailio.cfg."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.config import load_config
from tests.support.config import write_config
from tests.support.programs import installed
from tests.support.sip_udp import SipPeer
from tools.cluster.kamailio import phone_secrets
from tools.cluster.layout import ClusterLayout, kamailio_module_dir
from tools.cluster.render import render_cluster


@dataclass(frozen=True)
class Front:
    """A running front: its log, and who may register there with which password."""

    log: Path
    secrets: dict[str, str]


@contextmanager
def running_front(
    folder: Path, cluster: dict[str, object], phones: tuple[str, ...] = ()
) -> Iterator[Front]:
    """Kamailio on the cluster section's front address until the block ends.

    `phones`: test phones allowed to register (as `asterisk.sip.citizen_phones`),
    beside the agents' seats.
    """
    kamailio = installed("kamailio")
    sip = {"sip": {"citizen_phones": list(phones)}} if phones else {}
    config = load_config(
        write_config(folder, cluster=cluster, **({"asterisk": sip} if sip else {}))
    )
    layout = ClusterLayout(
        out_dir=folder / "out",
        state_dir=folder / "hosts",
        run_dir=folder / "run",
        asterisk_module_dir=Path("/usr/lib/x86_64-linux-gnu/asterisk/modules"),
        kamailio_module_dir=kamailio_module_dir(),
    )
    render_cluster(config, layout)
    log = folder / "kamailio.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(kamailio), "-f", str(layout.kamailio_dir() / "kamailio.cfg"), "-D", "-E"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Front(log, phone_secrets(config))
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def registered(phone: SipPeer, user: str, front: Front, within: float = 60) -> None:
    """Register user with its password at the front, retrying while Kamailio starts."""
    deadline = time.monotonic() + within
    while True:
        try:
            reply = phone.register(user, timeout=1, password=front.secrets[user])
        except TimeoutError:
            if time.monotonic() > deadline:
                raise AssertionError(front.log.read_text(errors="replace")[-3000:]) from None
            continue
        assert reply.status == 200, reply.first
        return

"""The SIP front for tests: Kamailio running `hotline cluster render`'s kamailio.cfg."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.config import load_config
from tests.support.config import write_config
from tests.support.programs import installed
from tests.support.sip_udp import SipPeer
from tools.cluster.layout import ClusterLayout, kamailio_module_dir
from tools.cluster.render import render_cluster


@contextmanager
def running_front(folder: Path, cluster: dict[str, object]) -> Iterator[Path]:
    """Kamailio on the cluster section's front address until the block ends; its log file."""
    kamailio = installed("kamailio")
    config = load_config(write_config(folder, cluster=cluster))
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
        yield log
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def registered(phone: SipPeer, user: str, log: Path, within: float = 60) -> None:
    """Register user at the front, retrying while Kamailio is still starting."""
    deadline = time.monotonic() + within
    while True:
        try:
            reply = phone.register(user, timeout=1)
        except TimeoutError:
            if time.monotonic() > deadline:
                raise AssertionError(log.read_text(errors="replace")[-3000:]) from None
            continue
        assert reply.status == 200, reply.first
        return

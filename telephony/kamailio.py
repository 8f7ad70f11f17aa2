"""Kamailio's control socket as the rest of the code sees it: the nodes' states, set and read.

The SIP front (issue 22) keeps each Asterisk node in its dispatcher set with a
state: active (gets new calls), inactive (missed its OPTIONS probes; it comes
back by itself when it answers again) or disabled (taken out by hand: probes
do not bring it back, which is what `hotline cluster drain` needs). We speak
to it the way an operator does, through `kamcmd -s <ctl socket>` (the `ctl`
module's binrpc socket named in the rendered kamailio.cfg), so what the code
sees is what `kamcmd dispatcher.list` shows on a terminal.

kamcmd exits 0 even when the RPC fails ("error: 500 - State Update Failed" on
stdout): every answer is checked for that line.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Literal

# kamcmd is in sbin, which an ordinary user's PATH may lack
SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SIP_PORT = 5060
# the rendered kamailio.cfg has one dispatcher set: every node answers every line
NODES_SET = 1
# active and inactive keep the probing flag (P): a node set active is still probed, so it drops
# out again if it does not answer; disabled is not probed (X) and stays out until set active
STATE_LETTERS = {"active": "ap", "inactive": "ip", "disabled": "d"}
NodeState = Literal["active", "inactive", "disabled"]

_FIELD = re.compile(r"^\s*([A-Z_]+):\s*(.*?)\s*$")
_URI = re.compile(r"^sips?:(?:[^@]+@)?(\[[^\]]+\]|[^:;>]+)(?::(\d+))?")
_RPC_ERROR = re.compile(r"^error:\s*(\d+)\s*-\s*(.*)$", re.MULTILINE)


class KamailioUnreachable(Exception):
    """kamcmd could not ask Kamailio (no socket, no answer in time, or kamcmd missing)."""


class KamailioRefused(Exception):
    """Kamailio answered the RPC with an error (an unknown node, a bad state)."""


@dataclass(frozen=True)
class FrontNode:
    """One destination of the dispatcher set, as `dispatcher.list` shows it.

    `flags` is Kamailio's own pair of letters: A/I/D (active, inactive,
    disabled) then P/X (probing or not). `duid` is the node's name from
    dispatcher.list's attributes (`duid=ast1`), empty when the line has none.
    """

    uri: str
    address: str
    port: int
    active: bool
    probing: bool
    flags: str
    duid: str = ""
    load: int = 0  # calls the front counts on it (algorithm 10's DLGLOAD)

    @property
    def state(self) -> str:
        """active, inactive or disabled: the first of Kamailio's flags, in words."""
        first = self.flags[:1].upper()
        return {"A": "active", "I": "inactive", "D": "disabled"}.get(first, "unknown")


def kamcmd_program() -> str:
    """The installed kamcmd (Debian's kamailio package ships it in /usr/sbin)."""
    found = shutil.which("kamcmd", path=SEARCH_PATH)
    if found is None:
        raise KamailioUnreachable("kamcmd is not installed: apt-get install kamailio")
    return found


def kamcmd(ctl: str, *command: str, timeout: float = 2.0) -> str:
    """Run one RPC over the control socket `ctl` (`unix:/…/kamailio_ctl`); its output."""
    argv = [kamcmd_program(), "-s", ctl, *command]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise KamailioUnreachable(
            f"Kamailio did not answer {command[0]} on {ctl} within {timeout:g} s"
        ) from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise KamailioUnreachable(
            f"kamcmd -s {ctl} {command[0]} failed (exit {done.returncode}): "
            f"{said[-1] if said else 'no output'} — is Kamailio running (hotline cluster up)?"
        )
    error = _RPC_ERROR.search(done.stdout)
    if error:
        raise KamailioRefused(f"Kamailio refused {' '.join(command)}: {error.group(2).strip()}")
    return done.stdout


def parse_uri(uri: str) -> tuple[str, int]:
    """The host and port of a destination's SIP URI (5060 when it names none)."""
    found = _URI.match(uri)
    if found is None:
        raise ValueError(f"not a SIP URI: {uri!r}")
    host = found.group(1).strip("[]")
    return host, int(found.group(2) or DEFAULT_SIP_PORT)


def parse_dispatcher_list(text: str) -> list[FrontNode]:
    """Every DEST block of `kamcmd dispatcher.list`, in the order Kamailio lists them."""
    nodes: list[FrontNode] = []
    dest: dict[str, str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == "DEST: {":
            if dest is not None:
                nodes.append(front_node(dest))
            dest = {}
            continue
        found = _FIELD.match(line)
        if dest is not None and found and found.group(2) != "{":
            # the first value of a name wins: URI and FLAGS come before the nested blocks
            dest.setdefault(found.group(1), found.group(2))
    if dest is not None:
        nodes.append(front_node(dest))
    return nodes


def front_node(fields: dict[str, str]) -> FrontNode:
    uri = fields.get("URI", "")
    address, port = parse_uri(uri)
    flags = fields.get("FLAGS", "")
    load = fields.get("DLGLOAD", "0")
    return FrontNode(
        uri=uri,
        address=address,
        port=port,
        active=flags[:1].upper() == "A",
        probing="P" in flags[1:].upper(),
        flags=flags,
        duid=fields.get("DUID", ""),
        load=int(load) if load.isdigit() else 0,
    )


def dispatcher_list(ctl: str, timeout: float = 2.0) -> list[FrontNode]:
    """The nodes and their states as the running front sees them (KamailioUnreachable)."""
    return parse_dispatcher_list(kamcmd(ctl, "dispatcher.list", timeout=timeout))


def set_node_state(
    ctl: str, uri: str, state: NodeState, timeout: float = 2.0, group: int = NODES_SET
) -> None:
    """Set a node's state in the front: `dispatcher.set_state ap|ip|d <group> <uri>`.

    `disabled` keeps it out until it is set active again (probes do not bring
    it back); `inactive` lasts only until its next answered probes.
    KamailioRefused when the front has no such destination.
    """
    kamcmd(ctl, "dispatcher.set_state", STATE_LETTERS[state], str(group), uri, timeout=timeout)

"""Each node's Asterisk: one cached root for all of them, one `-C` tree each.

The start is the one-box start (tools/local_asterisk/local.py: the same
launch, the same wait for AMI and `core waitfullybooted`, the same hand-over
to the asterisk user and the same bind mounts into the root); only the tree,
the state folder and the addresses are the node's (tools/cluster/nodes.py
rendered them).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from core.config import ClusterNode, HotlineConfig
from tools.cluster.layout import ClusterLayout
from tools.local_asterisk.certs import CertificateError, ensure_certificate
from tools.local_asterisk.local import (
    AsteriskError,
    BootWatch,
    LocalAsterisk,
    asterisk_user,
    hand_over,
    launch,
    mount_shared,
    outermost,
    read_ami_banner,
    wait_booted,
)
from tools.local_asterisk.provision import (
    AsteriskInstall,
    ProvisionError,
    find_install,
    provision,
)

NODE_FOLDERS = ("log", "log/cdr-csv", "spool", "db", "recordings", "keys")


@dataclass(frozen=True)
class NodeAsterisk:
    """One node's Asterisk: its tree, its disk and how to talk to it."""

    config: HotlineConfig
    node: ClusterNode
    layout: ClusterLayout
    install: AsteriskInstall

    @property
    def conf(self) -> Path:
        return self.layout.node_dir(self.node) / "asterisk.conf"

    @property
    def state(self) -> Path:
        return self.layout.node_state(self.node)

    @property
    def console_log(self) -> Path:
        return self.state / "log" / "console.log"

    def tell(self) -> tuple[str, ...]:
        """The words of its command line that make it this node's Asterisk."""
        return (str(self.conf),)

    def rx(self, command: str, timeout: float = 15.0) -> str:
        """One CLI command on this node's running Asterisk."""
        argv = self.install.command("-C", str(self.conf), "-rx", command)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AsteriskError(f"{self.node.name}: asterisk -rx {command!r} timed out") from None
        if done.returncode != 0:
            raise AsteriskError(f"{self.node.name}: asterisk -rx {command!r} failed")
        return done.stdout

    def ami_answers(self) -> bool:
        return read_ami_banner(self.node.address, self.node.ami_port, timeout=1.0) is not None

    def shared_folders(self) -> list[Path]:
        """Host folders the root must see at the same path: its tree, its disk, the prompts."""
        return outermost(
            [
                self.layout.state_dir,
                self.layout.out_dir,
                self.config.sounds_dir,
                self.layout.run_dir,
            ]
        )

    def prepare(self) -> list[Path]:
        """Its folders, certificate and mounts ready; the mounts this call made."""
        for sub in NODE_FOLDERS:
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        try:  # the agents' browser phones' wss certificate, on the node's own address
            ensure_certificate(self.state / "keys", self.node.address)
        except CertificateError as exc:
            raise AsteriskError(str(exc)) from None
        LocalAsterisk.prune_stale_mounts(self.install)
        return mount_shared(self.install, self.shared_folders())

    def boot(self) -> subprocess.Popen[bytes]:
        """Start it (prepared) and wait until it is fully booted (AsteriskError if not)."""
        run_dir = self.install.host_path(self.layout.run_dir / self.node.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        user = asterisk_user(self.install)
        if user is not None:
            hand_over(self.layout.node_dir(self.node), user, always=True)
            hand_over(self.state / "keys", user, always=True)
            hand_over(run_dir, user, always=True)
            for sub in ("log", "spool", "db", "recordings"):
                hand_over(self.state / sub, user, always=False)
        proc = launch(self.install, self.conf, self.console_log, user)
        watch = BootWatch(
            self.node.address, self.node.ami_port, self.config.asterisk.start_timeout, self.rx
        )
        try:
            wait_booted(proc, watch, f"{self.console_log} and {self.state / 'log'}/messages.log")
        except (AsteriskError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
            raise
        return proc


def node_asterisks(
    config: HotlineConfig, layout: ClusterLayout, install_missing: bool = True
) -> list[NodeAsterisk]:
    """Every node's Asterisk; the cached root is provisioned on first use (`up` only)."""
    assert config.cluster is not None
    try:
        install = provision(config) if install_missing else find_install(config)
    except ProvisionError as exc:
        raise AsteriskError(str(exc)) from None
    if install is None:
        raise AsteriskError("Asterisk is not provisioned yet: run `hotline cluster up`")
    return [NodeAsterisk(config, node, layout, install) for node in config.cluster.nodes]


def channel_count(text: str) -> int | None:
    """`core show channels count`'s "N active channels" line, as a number."""
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[1:3] == ["active", "channels"] and words[0].isdigit():
            return int(words[0])
    return None

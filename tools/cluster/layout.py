"""Where a rendered cluster's files and each host's writable folders live."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.config import ClusterConfig, ClusterNode, ConfigError, HotlineConfig
from tools.local_asterisk.provision import ProvisionError, find_install

# a unix socket path must fit in 108 bytes: the control sockets' folder stays short
MAX_RUN_DIR = 70
DEBIAN_ASTERISK_MODULES = Path("/usr/lib/x86_64-linux-gnu/asterisk/modules")
KAMAILIO_MODULE_GLOBS = ("usr/lib/*/kamailio/modules", "usr/lib/kamailio/modules")


@dataclass(frozen=True)
class ClusterLayout:
    """The rendered files (absolute paths inside them point here) and the hosts' folders."""

    out_dir: Path
    state_dir: Path  # each host's writable folder is state_dir / its name
    run_dir: Path  # control sockets: Kamailio's kamcmd, HAProxy's stats, Asterisk's CLI
    asterisk_module_dir: Path
    kamailio_module_dir: Path

    def kamailio_dir(self) -> Path:
        return self.out_dir / "kamailio"

    def node_dir(self, node: ClusterNode) -> Path:
        """The node's Asterisk tree (its `-C` asterisk.conf is in it)."""
        return self.out_dir / "nodes" / node.name

    def haproxy_file(self, node: ClusterNode) -> Path:
        return self.out_dir / "haproxy" / f"{node.name}.cfg"

    def node_state(self, node: ClusterNode) -> Path:
        """The node's own disk: its logs, spool, AstDB and the recordings before shipping."""
        return self.state_dir / node.name

    def kamailio_ctl(self) -> str:
        """The front's control socket as kamcmd takes it (`ctl` module, in kamailio.cfg)."""
        return f"unix:{self.run_dir}/kamailio_ctl"

    def haproxy_stats(self, node: ClusterNode) -> Path:
        """The node's HAProxy stats socket (`stats socket` in its haproxy.cfg)."""
        return self.run_dir / f"haproxy-{node.name}.sock"


def cluster_of(config: HotlineConfig) -> ClusterConfig:
    """The config's cluster section; a one-box config has none to render."""
    if config.cluster is None:
        raise ConfigError(
            f"{config.source}: no cluster: section (see the commented example at the end of "
            "config.yaml, and docs/scaling-out.md)"
        )
    return config.cluster


def kamailio_module_dir(root: Path = Path("/")) -> Path:
    """Kamailio's module folder (Debian's multiarch path), or Debian's usual one."""
    for pattern in KAMAILIO_MODULE_GLOBS:
        found = sorted(root.glob(pattern))
        if found:
            return Path("/") / found[0].relative_to(root)
    return Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")


def short_run_dir(state_dir: Path) -> Path:
    """state_dir/run, or a folder in the temp dir named after it when that is too long."""
    run_dir = state_dir / "run"
    if len(str(run_dir)) <= MAX_RUN_DIR:
        return run_dir
    digest = hashlib.sha256(str(state_dir).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"hotline-cluster-{digest}"


def asterisk_module_dir(config: HotlineConfig) -> Path:
    """The module folder of the Asterisk the nodes run (the cached root's, as it sees it)."""
    try:
        install = find_install(config)
        if install is not None:
            return install.module_dir()
    except ProvisionError:
        pass
    return DEBIAN_ASTERISK_MODULES


def default_layout(
    config: HotlineConfig, out_dir: Path, asterisk_modules: Path | None = None
) -> ClusterLayout:
    """The layout `hotline cluster render` uses: hosts' folders under the state folder."""
    state = config.state_dir.resolve() / "cluster"
    return ClusterLayout(
        out_dir=out_dir.resolve(),
        state_dir=state,
        run_dir=short_run_dir(state),
        asterisk_module_dir=asterisk_modules or asterisk_module_dir(config),
        kamailio_module_dir=kamailio_module_dir(),
    )

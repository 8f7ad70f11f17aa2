"""Find or provision the Asterisk binary the local hotline runs.

Where Asterisk is installed on the machine, it is used as-is with a private
config tree. Otherwise Debian's Asterisk 22 (only in Debian unstable) is
installed with debootstrap into its own root, kept in a cache folder outside
the repo and reused by every later run. Asterisk is never built from source.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.config import HotlineConfig

SYSTEM_BINARY = Path("/usr/sbin/asterisk")
READY_MARK = ".hotline-ready"
APT_SOURCES = [Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d")]


class ProvisionError(Exception):
    """Asterisk could not be found or installed; the message says what to do."""


@dataclass(frozen=True)
class AsteriskInstall:
    """An Asterisk binary and how to run it: directly, or inside its own root."""

    root: Path | None  # None: the machine's own Asterisk

    def host_path(self, inner: Path) -> Path:
        """A path as Asterisk sees it, seen from the host."""
        return inner if self.root is None else self.root / inner.relative_to("/")

    def command(self, *args: str) -> list[str]:
        """The argv that runs Asterisk with args (through chroot for a private root)."""
        if self.root is None:
            return [str(SYSTEM_BINARY), *args]
        return ["chroot", str(self.root), str(SYSTEM_BINARY), *args]

    def module_dir(self) -> Path:
        """Asterisk's module folder, as Asterisk sees it."""
        for pattern in ("usr/lib/*/asterisk/modules", "usr/lib/asterisk/modules"):
            found = sorted(self.host_path(Path("/")).glob(pattern))
            if found:
                return Path("/") / found[0].relative_to(self.host_path(Path("/")))
        raise ProvisionError(f"no Asterisk module folder under {self.host_path(Path('/'))}usr/lib")

    def version(self) -> str:
        """The installed Asterisk's version line."""
        done = subprocess.run(self.command("-V"), capture_output=True, text=True, check=False)
        return done.stdout.strip() or done.stderr.strip()


def debian_mirror(sources: list[Path] = APT_SOURCES) -> str | None:
    """The Debian archive URL this machine's apt already uses (security mirrors excluded)."""
    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            files += sorted(source.glob("*.list")) + sorted(source.glob("*.sources"))
        elif source.exists():
            files.append(source)
    for file in files:
        for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            uris: list[str] = []
            if line.startswith("deb "):
                uris = [w for w in line.split()[1:] if "://" in w][:1]
            elif line.startswith("URIs:"):
                uris = line.split()[1:]
            for uri in uris:
                if re.search(r"/debian/?$", uri):
                    return uri.rstrip("/")
    return None


def _root_dir(config: HotlineConfig) -> Path:
    return config.cache_dir / f"asterisk-root-{config.asterisk.debian_suite}"


def find_install(config: HotlineConfig) -> AsteriskInstall | None:
    """The Asterisk to use without installing anything, if there is one."""
    mode = config.asterisk.mode
    if mode in ("auto", "system") and SYSTEM_BINARY.exists():
        return AsteriskInstall(root=None)
    if mode == "system":
        raise ProvisionError(
            "asterisk.mode is 'system' but /usr/sbin/asterisk is not installed; "
            "install it or set asterisk.mode: auto"
        )
    root = _root_dir(config)
    if (root / READY_MARK).exists():
        return AsteriskInstall(root=root)
    return None


def provision(
    config: HotlineConfig, progress: Callable[[str], None] = lambda _line: None
) -> AsteriskInstall:
    """Return a usable Asterisk, installing Debian's into the cache on first use."""
    install = find_install(config)
    if install is not None:
        return install
    if shutil.which("debootstrap") is None:
        raise ProvisionError(
            "no Asterisk here and no debootstrap to install one: apt-get install debootstrap"
        )
    mirror = config.asterisk.debian_mirror or debian_mirror()
    if mirror is None:
        raise ProvisionError(
            "no Debian mirror in /etc/apt/sources*; set asterisk.debian_mirror in config.yaml"
        )
    root = _root_dir(config)
    partial = root.with_name(root.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    command = [
        "debootstrap",
        "--variant=minbase",
        "--include=asterisk,asterisk-modules",
        config.asterisk.debian_suite,
        str(partial),
        mirror,
    ]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        tail: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            tail = [*tail[-20:], line.rstrip()]
            progress(line.rstrip())
    if proc.returncode != 0 or not (partial / "usr/sbin/asterisk").exists():
        raise ProvisionError(
            f"debootstrap of Debian {config.asterisk.debian_suite} failed "
            f"(exit {proc.returncode}): " + " | ".join(tail[-3:])
        )
    if root.exists():
        shutil.rmtree(root)
    partial.rename(root)
    (root / READY_MARK).write_text(AsteriskInstall(root=root).version() + "\n")
    return AsteriskInstall(root=root)

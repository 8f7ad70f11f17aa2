"""The real tools' own config checks: `kamailio -c` and `haproxy -c`."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# the daemons live in sbin, which an ordinary user's PATH may lack
SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PACKAGES = {"kamailio": "kamailio kamailio-websocket-modules", "haproxy": "haproxy"}


class ToolMissing(Exception):
    """A program the cluster needs is not installed; the message says which package."""


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    output: str

    def reason(self) -> str:
        """The tool's first error line (kamailio names the file, line and column)."""
        lines = [line.strip() for line in self.output.splitlines() if line.strip()]
        marked = [line for line in lines if any(w in line for w in ("ERROR", "ALERT", "CRITICAL"))]
        return (marked or lines or ["no output"])[0]


def tool(name: str) -> Path:
    """The installed program `name` (kamailio, haproxy)."""
    found = shutil.which(name, path=SEARCH_PATH)
    if found is None:
        raise ToolMissing(
            f"{name} is not installed: apt-get install {PACKAGES.get(name, name)} "
            "(`./hotline.sh test` installs it)"
        )
    return Path(found)


def run_check(command: list[str]) -> CheckResult:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    return CheckResult(done.returncode == 0, (done.stdout + done.stderr).strip())


def check_kamailio(cfg: Path) -> CheckResult:
    """`kamailio -c`: the script parses and every module loads with its parameters."""
    return run_check([str(tool("kamailio")), "-c", "-f", str(cfg)])


def check_haproxy(cfg: Path) -> CheckResult:
    """`haproxy -c`: the configuration is valid."""
    return run_check([str(tool("haproxy")), "-c", "-f", str(cfg)])

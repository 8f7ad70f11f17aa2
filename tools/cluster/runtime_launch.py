"""Starting one cluster process and waiting until it is ready: Kamailio, HAProxy, our own.

Every process gets a session of its own (a Ctrl-C at the `up` terminal does
not reach it), a log file in its host's state folder, and a readiness check:
Kamailio answers `dispatcher.list` on its control socket, HAProxy its stats
socket, a FastAGI worker its `/healthz`; robots, transcribers and node
daemons have no port and count as started when they are still alive after a
short settle.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.paths import project_dir

SETTLE_SECONDS = 2.0  # a process without a port: alive this long after its start counts


class StartFailed(Exception):
    """A process did not become ready; the message names it and its log."""


@dataclass(frozen=True)
class Launch:
    """One process to start: what to run, where its output goes, how to tell it is ready."""

    role: str
    name: str
    argv: list[str]
    tell: tuple[str, ...]
    log: Path
    ready: Callable[[], bool] | None = None  # None: alive SETTLE_SECONDS after its start
    timeout: float = 60.0
    cwd: Path | None = None


def spawn(launch: Launch) -> subprocess.Popen[bytes]:
    """Start the process in its own session, its output appended to its log."""
    launch.log.parent.mkdir(parents=True, exist_ok=True)
    with open(launch.log, "ab") as log:
        return subprocess.Popen(
            launch.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=launch.cwd,
        )


def wait_ready(launch: Launch, proc: subprocess.Popen[bytes]) -> None:
    """Wait until launch.ready() says yes; StartFailed (the process killed) if it dies or stalls."""
    begun = time.monotonic()
    deadline = begun + launch.timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartFailed(
                f"{launch.role} {launch.name} exited with status {proc.returncode} while "
                f"starting; see {launch.log}"
            )
        if launch.ready() if launch.ready else time.monotonic() - begun >= SETTLE_SECONDS:
            return
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    raise StartFailed(
        f"{launch.role} {launch.name} was not ready within {launch.timeout:.0f} s; see {launch.log}"
    )


def start(launch: Launch) -> subprocess.Popen[bytes]:
    proc = spawn(launch)
    wait_ready(launch, proc)
    return proc


def unix_socket_answers(path: Path, command: bytes = b"show info\n") -> bool:
    """A unix stream socket accepts a command and answers something (HAProxy's stats)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(1.0)
            conn.connect(str(path))
            conn.sendall(command)
            return bool(conn.recv(64))
    except OSError:
        return False


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """GET url answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def hotline_argv(*args: str, config: Path) -> list[str]:
    """`hotline ARGS -c CONFIG` with this interpreter (the project's virtualenv)."""
    return [sys.executable, "-m", "hotline.cli", *args, "--config", str(config)]


def hotline_launch(
    role: str,
    name: str,
    args: tuple[str, ...],
    config: Path,
    log: Path,
    ready: Callable[[], bool] | None = None,
) -> Launch:
    """A process of ours; its tell-tale words are its sub-command, its name and its config."""
    argv = hotline_argv(*args, config=config)
    tell = ("hotline.cli", *args, str(config))
    return Launch(role, name, argv, tell, log, ready, cwd=project_dir())

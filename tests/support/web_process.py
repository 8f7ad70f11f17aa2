"""`hotline web` / `hotline serve` in a child process, as an operator starts it, for the
console tests that need the real server (its worker pool, its port, its exit code)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def wait_for_port(
    port: int, seconds: float = 30.0, process: subprocess.Popen | None = None
) -> None:  # type: ignore[type-arg]
    """Until something accepts on 127.0.0.1:port (fails early if the process ended)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"the server ended with {process.returncode}") from None
            assert time.monotonic() < deadline, f"nothing listens on port {port}"
            time.sleep(0.1)


@contextlib.contextmanager
def hotline_process(
    command: str, config: Path, port: int | None = None, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """`hotline COMMAND -c config` in its own session; waits for port if given; SIGTERM at the end.

    Its stderr goes to `<config folder>/<command>.stderr` (read it with `stderr_of`).
    """
    errors = (config.parent / f"{command}.stderr").open("w")
    child = subprocess.Popen(
        [sys.executable, "-m", "hotline.cli", command, "-c", str(config)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=errors,
        text=True,
        start_new_session=True,
    )
    try:
        if port is not None:
            wait_for_port(port, process=child)
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(10)
        errors.close()


def stderr_of(command: str, config: Path) -> str:
    return (config.parent / f"{command}.stderr").read_text()

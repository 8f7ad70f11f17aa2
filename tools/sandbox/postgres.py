"""A throw-away PostgreSQL server for tests and benchmarks: initdb in a temp folder, loopback only.

Uses Debian's PostgreSQL binaries (the README's test command installs them).
As root it runs the server as the `postgres` user, which PostgreSQL insists on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def _pg_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "pg_ctl").exists():
            return candidate
    return None


@contextmanager
def temporary_postgres(port: int, fsync: bool = False) -> Iterator[str]:
    """Start a server on 127.0.0.1:port with an empty `hotline` database; yield its URL."""
    bindir = _pg_bin()
    if bindir is None:
        raise PostgresMissing(
            "PostgreSQL is not installed: run the README's test command (it installs it)"
        )
    # Not under pytest's 0700 tmp tree: the postgres user must be able to reach it.
    home = Path(tempfile.mkdtemp(prefix="hotline-pg-"))
    data = home / "data"
    run_as: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        shutil.chown(home, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    initdb = [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "hotline", "--no-sync"]
    subprocess.run([*run_as, *initdb], check=True, capture_output=True)
    options = (
        f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync={'on' if fsync else 'off'}"
    )
    start = [
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-w",
        "-l",
        str(home / "pg.log"),
    ]
    subprocess.run([*run_as, *start, "start"], check=True, capture_output=True)
    try:
        import psycopg

        with psycopg.connect(
            f"postgresql://hotline@127.0.0.1:{port}/postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE hotline")
        yield f"postgresql+psycopg://hotline@127.0.0.1:{port}/hotline"
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(home, ignore_errors=True)

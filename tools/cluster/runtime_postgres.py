"""The cluster's PostgreSQL on one box: a private server for `cluster.database_url`.

Only when the URL names a loopback address and nothing answers there: a real
site's PostgreSQL is its own and is never started by us. The server lives in
state_dir/cluster/postgres (Debian's binaries, as tools/sandbox/postgres.py
uses them), listens on the URL's address and port only, and trusts loopback
connections (it is a one-box rehearsal of the cluster, on 127/8). Its
superuser is the URL's user; the URL's database is created, then migrated.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from core.config import is_loopback


class PostgresStartError(Exception):
    """The private PostgreSQL could not be set up or started; the message names the log."""


@dataclass(frozen=True)
class PostgresTarget:
    """What the cluster's database URL asks for."""

    host: str
    port: int
    user: str
    database: str

    @classmethod
    def of(cls, url: str) -> PostgresTarget:
        parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://"))
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=parts.username or "postgres",
            database=parts.path.lstrip("/") or "postgres",
        )

    def answers(self, timeout: float = 1.0) -> bool:
        """Something accepts TCP connections at the URL's address and port."""
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout):
                return True
        except OSError:
            return False

    def ours_to_start(self) -> bool:
        """A loopback address where nothing answers: we may run a private server there."""
        return is_loopback(self.host) and not self.answers()


def pg_bin() -> Path:
    """Debian's PostgreSQL binaries (the newest installed)."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "pg_ctl").exists():
            return candidate
    raise PostgresStartError("PostgreSQL is not installed: apt-get install postgresql")


def run_as_postgres(home: Path) -> list[str]:
    """PostgreSQL refuses to run as root: as root, the `postgres` user runs it."""
    if os.geteuid() != 0:
        return []
    shutil.chown(home, "postgres", "postgres")
    return ["runuser", "-u", "postgres", "--"]


def reachable_by_postgres(folder: Path) -> None:
    """The postgres user must be able to walk down to its folder (pytest's tmp is 0700)."""
    if os.geteuid() != 0:
        return
    done = subprocess.run(
        ["runuser", "-u", "postgres", "--", "test", "-x", str(folder.parent)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise PostgresStartError(
            f"the postgres user cannot reach {folder.parent}: a folder above it is private "
            "(chmod o+x it, or put paths.state_dir somewhere others may traverse)"
        )


def start_postgres(target: PostgresTarget, home: Path) -> tuple[int, Path, Path]:
    """initdb (first time only) and start; (postmaster pid, data dir, log).

    The caller records the server before `create_database`: a failure there
    must still stop it.
    """
    bindir = pg_bin()
    home.mkdir(parents=True, exist_ok=True)
    reachable_by_postgres(home)
    run_as = run_as_postgres(home)
    data, log = home / "data", home / "postgres.log"
    if not (data / "PG_VERSION").exists():
        initdb = [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", target.user]
        done = subprocess.run([*run_as, *initdb, "--no-sync"], capture_output=True, text=True)
        if done.returncode != 0:
            raise PostgresStartError(f"initdb in {data} failed: {done.stderr.strip()[-300:]}")
    options = f"-p {target.port} -k {data} -c listen_addresses={target.host}"
    start = [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-t", "60", "-l"]
    done = subprocess.run([*run_as, *start, str(log), "start"], capture_output=True, text=True)
    if done.returncode != 0:
        raise PostgresStartError(f"PostgreSQL did not start on {target.port}; see {log}")
    return int((data / "postmaster.pid").read_text().split()[0]), data, log


def create_database(target: PostgresTarget, log: Path, timeout: float = 30.0) -> None:
    """The URL's database, created when missing (the server may still be opening)."""
    try:
        make_database(target, timeout)
    except Exception as exc:  # psycopg's errors: the server runs but refuses us
        raise PostgresStartError(
            f"cannot create database {target.database} as {target.user}: "
            f"{type(exc).__name__}; see {log}"
        ) from None


def make_database(target: PostgresTarget, timeout: float) -> None:
    import psycopg

    admin = f"postgresql://{target.user}@{target.host}:{target.port}/postgres"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
                found = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (target.database,)
                ).fetchone()
                if found is None:
                    conn.execute(f'CREATE DATABASE "{target.database}"')
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


# the postmaster's fast shutdown: open sessions are ended, not waited for
STOP_SIGNAL = int(signal.SIGINT)

"""Secrets without published defaults: from the environment, else generated once and kept.

A secret the environment does not give (the AMI password, each SIP phone's
password, the FastAGI key) is generated on first use with `secrets` and kept
in the state folder, readable by its owner only (0600 in a 0700 folder), so
every command of one installation reads the same value and no two
installations share one. A secret must survive being written into Asterisk's
configuration files: `;` starts a comment there and a line break ends the
value, so such secrets are refused with the variable's name instead of being
rendered raw.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

# Values that were published (this project's old local default among them) or guessed first.
KNOWN_WEAK = frozenset(
    {
        "local-only-not-a-secret",
        "secret",
        "password",
        "admin",
        "hotline",
        "asterisk",
        "amp111",
        "changeme",
        "1234",
        "123456",
        "12345",
    }
)
MIN_STRONG_LENGTH = 16
UNSAFE_CHARACTERS = frozenset(';\n\r\0"')


class SecretError(ValueError):
    """A secret that cannot be used as it is; the message names where it came from."""


def check_syntax(value: str, origin: str) -> str:
    """The value if Asterisk's config syntax can hold it; else SecretError naming origin."""
    if not value:
        raise SecretError(f"{origin}: the secret is empty")
    bad = sorted({repr(c) for c in value if c in UNSAFE_CHARACTERS or not c.isprintable()})
    if bad or value != value.strip():
        what = ", ".join(bad) if bad else "leading or trailing spaces"
        raise SecretError(
            f"{origin}: the secret contains {what}, which Asterisk's configuration cannot hold"
        )
    return value


def is_weak(value: str) -> bool:
    """Published, guessable or short."""
    return value.lower() in KNOWN_WEAK or len(value) < MIN_STRONG_LENGTH


class SecretStore:
    """Named secrets of one installation: environment first, else a file of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, name: str, env_var: str | None = None) -> str:
        """The secret `name`: $env_var if set, else the kept one (generated on first use)."""
        if env_var and (value := os.environ.get(env_var)) is not None:
            return check_syntax(value, f"${env_var}")
        path = self.folder / name
        try:
            return check_syntax(path.read_text(encoding="utf-8").strip(), str(path))
        except FileNotFoundError:
            return self._generate(path)

    def _generate(self, path: Path) -> str:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.folder.chmod(0o700)
        value = secrets.token_urlsafe(24)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process generated it first: use theirs
            return check_syntax(path.read_text(encoding="utf-8").strip(), str(path))
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(value + "\n")
            out.flush()
            os.fsync(out.fileno())
        return value

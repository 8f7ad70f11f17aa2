"""Console users: accounts, roles, the failed-login counter and its growing delay.

Takes password hashes, never passwords: hashing is the web layer's business. A new
password or a disabled account ends every session of the account at once (the
session version goes up, and the server-side sessions are ended).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard import sessions as console_sessions
from db.models import User, utcnow

ROLES = ("admin", "supervisor", "staff", "agent")


class UserError(ValueError):
    """A user that exists already, does not exist, or a role that does not fit."""


def user_by_name(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def add_user(
    session: Session, username: str, password_hash: str, role: str, department_id: int | None
) -> User:
    """A new account; staff must belong to a department, the others must not."""
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if (role == "staff") != (department_id is not None):
        raise UserError("staff accounts need a department (--unit CODE); other roles take none")
    if user_by_name(session, username) is not None:
        raise UserError(f"user {username!r} exists already")
    user = User(
        username=username,
        password_hash=password_hash,
        role=role,
        department_id=department_id,
        disabled=False,
        failed_logins=0,
        session_version=1,
    )
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def set_password(session: Session, user: User, password_hash: str) -> None:
    """A new password: the delay lifts and every older session ends."""
    user.password_hash = password_hash
    user.failed_logins = 0
    user.login_delay_until = None
    user.session_version += 1
    console_sessions.end_all(session, user.id, utcnow(), "password")
    session.flush()


def disable(session: Session, user: User) -> None:
    """No more logins, and every session of the account ends now."""
    user.disabled = True
    user.session_version += 1
    console_sessions.end_all(session, user.id, utcnow(), "disabled")
    session.flush()


def unlock(session: Session, user: User) -> bool:
    """Clear the failed-login count and its delay (an admin's act); True if there was one."""
    had = user.failed_logins > 0 or user.login_delay_until is not None
    user.failed_logins = 0
    user.login_delay_until = None
    session.flush()
    return had


@dataclass(frozen=True)
class Backoff:
    """How wrong passwords slow an account down: `free` in a row cost nothing, then each
    makes it wait `first` seconds, doubling, at most `longest`."""

    free: int
    first: int
    longest: int

    def delay(self, failures: int) -> timedelta | None:
        """The wait after this many wrong passwords in a row (None: none yet)."""
        if failures <= self.free:
            return None
        doublings = min(failures - self.free - 1, 30)
        return timedelta(seconds=min(self.first * 2**doublings, self.longest))


def is_delayed(user: User, now: datetime) -> bool:
    """Must this account wait before a password is looked at?"""
    return user.login_delay_until is not None and user.login_delay_until > now


def record_failure(session: Session, user: User, now: datetime, backoff: Backoff) -> None:
    """Count a wrong password; past the free ones the account waits a little longer."""
    user.failed_logins += 1
    wait = backoff.delay(user.failed_logins)
    user.login_delay_until = now + wait if wait is not None else None
    session.flush()


def record_success(session: Session, user: User, now: datetime) -> None:
    user.failed_logins = 0
    user.login_delay_until = None
    user.last_login_at = now
    session.flush()

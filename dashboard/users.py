"""Console users: accounts, roles, the failed-login counter and the lock.

Takes password hashes, never passwords: hashing is the web layer's business.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import User

ROLES = ("admin", "supervisor", "staff")


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
    """A new password: the lock lifts and every older session ends."""
    user.password_hash = password_hash
    user.failed_logins = 0
    user.locked_until = None
    user.session_version += 1
    session.flush()


def disable(session: Session, user: User) -> None:
    """No more logins, and every session of the account ends now."""
    user.disabled = True
    user.session_version += 1
    session.flush()


def is_locked(user: User, now: datetime) -> bool:
    return user.locked_until is not None and user.locked_until > now


def record_failure(
    session: Session, user: User, now: datetime, limit: int, lock_minutes: int
) -> bool:
    """Count a wrong password; the limit-th in a row locks the account. True if locked now."""
    user.failed_logins += 1
    if user.failed_logins >= limit:
        user.locked_until = now + timedelta(minutes=lock_minutes)
        user.failed_logins = 0
    session.flush()
    return is_locked(user, now)


def record_success(session: Session, user: User, now: datetime) -> None:
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    session.flush()

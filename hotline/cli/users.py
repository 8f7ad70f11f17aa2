"""`hotline users add|list|disable|passwd|unlock`: the supervisors' console accounts.

Passwords are asked for twice without echo (or read from two lines on stdin)
and stored as argon2id hashes. Features load inside each command, as in every
CLI module (see support.py): `hotline --help` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from hotline.cli.support import ConfigOption, config_or_exit, console, fail, sessions

users_app = typer.Typer(help="Console accounts: admin, supervisor, department staff.")
Name = Annotated[str, typer.Argument(help="The login name.")]
MIN_PASSWORD = 10


def _password() -> str:
    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        raise fail(f"password: at least {MIN_PASSWORD} characters")
    return password


@users_app.command("add")
def add(
    username: Name,
    role: Annotated[str, typer.Option(help="admin, supervisor, staff or agent.")] = "supervisor",
    unit: Annotated[str, typer.Option(help="Staff only: their department's code.")] = "",
    phone: Annotated[
        str, typer.Option(help="Agents only: webrtc (browser phone), desk, or script.")
    ] = "webrtc",
    queues: Annotated[
        str, typer.Option(help="Agents only: queues, comma-separated (default: every queue).")
    ] = "",
    config: ConfigOption = None,
) -> None:
    """Add an account (staff see their unit's subtree only; an agent gets a seat)."""
    from dashboard.agent_accounts import add_agent
    from dashboard.auth import hash_password
    from dashboard.users import UserError, add_user
    from db.departments import department_by_code
    from db.session import unit_of_work

    cfg = config_or_exit(config)
    if not username.isascii() or not username.replace("_", "").replace("-", "").isalnum():
        raise fail(f"user name {username!r}: letters, digits, '-' and '_' only")
    password = _password()
    try:
        with unit_of_work(sessions(cfg)) as session:
            department = department_by_code(session, unit) if unit else None
            if unit and department is None:
                raise fail(f"--unit: no department with code {unit!r}")
            if role == "agent":
                wanted = [q.strip() for q in queues.split(",") if q.strip()] or None
                agent = add_agent(session, cfg, username, hash_password(password), phone, wanted)
                console.print(f"agent {username} on seat {agent.endpoint} ({agent.queues})")
                return
            add_user(
                session,
                username,
                hash_password(password),
                role,
                department.id if department else None,
            )
    except UserError as exc:
        raise fail(str(exc)) from None
    console.print(f"user {username} added ({role}{' of ' + unit if unit else ''})")


@users_app.command("list")
def list_command(config: ConfigOption = None) -> None:
    """Every account with its role, unit, state and last login."""
    from dashboard.users import list_users
    from db.session import unit_of_work

    cfg = config_or_exit(config)
    table = Table("user", "role", "unit", "state", "failed logins", "last login")
    with unit_of_work(sessions(cfg)) as session:
        for user in list_users(session):
            table.add_row(
                user.username,
                user.role,
                user.department.code if user.department else "",
                "disabled" if user.disabled else "active",
                str(user.failed_logins or ""),
                f"{user.last_login_at.astimezone(cfg.tz):%Y-%m-%d %H:%M}"
                if user.last_login_at
                else "",
            )
    console.print(table)


def _change(username: str, config: ConfigOption, what: str) -> None:
    from dashboard.auth import hash_password
    from dashboard.users import disable, set_password, user_by_name
    from db.session import unit_of_work

    cfg = config_or_exit(config)
    password = _password() if what == "passwd" else ""
    with unit_of_work(sessions(cfg)) as session:
        user = user_by_name(session, username)
        if user is None:
            raise fail(f"no user {username!r} (see `hotline users list`)")
        if what == "passwd":
            set_password(session, user, hash_password(password))
        else:
            disable(session, user)
    console.print(f"user {username}: {'password changed' if what == 'passwd' else 'disabled'}; "
                  "their sessions have ended")  # fmt: skip


@users_app.command("disable")
def disable_command(username: Name, config: ConfigOption = None) -> None:
    """Stop an account from logging in and end its sessions now."""
    _change(username, config, "disable")


@users_app.command("passwd")
def passwd(username: Name, config: ConfigOption = None) -> None:
    """Set a new password (clears a login delay, ends the account's sessions)."""
    _change(username, config, "passwd")


@users_app.command("unlock")
def unlock_command(username: Name, config: ConfigOption = None) -> None:
    """Clear an account's failed logins and the delay they set (wrong passwords never lock)."""
    from dashboard.users import unlock, user_by_name
    from db.session import unit_of_work

    cfg = config_or_exit(config)
    with unit_of_work(sessions(cfg)) as session:
        user = user_by_name(session, username)
        if user is None:
            raise fail(f"no user {username!r} (see `hotline users list`)")
        had = unlock(session, user)
    console.print(
        f"user {username}: failed logins cleared" if had else f"user {username}: had no delay"
    )

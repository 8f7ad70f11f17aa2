"""GET/POST /login and POST /logout: sessions, with throttling and growing delays.

Every failed login, an unknown name, a disabled account, a wrong password or an
attempt within the account's delay, gets the same answer after the same work (one
argon2 check), so the login form tells no one which names exist. Wrong passwords
slow the account down (`dashboard.users.Backoff`) instead of locking it: a delay
is at most `web.login_delay_max_seconds`, attempts within it do not lengthen it,
and an admin clears it (`hotline users unlock`, or the accounts page).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from core.config import HotlineConfig
from dashboard import sessions as console_sessions
from dashboard.audit import audit
from dashboard.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    AddressThrottle,
    Keys,
    Viewer,
    check_csrf,
    clear_cookie,
    client_address,
    dummy_hash,
    read_cookie,
    session_cookie,
    session_viewer,
    set_cookie,
    verify_password,
)
from dashboard.render import page
from dashboard.users import Backoff, is_delayed, record_failure, record_success, user_by_name
from db.models import utcnow
from db.session import unit_of_work

router = APIRouter(tags=["login"])
WRONG = (
    "用户名或密码错误；多次输错后需稍候再试 / wrong user name or password "
    "(after repeated failures, wait a little before trying again)"
)


def _safe_next(target: str) -> str:
    """Only a local path (never another site) may follow a login."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _form(request: Request, message: str = "", status: int = 200, next_url: str = "/") -> Response:
    keys: Keys = request.app.state.keys
    nonce = secrets.token_urlsafe(18)
    response = page(
        request,
        "login.html",
        None,
        {"message": message, "csrf": keys.csrf("login:" + nonce), "next": _safe_next(next_url)},
        status,
    )
    set_cookie(request, response, LOGIN_COOKIE, nonce, 3600)
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    """The login form (with a fresh pre-login CSRF nonce)."""
    return _form(request, next_url=next)


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    csrf: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    """Check the password: throttled per address, delayed per account, one answer to all."""
    config: HotlineConfig = request.app.state.config
    keys: Keys = request.app.state.keys
    throttle: AddressThrottle = request.app.state.throttle
    address = client_address(request)
    nonce = read_cookie(request, LOGIN_COOKIE) or ""
    if not nonce or not keys.csrf_ok("login:" + nonce, csrf):
        return _form(request, "表单已失效，请重试 / the form expired, try again", 403, next)
    if throttle.blocked(address):
        return _form(request, "尝试次数过多，请稍后再试 / too many attempts", 429, next)
    web = config.web
    backoff = Backoff(web.login_free_failures, web.login_delay_seconds, web.login_delay_max_seconds)
    now = utcnow()
    with unit_of_work(request.app.state.sessions) as session:
        user = user_by_name(session, username)
        # one argon2 check whatever the name: an unknown one costs what a known one does
        matches = verify_password(user.password_hash if user else dummy_hash(), password)
        why = ""
        if user is None:
            why = "unknown user"
        elif user.disabled:
            why = "disabled"
        elif is_delayed(user, now):
            why = "within the delay"  # not counted: waiting out a delay never lengthens it
        elif not matches:
            why = "wrong password"
            record_failure(session, user, now, backoff)
        if user is None or why:
            throttle.failed(address)
            role = user.role if user is not None else "-"
            audit(session, username, role, "login_failed", address=address, detail=why)
            return _form(request, WRONG, 401, next)
        record_success(session, user, now)
        audit(session, user.username, user.role, "login", address=address)
        cookie, sid = session_cookie(keys, user)
        lifetime = timedelta(minutes=web.session_minutes)
        console_sessions.start(session, user.id, sid, now, address, lifetime)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_cookie(request, response, SESSION_COOKIE, cookie, web.session_minutes * 60)
    clear_cookie(request, response, LOGIN_COOKIE)
    return response


@router.post("/logout")
def logout(
    request: Request,
    viewer: Annotated[Viewer, Depends(session_viewer)],
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """End the session on the server (a copy of the cookie, every link signed for it and
    an open live stream die with it) and delete the cookie."""
    check_csrf(request, viewer, csrf)
    with unit_of_work(request.app.state.sessions) as session:
        console_sessions.end(session, viewer.sid, utcnow(), "logout")
        audit(session, viewer.username, viewer.role, "logout", address=client_address(request))
    response = RedirectResponse("/login", status_code=303)
    clear_cookie(request, response, SESSION_COOKIE)
    return response

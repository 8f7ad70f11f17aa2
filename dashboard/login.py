"""GET/POST /login and POST /logout: sessions, with throttling and the account lock."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from core.config import HotlineConfig
from dashboard.audit import audit
from dashboard.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    AddressThrottle,
    Keys,
    Viewer,
    check_csrf,
    client_address,
    current_viewer,
    session_cookie,
    set_cookie,
    verify_password,
)
from dashboard.render import page
from dashboard.users import is_locked, record_failure, record_success, user_by_name
from db.models import utcnow
from db.session import unit_of_work

router = APIRouter(tags=["login"])
WRONG = "用户名或密码错误 / wrong user name or password"
LOCKED = "账号已临时锁定，请 {minutes} 分钟后再试 / account locked for {minutes} minutes"


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
    """Check the password; throttled per address, locked per account after repeated failures."""
    config: HotlineConfig = request.app.state.config
    keys: Keys = request.app.state.keys
    throttle: AddressThrottle = request.app.state.throttle
    address = client_address(request)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not keys.csrf_ok("login:" + nonce, csrf):
        return _form(request, "表单已失效，请重试 / the form expired, try again", 403, next)
    if throttle.blocked(address):
        return _form(request, "尝试次数过多，请稍后再试 / too many attempts", 429, next)
    now = utcnow()
    with unit_of_work(request.app.state.sessions) as session:
        user = user_by_name(session, username)
        if user is not None and is_locked(user, now):
            audit(session, username, user.role, "login_locked", address=address)
            return _form(request, LOCKED.format(minutes=config.web.lockout_minutes), 423, next)
        if user is None or user.disabled or not verify_password(user.password_hash, password):
            throttle.failed(address)
            if user is None:  # an unknown name is worth an admin's eye too (guessing)
                audit(session, username, "-", "login_failed", address=address)
            else:
                locked = record_failure(
                    session, user, now, config.web.lockout_failures, config.web.lockout_minutes
                )
                audit(session, username, user.role, "login_failed", address=address)
                if locked:
                    message = LOCKED.format(minutes=config.web.lockout_minutes)
                    return _form(request, message, 423, next)
            return _form(request, WRONG, 401, next)
        record_success(session, user, now)
        audit(session, user.username, user.role, "login", address=address)
        cookie, _ = session_cookie(keys, user)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_cookie(request, response, SESSION_COOKIE, cookie, config.web.session_minutes * 60)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(
    request: Request,
    viewer: Annotated[Viewer, Depends(current_viewer)],
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """End the session (the cookie goes; the link tokens die with the session id)."""
    check_csrf(request, viewer, csrf)
    with unit_of_work(request.app.state.sessions) as session:
        audit(session, viewer.username, viewer.role, "logout", address=client_address(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response

"""Who is asking: passwords, sessions, CSRF tokens, login throttling, roles.

- Passwords are argon2id hashes (argon2-cffi). Every login runs one hash check,
  for an unknown or disabled name too (against a dummy hash), so a failure takes
  the same time whatever its cause.
- The session is a cookie signed with the installation's secret (itsdangerous):
  user id, the account's session version and a random session id; HttpOnly,
  SameSite=Strict, Path=/. With `web.secure_cookies` (behind HTTPS) it and the
  login form's cookie are Secure and named with the `__Host-` prefix, so the
  browser takes them only from HTTPS, for this very host (no Domain), for every
  path: a neighbouring subdomain cannot plant or shadow them. The session itself is a record on the
  server (`dashboard.sessions`): each request looks it up, so logout, a new
  password, disabling and `web.idle_minutes` without a request end it at once,
  and with it every recording link signed for it. It ends `web.session_minutes`
  after login in any case.
- Roles: supervisors read everything; staff their unit's subtree (a staff account
  without a unit sees nothing: every page but logout answers 403); admins manage
  accounts and read the audit log. Recordings (the search, a call's page, the
  audio) are for `web.recording_roles` only, whole-file downloads for
  `web.download_roles` only. Agents open their workspace (/agent) and the tickets
  they filed, nothing else.
- Every state change carries a CSRF token: an HMAC of the session id (login
  itself: of a random pre-login cookie), compared in constant time.
- Wrong passwords are counted per account (the store: after
  `web.login_free_failures` in a row each makes the account wait longer, up to
  `web.login_delay_max_seconds`; never a lock) and per client address (in
  memory: more than `web.address_failures_per_hour` answers 429). The client
  address is the peer's, or the one `X-Forwarded-For` names when the peer is a
  proxy listed in `web.trusted_proxies`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import FastAPI, HTTPException, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from core.config import HotlineConfig
from core.phone_numbers import mask
from dashboard import sessions as console_sessions
from db.models import User, utcnow
from db.session import unit_of_work

SESSION_COOKIE = "hotline_session"
LOGIN_COOKIE = "hotline_login"
HOST_PREFIX = "__Host-"  # Secure, Path=/, no Domain: the browser enforces all three
NO_UNIT = 0  # the scope of a staff account without a unit: no department has id 0
ROLE_NAMES = {
    "admin": "管理员 Admin",
    "supervisor": "督办员 Supervisor",
    "staff": "承办单位 Staff",
    "agent": "坐席 Agent",
}
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True if password matches; never raises for a wrong or malformed hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def dummy_hash() -> str:
    """A hash of no one's password, made like every other: what an unknown name is
    checked against, so it costs the time a known one does."""
    return _hasher.hash(secrets.token_urlsafe(24))


def load_secret(config: HotlineConfig) -> bytes:
    """The signing secret: $web.secret_env, else generated once with the other secrets (0600)."""
    return config.secrets.get("web", config.web.secret_env).encode()


class Keys:
    """Everything signed with the installation's secret, each use with its own salt."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self.sessions = URLSafeTimedSerializer(secret, salt="console-session")
        self.links = URLSafeTimedSerializer(secret, salt="recording-link")

    def csrf(self, bound_to: str) -> str:
        """The CSRF token of a session id (or a pre-login nonce)."""
        return hmac.new(self._secret, b"csrf:" + bound_to.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, bound_to: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf(bound_to), token or "")


@dataclass(frozen=True)
class Viewer:
    """The logged-in person as every page sees them."""

    user_id: int
    username: str
    role: str
    department_id: int | None
    department_name: str
    sid: str
    csrf: str
    sees_numbers: bool
    may_download: bool
    may_listen: bool = False

    @property
    def scope_root(self) -> int | None:
        """Staff see their unit's subtree only (a staff account without a unit: NO_UNIT,
        the subtree of no department); None = everything."""
        if self.role != "staff":
            return None
        return self.department_id if self.department_id is not None else NO_UNIT

    @property
    def unitless(self) -> bool:
        """A staff account that belongs to no unit: it may see nothing."""
        return self.role == "staff" and self.department_id is None

    @property
    def role_name(self) -> str:
        return ROLE_NAMES.get(self.role, self.role)

    def number(self, value: str | None) -> str:
        """A citizen's number as this viewer may see it."""
        return (value or "") if self.sees_numbers else mask(value)


class NotLoggedIn(Exception):
    """No valid session: pages redirect to /login, everything else gets 401."""


class AddressThrottle:
    """Wrong passwords per client address in the last hour (in memory, per process)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.setdefault(address, deque())
        while times and times[0] < now - 3600:
            times.popleft()
        return times

    def blocked(self, address: str) -> bool:
        with self._lock:
            return len(self._recent(address, time.monotonic())) >= self.limit

    def failed(self, address: str) -> None:
        with self._lock:
            self._recent(address, time.monotonic()).append(time.monotonic())


@functools.cache
def _networks(
    proxies: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _trusted(address: str, proxies: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(proxies))


def client_address(request: Request) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the
    last address in X-Forwarded-For that is not itself a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    config: HotlineConfig = request.app.state.config
    proxies = tuple(config.web.trusted_proxies)
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = ",".join(request.headers.getlist("x-forwarded-for")).split(",")
    for hop in reversed([h.strip() for h in hops if h.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # not an address: nothing after it can be believed
        if not _trusted(hop, proxies):
            return hop
    return peer


def session_cookie(keys: Keys, user: User) -> tuple[str, str]:
    """A new session id for user: (cookie value, session id); record it with
    `dashboard.sessions.start`."""
    sid = secrets.token_urlsafe(18)
    return keys.sessions.dumps({"u": user.id, "v": user.session_version, "s": sid}), sid


def cookie_name(config: HotlineConfig, name: str) -> str:
    """A cookie's name as set and read: `__Host-` + name with `web.secure_cookies`."""
    return HOST_PREFIX + name if config.web.secure_cookies else name


def read_cookie(request: Request, name: str) -> str | None:
    """The value of one of the console's cookies (by its base name), if the request has it."""
    return request.cookies.get(cookie_name(request.app.state.config, name))


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """Set one of the console's cookies: HttpOnly, SameSite=Strict, Path=/, no Domain;
    Secure and `__Host-` with `web.secure_cookies`."""
    config: HotlineConfig = request.app.state.config
    response.set_cookie(
        cookie_name(config, name),
        value,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=config.web.secure_cookies,
        path="/",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    """Delete one of the console's cookies (with the attributes it was set with: a browser
    refuses a `__Host-` cookie, even an expired one, without Secure and Path=/)."""
    config: HotlineConfig = request.app.state.config
    response.delete_cookie(
        cookie_name(config, name),
        path="/",
        secure=config.web.secure_cookies,
        httponly=True,
        samesite="strict",
    )


def load_viewer(app: FastAPI, raw: str | None, touch: bool = True) -> Viewer | None:
    """The viewer of a session cookie if the session is alive, else None.

    Reads the account and the session from the store each time, so a disabled
    account, a new password, a logout or an idle session takes effect at once.
    touch: this request counts as activity (a page; a live stream's re-check does not).
    """
    if not raw:
        return None
    state = app.state
    config: HotlineConfig = state.config
    keys: Keys = state.keys
    try:
        data = keys.sessions.loads(raw, max_age=config.web.session_minutes * 60)
        user_id, version, sid = int(data["u"]), int(data["v"]), str(data["s"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    with unit_of_work(state.sessions) as session:
        user = session.get(User, user_id)
        if user is None or user.disabled or user.session_version != version:
            return None
        lifetime = timedelta(minutes=config.web.session_minutes)
        idle = timedelta(minutes=config.web.idle_minutes)
        if not console_sessions.alive(session, sid, user.id, utcnow(), lifetime, idle, touch):
            return None
        return Viewer(
            user_id=user.id,
            username=user.username,
            role=user.role,
            department_id=user.department_id,
            department_name=user.department.name if user.department else "",
            sid=sid,
            csrf=keys.csrf(sid),
            sees_numbers=user.role in config.web.numbers_visible_to,
            may_download=user.role in config.web.download_roles
            and user.role in config.web.recording_roles,
            may_listen=user.role in config.web.recording_roles,
        )


NO_UNIT_MESSAGE = (
    "您的账号未分配承办单位，无权查看任何内容，请联系管理员 / your account belongs to no unit "
    "and may see nothing: ask an admin to give it one"
)


def session_viewer(request: Request) -> Viewer:
    """The viewer of a live session, whatever their role and unit (logout's dependency);
    raises NotLoggedIn otherwise.

    Runs in the thread pool (a plain function): see `load_viewer`.
    """
    cached = getattr(request.state, "viewer", None)
    if cached is not None:
        return cached
    viewer = load_viewer(request.app, read_cookie(request, SESSION_COOKIE))
    if viewer is None:
        raise NotLoggedIn
    request.state.viewer = viewer
    return viewer


def current_viewer(request: Request) -> Viewer:
    """The viewer of a live session who may see something (the dependency of every page,
    export and stream): NotLoggedIn without a session, 403 for a staff account without
    a unit (it sees nothing; it can still log out)."""
    viewer = session_viewer(request)
    if viewer.unitless:
        raise HTTPException(403, NO_UNIT_MESSAGE)
    if viewer.role == "agent" and not _agent_may_open(request.url.path):
        raise HTTPException(403, AGENT_MESSAGE)
    return viewer


AGENT_MESSAGE = "坐席只能使用坐席工作台 / agents use the agent workspace (/agent) only"


def _agent_may_open(path: str) -> bool:
    """An agent opens their workspace, "/" (which sends them there) and ticket pages
    (`dashboard.ticket_page` shows them only the tickets they filed); nothing else."""
    return path == "/" or path == "/agent" or path.startswith(("/agent/", "/tickets/"))


def recording_viewer(request: Request) -> Viewer:
    """The viewer, if their role opens recordings (`web.recording_roles`); else 403."""
    viewer = current_viewer(request)
    if not viewer.may_listen:
        raise HTTPException(
            403, "您的角色不能打开录音 / your role does not open recordings (web.recording_roles)"
        )
    return viewer


def require_roles(*roles: str) -> Callable[[Request], Viewer]:
    """A dependency: the viewer, if their role is one of roles; else 403."""

    def check(request: Request) -> Viewer:
        viewer = current_viewer(request)
        if viewer.role not in roles:
            raise HTTPException(403, "您的角色无权访问此页 / your role may not open this page")
        return viewer

    return check


def check_csrf(request: Request, viewer: Viewer, token: str | None) -> None:
    """Refuse a state change whose form (or X-CSRF-Token header) lacks the session's token."""
    keys: Keys = request.app.state.keys
    token = token or request.headers.get("x-csrf-token")
    if not keys.csrf_ok(viewer.sid, token):
        raise HTTPException(403, "表单已失效，请刷新页面重试 / missing or wrong CSRF token")

"""The FastAPI application: built by a factory from the config, routers per area.

Every route needs a session except the login form and the platform's import
API (which has its own bearer token); pages without one redirect to /login,
everything else answers 401. Every request must name one of `web.hosts()` in
its Host header (loopback, `web.host`, `web.allowed_hosts`), or it gets 400.
Page handlers are plain functions, so they run in a thread pool of
`web.page_workers` threads, never on an event loop that serves calls;
`follow_ami` starts the live-calls feed on this app's own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.staticfiles import StaticFiles

from core.config import HotlineConfig
from core.sip_front import front_websocket
from dashboard import (
    admin,
    agent_pop,
    agent_workspace,
    governance,
    hotspots,
    intake,
    kb_page,
    listen,
    live,
    login,
    pages,
    performance,
    quality,
    rates,
    recordings,
    robot_page,
    service_level,
    ticket_page,
    wallboard,
)
from dashboard.auth import AddressThrottle, Keys, NotLoggedIn, load_secret
from dashboard.headers import SecurityHeaders
from dashboard.render import page
from dashboard.time_limit import TimeLimitMiddleware, bound, timed_out
from db.session import make_engine, make_session_factory

PUBLIC = {"/login"}


def _wants_html(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def create_app(
    config: HotlineConfig,
    sessions: sessionmaker[Session] | None = None,
    follow_ami: bool = False,
) -> FastAPI:
    """The web app on config's database (or the given sessions): console pages, import API."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = config.web.page_workers
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if follow_ami:
            tasks = [
                asyncio.create_task(app.state.live.follow(config, stop), name="live-calls"),
                asyncio.create_task(app.state.desk.follow(config, stop), name="agent-desk"),
            ]
        yield
        stop.set()
        for task in tasks:
            await task

    app = FastAPI(
        title="12345 hotline",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.sessions = sessions or make_session_factory(
        make_engine(config.database_url, False, config.database.busy_timeout_ms)
    )
    bound(app.state.sessions.kw["bind"])  # console requests' queries: web.request_seconds
    app.add_middleware(TimeLimitMiddleware, seconds=config.web.request_seconds)
    # a request naming another host (DNS rebinding, a poisoned absolute URL) answers 400
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=config.web.hosts(), www_redirect=False)
    front = config.cluster.front if config.cluster else None
    app.add_middleware(
        SecurityHeaders,
        https=config.web.secure_cookies,
        wss_port=config.agents.wss_port,
        front=front_websocket(front.address, front.ws_port) if front else None,
    )
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.state.keys = Keys(load_secret(config))
    app.state.throttle = AddressThrottle(config.web.address_failures_per_hour)
    app.state.live = live.LiveCalls()
    app.state.desk = agent_pop.AgentDesk()  # the agents' calls and states (screen pops)

    @app.exception_handler(NotLoggedIn)
    async def not_logged_in(request: Request, exc: NotLoggedIn) -> Response:
        if _wants_html(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return Response("login required", status_code=401, headers={"WWW-Authenticate": "Cookie"})

    @app.exception_handler(StarletteHTTPException)
    async def readable_errors(request: Request, exc: StarletteHTTPException) -> Response:
        if not _wants_html(request) or request.url.path.startswith("/api/"):
            return await http_exception_handler(request, exc)
        viewer = getattr(request.state, "viewer", None)
        titles = {403: "无权访问 Forbidden", 404: "未找到 Not found"}
        title = titles.get(exc.status_code, f"错误 Error {exc.status_code}")
        return page(
            request,
            "message.html",
            viewer,
            {"title": title, "message": exc.detail},
            exc.status_code,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_input(request: Request, exc: RequestValidationError) -> Response:
        # name the fields, never echo the input back (it may be a script or a citizen's number)
        fields = sorted({".".join(str(p) for p in e["loc"][1:]) or "body" for e in exc.errors()})
        message = f"参数无效 / invalid input: {', '.join(fields)}"
        if _wants_html(request) and not request.url.path.startswith("/api/"):
            viewer = getattr(request.state, "viewer", None)
            context = {"title": "参数无效 Invalid input", "message": message}
            return page(request, "message.html", viewer, context, 422)
        return JSONResponse({"detail": message}, status_code=422)

    @app.exception_handler(OperationalError)
    async def too_long(request: Request, exc: OperationalError) -> Response:
        if not timed_out(exc):
            raise exc
        message = (
            f"请求超过 {config.web.request_seconds:g} 秒，已取消 / the request took longer than "
            "web.request_seconds and was cancelled"
        )
        if _wants_html(request):
            viewer = getattr(request.state, "viewer", None)
            context = {"title": "请求超时 Request took too long", "message": message}
            return page(request, "message.html", viewer, context, 503)
        return JSONResponse({"detail": message}, status_code=503)

    for router in (
        intake.router,
        login.router,
        pages.router,
        recordings.router,
        ticket_page.router,
        rates.router,
        performance.router,
        quality.router,
        robot_page.router,
        live.router,
        listen.router,
        wallboard.router,
        service_level.router,
        admin.router,
        agent_workspace.router,
        hotspots.router,
        governance.router,
        kb_page.router,
    ):
        app.include_router(router)
    return app

"""The FastAPI application: built by a factory from the config, routers per area."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig
from dashboard import intake, pages
from db.session import make_engine, make_session_factory


def create_app(config: HotlineConfig, sessions: sessionmaker[Session] | None = None) -> FastAPI:
    """The web app on config's database (or the given sessions): import API, overview page."""
    # no /docs, /redoc or /openapi.json: the API's shape is not for anonymous visitors
    app = FastAPI(
        title="12345 hotline", version="0.1.0", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.config = config
    app.state.sessions = sessions or make_session_factory(
        make_engine(config.database_url, False, config.database.busy_timeout_ms)
    )
    app.include_router(intake.router)
    app.include_router(pages.router)
    return app

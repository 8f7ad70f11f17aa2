"""The FastAPI application: built by a factory from the config, routers per area."""

from __future__ import annotations

from fastapi import FastAPI

from dashboard import intake, pages
from hotline.cli_support import sessions
from hotline.config import HotlineConfig


def create_app(config: HotlineConfig) -> FastAPI:
    """The web app on config's database: the import API and the overview page."""
    app = FastAPI(title="12345 hotline", version="0.1.0")
    app.state.config = config
    app.state.sessions = sessions(config)
    app.include_router(intake.router)
    app.include_router(pages.router)
    return app

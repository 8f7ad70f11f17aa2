"""What every `hotline` sub-command shares: consoles, the config option, one-line errors."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from hotline.config import ConfigError, HotlineConfig, load_config

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default: $HOTLINE_CONFIG or ./config.yaml)."),
]


def fail(message: str) -> typer.Exit:
    """Print one clear error line and return the exit to raise."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def config_or_exit(path: Path | None) -> HotlineConfig:
    """Load the config; a bad one ends the command with its one-line reason."""
    try:
        return load_config(path)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def sessions(cfg: HotlineConfig) -> sessionmaker[Session]:
    """A session factory on the configured database."""
    from db.session import make_engine, make_session_factory

    return make_session_factory(make_engine(cfg.database_url, False, cfg.database.busy_timeout_ms))


def local_time(value: object, cfg: HotlineConfig) -> str:
    """A stored UTC time as hotline local time, minutes only; '' for none."""
    return (
        value.astimezone(cfg.tz).strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else ""
    )

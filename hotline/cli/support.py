"""What every `hotline` sub-command shares: consoles, the config option, one-line errors.

Sub-command modules import a feature lazily inside the command that needs it, so
`hotline --help` does not load SQLAlchemy, vosk or uvicorn.
"""

from __future__ import annotations

import logging
import os
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from core.config import ConfigError, HotlineConfig, load_config

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

# piped or captured output (a script, `| grep`, a log) is not cut to an 80-column guess
PIPED_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
console = Console(soft_wrap=True, width=PIPED_WIDTH)
err = Console(stderr=True, soft_wrap=True)
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default: $HOTLINE_CONFIG or ./config.yaml)."),
]


def fail(message: str) -> typer.Exit:
    """Print one clear error line and return the exit to raise."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True, markup=True)
    return typer.Exit(code=2)


def config_or_exit(path: Path | None) -> HotlineConfig:
    """Load the config; a bad one ends the command with its one-line reason."""
    try:
        return load_config(path)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def sessions(cfg: HotlineConfig) -> sessionmaker[Session]:
    """A session factory on the configured database."""
    from db.session import make_engine, make_session_factory  # lazy: keeps --help fast

    return make_session_factory(make_engine(cfg.database_url, False, cfg.database.busy_timeout_ms))


def setup_logging(verbose: bool = False, cfg: HotlineConfig | None = None) -> None:
    """Log lines carry the call's Uniqueid (added by the AGI layer) and a timestamp.

    With a config whose `health.log_file` is set, they also go to that file,
    rotated by size (`health.log_max_mb`, `health.log_backups`).
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if cfg is not None and cfg.health.log_file is not None:
        path = cfg.health.log_file.expanduser()
        path = path if path.is_absolute() else cfg.state_dir / path
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            RotatingFileHandler(
                path,
                maxBytes=cfg.health.log_max_mb * 1024 * 1024,
                backupCount=cfg.health.log_backups,
                encoding="utf-8",
            )
        )
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
    )


def folding(table: Table) -> Table:
    """The table with long cells folded onto more lines, never cut to "…": keys, titles
    and numbers an operator copies must be whole on an 80-column terminal too."""
    for column in table.columns:
        column.overflow = "fold"
    return table

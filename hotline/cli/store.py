"""`hotline db upgrade`: create or migrate the ticket store."""

from __future__ import annotations

import typer

from hotline.cli.support import ConfigOption, config_or_exit, console

db_app = typer.Typer(help="The ticket store.")


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Create or migrate the ticket store to the newest schema."""
    from hotline.app import prepare_store

    cfg = config_or_exit(config)
    prepare_store(cfg)
    console.print(f"database at the newest schema: {cfg.database_url}")

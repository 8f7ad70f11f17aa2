"""`hotline kb import FILE.yaml | list | test "暖气不热找谁"`: the knowledge base's entries."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hotline.cli.support import ConfigOption, config_or_exit, console, fail, folding, sessions

kb_app = typer.Typer(help="智能知识库: import, list and try the knowledge base's entries.")


@kb_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="A YAML file of entries (see docs/kb.md).")],
    by: Annotated[str, typer.Option(help="Who the new versions are recorded as.")] = "import",
    config: ConfigOption = None,
) -> None:
    """Import entries: new ones added, changed ones get a new version, unchanged left alone."""
    from db.session import unit_of_work
    from kb.entries import EntryError, import_entries, load_file

    cfg = config_or_exit(config)
    try:
        entries = load_file(file)
        with unit_of_work(sessions(cfg)) as session:
            result = import_entries(session, entries, by)
    except EntryError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"{len(entries)} entries: {len(result.added)} added, {len(result.changed)} new "
        f"versions, {len(result.status_changed)} status changed, "
        f"{len(result.unchanged)} unchanged"
    )


@kb_app.command("list")
def list_command(
    all_versions: Annotated[
        bool, typer.Option("--retired", help="Also list entries whose newest version is retired.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Every entry's newest version: key, version, status, category, title, reviewed."""
    from db.session import unit_of_work
    from kb.entries import current_entries

    cfg = config_or_exit(config)
    table = Table("key", "版本 ver", "状态 status", "类别 category", "标题 title", "审核 reviewed")
    with unit_of_work(sessions(cfg)) as session:
        for row in current_entries(session, include_retired=all_versions):
            reviewed = (
                row.reviewed_at.astimezone(cfg.tz).strftime("%Y-%m-%d") if row.reviewed_at else ""
            )
            table.add_row(
                row.key, str(row.version), row.status, row.category or "", row.title, reviewed
            )
    console.print(folding(table))


@kb_app.command("test")
def test_command(
    question: Annotated[str, typer.Argument(help="A question as a caller or agent would put it.")],
    top: Annotated[int, typer.Option("--top", "-k", help="How many matches to show.")] = 3,
    published: Annotated[
        bool, typer.Option(help="Only published entries valid today (what callers hear).")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Rank the entries for a question, with scores and whether each would be offered."""
    from db.session import unit_of_work
    from kb.entries import current_entries, live_entries, matcher
    from kb.matching import offered

    cfg = config_or_exit(config)
    if top < 1:
        raise fail("--top: at least 1")
    with unit_of_work(sessions(cfg)) as session:
        rows = (
            live_entries(session, datetime.now(cfg.tz).date())
            if published
            else current_entries(session)
        )
        if not rows:
            raise fail("no entries to match: import some with `hotline kb import FILE.yaml`")
        matches = matcher(rows).search(question, top)
    good = {m.entry_key for m in offered(matches, cfg.kb.threshold)}
    table = Table("#", "key", "标题 title", "得分 score", f"提供 offered (≥ {cfg.kb.threshold})")
    for rank, match in enumerate(matches, 1):
        table.add_row(
            str(rank),
            match.entry_key,
            match.title,
            f"{match.score:.3f}",
            "是 yes" if match.entry_key in good else "否 no",
        )
    console.print(folding(table))

"""`hotline governance adopt | list`: 每月一题 from the command line.

A thin shell over `analysis.governance` (the console's adopt form writes through
the same function): adopt checks the lead unit's code, the month and that the
title is not already adopted for that start month, and says in one line which.
`list` shows each adopted topic with its months from the newest monthly run.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from hotline.cli.support import ConfigOption, config_or_exit, console, fail, folding, sessions

governance_app = typer.Typer(help="每月一题: adopt a frequent, hard problem and follow its calls.")


@governance_app.command("adopt")
def adopt_command(
    title: Annotated[str, typer.Option("--title", help="e.g. 冬季供暖不热专项治理.")],
    lead_unit: Annotated[
        str, typer.Option("--lead-unit", help="The lead unit's code: a district or city bureau.")
    ],
    start: Annotated[str, typer.Option("--start", help="First tracked month, e.g. 2026-11.")],
    category: Annotated[
        str, typer.Option("--category", help="The category whose calls are tracked.")
    ] = "",
    keywords: Annotated[
        str,
        typer.Option("--keywords", help="a,b: only the category's calls naming one of these."),
    ] = "",
    goal: Annotated[str, typer.Option("--goal", help="What the work should achieve.")] = "",
    by: Annotated[str, typer.Option("--by", help="Who the adoption is recorded as.")] = "cli",
    config: ConfigOption = None,
) -> None:
    """Adopt a topic for a lead unit from a start month."""
    from analysis.governance import GovernanceError, adopt
    from db.session import unit_of_work

    cfg = config_or_exit(config)
    try:
        with unit_of_work(sessions(cfg)) as session:
            topic = adopt(
                session,
                title=title,
                category=category,
                keywords=keywords,
                lead_unit=lead_unit,
                start_month=start,
                goal=goal,
                by=by,
            )
            topic_id, start_month = topic.id, topic.start_month
    except GovernanceError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"topic {topic_id} adopted from {start_month}: {title.strip()} "
        "(tracked by the next `hotline analyse`)",
        markup=False,
    )


def _percent(change: object) -> str:
    return f"{change * 100:+.1f}%" if isinstance(change, int | float) else "–"


@governance_app.command("list")
def list_command(config: ConfigOption = None) -> None:
    """Every adopted topic with its latest month from the newest monthly run."""
    from analysis.governance import adopted, end_month, latest_progress
    from db.models import Department
    from db.session import unit_of_work

    cfg = config_or_exit(config)
    with unit_of_work(sessions(cfg)) as session:
        month, progress = latest_progress(session)
        table = Table(
            "id", "标题 title", "牵头 lead", "起始 start", "结束 ended", "类别 category",
            f"最近月份 latest ({month or 'no run'})", "来电 observed", "基线 baseline",
            "变化 change",
        )  # fmt: skip
        topics = adopted(session)
        for topic in topics:
            unit = session.get(Department, topic.lead_department_id or 0)
            months = progress.get(topic.id, {}).get("months") or [{}]
            latest = months[-1]
            baseline = latest.get("baseline")
            table.add_row(
                str(topic.id),
                topic.title,
                unit.code if unit else "",
                topic.start_month,
                end_month(topic) or "",
                topic.category or "",
                latest.get("month", "–"),
                str(latest.get("observed", "–")),
                f"{baseline:.1f}" if isinstance(baseline, int | float) else "–",
                _percent(latest.get("change")),
            )
    if not topics:
        console.print("no topic adopted yet (`hotline governance adopt --help`)")
        return
    console.print(folding(table))

"""`hotline robot run|status|report`: the callback robot.

With a `cluster:` section `run` links every node and chooses a node per call
(`callback_robot.cluster`); what it needs of the cluster's layout (Kamailio's
control socket, the nodes' way out through the front) is handed to it here.
A cluster runs no `hotline serve`, so each cluster robot also runs the
agent-first callback dialer (missed callers, `agents.callback_dialer`) every
3 s when callbacks are on: its claim, under the store's robot lock, never
gives two robots the same agent or the same task.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import logging
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from hotline.cli.support import ConfigOption, config_or_exit, console, fail, sessions, setup_logging

if TYPE_CHECKING:
    from agents.callback_dialer import CallbackDialer
    from callback_robot.status import NodeRobotState
    from core.config import HotlineConfig

robot_app = typer.Typer(help="The callback robot: run, status, report.")
log = logging.getLogger(__name__)
CALLBACK_SECONDS = 3.0  # between two passes of the agent-first callback dialer (as `serve`)


@robot_app.command("run")
def robot_run(config: ConfigOption = None, verbose: bool = False) -> None:
    """Dispatch survey calls within the call windows until Ctrl-C (on every node of a cluster)."""
    from callback_robot.runner import run_robot
    from telephony.ami import AMIError

    cfg = config_or_exit(config)
    setup_logging(verbose, cfg)
    try:
        asyncio.run(run_robot(cfg) if cfg.cluster is None else cluster_robot(cfg))
    except AMIError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        pass


async def cluster_robot(cfg: HotlineConfig) -> None:
    """The cluster robot, given the front's control socket and the nodes' outbound channel."""
    from callback_robot.cluster import run_cluster_robot
    from callback_robot.front import front_reader
    from core.sip_front import FRONT_OUTBOUND
    from hotline.cli.cluster import layout_for
    from tools.cluster.layout import cluster_of

    # the layout `hotline cluster up` runs the cluster with: Kamailio's control socket
    front = front_reader(cluster_of(cfg), layout_for(cfg, None).kamailio_ctl())
    async with agent_callbacks(cfg):
        await run_cluster_robot(cfg, front, FRONT_OUTBOUND)


@contextlib.asynccontextmanager
async def agent_callbacks(
    cfg: HotlineConfig, every: float = CALLBACK_SECONDS
) -> AsyncIterator[None]:
    """The agent-first callback dialer's passes while the block runs (callbacks on only).

    The dialer holds its own link to every node and its own store engine, so a
    robot's dispatch and the callbacks never wait on each other's connections.
    """
    if not cfg.callback.enabled:
        yield
        return
    from agents.callback_dialer import CallbackDialer
    from callback_robot.runner import robot_engine
    from db.session import make_session_factory

    engine = robot_engine(cfg)
    dialer = CallbackDialer.for_config(cfg, None, make_session_factory(engine))
    passes = asyncio.create_task(dial_every(dialer, every), name="callbacks")
    try:
        yield
    finally:
        passes.cancel()
        await asyncio.gather(passes, return_exceptions=True)
        await dialer.stop()
        engine.dispose()


async def dial_every(dialer: CallbackDialer, seconds: float) -> None:
    """One dialer pass every `seconds`; a failed pass is logged and the next comes anyway."""
    from agents.callback_dialer import run_once

    while True:
        try:
            await run_once(dialer)
        except Exception:
            log.exception("callbacks: pass failed; next in %.0f s", seconds)
        await asyncio.sleep(seconds)


@robot_app.command("status")
def robot_status(config: ConfigOption = None) -> None:
    """What is dialing, in a call, and done, and who is due next."""
    from callback_robot.status import node_states
    from callback_robot.status import robot_status as read_status
    from core.vocabulary import AttemptState
    from db.session import unit_of_work

    cfg = config_or_exit(config)
    now = datetime.now(UTC)
    with unit_of_work(sessions(cfg)) as session:
        status = read_status(session, cfg, now)
        nodes = node_states(session, cfg, now)
    opens = status.window_opens
    console.print(
        f"call window: {'open' if status.window_open else 'closed'}"
        + ("" if opens is None else f" (opens {opens.strftime('%Y-%m-%d %H:%M')})")
    )
    for state in (AttemptState.DIALING, AttemptState.IN_CALL, AttemptState.DONE):
        console.print(f"{state.value:<8} {status.states[state]}")
    console.print(f"due now  {status.due_now} tickets")
    console.print(
        f"waiting to retry {status.waiting_to_retry} tickets (interval, daily or per-citizen limit)"
    )
    if status.heartbeat is None:
        console.print("robot    [red]stalled[/]: no dispatch pass recorded yet")
    else:
        age = (datetime.now(UTC) - status.heartbeat).total_seconds()
        state = "[red]stalled[/]" if status.stalled else "running"
        console.print(
            f"robot    {state}: last dispatch pass {age:.0f} s ago ({status.heartbeat_of})"
        )
    if nodes:
        console.print(node_table(nodes, cfg))


def node_table(nodes: list[NodeRobotState], cfg: HotlineConfig) -> Table:
    """The robot's calls per cluster node, and whether the node is draining or lost."""
    table = Table(
        "节点 node",
        "拨号中 dialing",
        "通话中 in call",
        "今日已拨 placed today",
        "状态 state",
        title="各节点回访 robot calls per node",
    )
    for node in nodes:
        marks = [
            f"{what} since {when.astimezone(cfg.tz).strftime('%m-%d %H:%M:%S')}"
            for what, when in (
                ("排空 draining", node.draining_since),
                ("失联 lost", node.lost_since),
            )
            if when is not None
        ]
        table.add_row(
            node.name,
            str(node.dialing),
            str(node.in_call),
            str(node.placed_today),
            "; ".join(marks) or "可用 in service",
        )
    return table


@robot_app.command("report")
def robot_report(
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (local).")],
    end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (local), included.")],
    fmt: Annotated[str, typer.Option("--format", help="table or csv.")] = "table",
    within: Annotated[int, typer.Option(help="Per-ticket reach within N attempts.")] = 3,
    config: ConfigOption = None,
) -> None:
    """Calls placed, reached, completed, success rate and outcomes per day."""

    from callback_robot.status import robot_report as read_report
    from core.periods import PeriodError
    from core.vocabulary import AttemptOutcome
    from db.session import unit_of_work

    cfg = config_or_exit(config)
    if fmt not in ("table", "csv"):
        raise fail(f"--format: {fmt!r} is not one of table, csv")
    try:
        with unit_of_work(sessions(cfg)) as session:
            figures = read_report(session, cfg, start, end, within)
    except PeriodError as exc:
        raise fail(f"--from/--to: {exc}") from None
    outcomes = [o.value for o in AttemptOutcome]
    rows = [
        [day, sum(counts.values()), *(counts.get(o, 0) for o in outcomes)]
        for day, counts in figures.by_day.items()
    ]
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(["day", "placed", *outcomes])
        writer.writerows(rows)
        return
    rate, ticket_rate = figures.success_rate, figures.ticket_rate
    console.print(
        f"calls placed {figures.placed}, reached {figures.reached}, "
        f"completed {figures.completed}, success rate "
        f"{'no data' if rate is None else f'{rate:.2%}'}"
    )
    console.print(
        f"tickets called {figures.tickets}, completed within {within} attempts "
        f"{figures.tickets_completed_within} "
        f"({'no data' if ticket_rate is None else f'{ticket_rate:.2%}'})"
    )
    table = Table("day", "placed", *outcomes)
    for row in rows:
        table.add_row(*map(str, row))
    console.print(table)

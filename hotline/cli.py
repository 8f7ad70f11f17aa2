"""`hotline`: one command line whose sub-commands follow the system's parts."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from hotline.cli_report import report_app
from hotline.cli_support import (
    ConfigOption,
    config_or_exit,
    console,
    fail,
    local_time,
    sessions,
)
from hotline.cli_tickets import COMMANDS as TICKET_COMMANDS

app = typer.Typer(
    help="The 12345 hotline: IVR, callback robot, ticket store.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
asterisk_app = typer.Typer(help="The local Asterisk: up, down, status, rx, render.")
db_app = typer.Typer(help="The ticket store.")
prompts_app = typer.Typer(help="Voice prompts.")
app.add_typer(asterisk_app, name="asterisk")
app.add_typer(db_app, name="db")
app.add_typer(prompts_app, name="prompts")
phone_app = typer.Typer(help="A SIP softphone that plays a citizen (tests, demo).")
tickets_app = typer.Typer(help="Tickets in the store.")
app.add_typer(phone_app, name="phone")
app.add_typer(tickets_app, name="tickets")
robot_app = typer.Typer(help="The callback robot: run, status, report.")
app.add_typer(robot_app, name="robot")
app.add_typer(report_app, name="report")
for _name, _command in TICKET_COMMANDS.items():
    tickets_app.command(_name)(_command)


def setup_logging(verbose: bool = False) -> None:
    """Log lines carry the call's Uniqueid (added by the AGI layer) and a timestamp."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.command("check-config")
def check_config(config: ConfigOption = None) -> None:
    """Validate the config file and print where things will live."""
    cfg = config_or_exit(config)
    console.print(f"{cfg.source}: ok")
    console.print(f"database: {cfg.database_url}")
    console.print(f"recordings: {cfg.recordings_dir}")


# -- asterisk ------------------------------------------------------------------
@asterisk_app.command("up")
def asterisk_up(config: ConfigOption = None) -> None:
    """Start the local Asterisk (provisioning Debian's Asterisk 22 on first use)."""
    from hotline.asterisk.local import AsteriskError, LocalAsterisk

    cfg = config_or_exit(config)
    local = LocalAsterisk(cfg)
    try:
        with console.status("starting Asterisk") as status:
            pid = local.up(progress=lambda line: status.update(f"provisioning Asterisk: {line}"))
    except AsteriskError as exc:
        raise fail(str(exc)) from None
    ami = cfg.asterisk.ami
    console.print(
        f"Asterisk running (pid {pid}); AMI {ami.host}:{ami.port}, "
        f"SIP {cfg.asterisk.sip.bind}:{cfg.asterisk.sip.port}/udp"
    )
    console.print(f"logs: {local.state / 'log'}")
    console.print(f"recordings: {cfg.recordings_dir}")


@asterisk_app.command("provision")
def asterisk_provision(config: ConfigOption = None) -> None:
    """Install Debian's Asterisk 22 into the cache if no Asterisk is available (idempotent)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from hotline.asterisk.provision import ProvisionError, find_install, provision

    cfg = config_or_exit(config)
    install = find_install(cfg)
    if install is None:
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed} packages"),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("debootstrap Debian's Asterisk", total=None)

            def step(line: str) -> None:
                advance = 1 if line.startswith("I: Retrieving") else 0
                progress.update(task, advance=advance, description=line[:60])

            try:
                install = provision(cfg, step)
            except ProvisionError as exc:
                raise fail(str(exc)) from None
    where = "the machine's own Asterisk" if install.root is None else f"root {install.root}"
    console.print(f"{install.version()} ({where})")


@asterisk_app.command("down")
def asterisk_down(config: ConfigOption = None) -> None:
    """Stop the local Asterisk that `up` started (and nothing else)."""
    from hotline.asterisk.local import LocalAsterisk

    stopped = LocalAsterisk(config_or_exit(config)).down()
    console.print("Asterisk stopped" if stopped else "Asterisk was not running")


@asterisk_app.command("status")
def asterisk_status(config: ConfigOption = None) -> None:
    """Version, uptime and channels of the local Asterisk."""
    from hotline.asterisk.local import AsteriskError, LocalAsterisk

    try:
        status = LocalAsterisk(config_or_exit(config)).status()
    except AsteriskError as exc:
        raise fail(str(exc)) from None
    if not status.running:
        console.print("Asterisk: not running")
        raise typer.Exit(code=1)
    console.print(f"Asterisk: running (pid {status.pid})")
    console.print(status.version)
    console.print(status.uptime)
    console.print(status.channels)


@asterisk_app.command("rx")
def asterisk_rx(
    command: Annotated[
        str, typer.Argument(help='An Asterisk CLI command, e.g. "core show channels".')
    ],
    config: ConfigOption = None,
) -> None:
    """Run one Asterisk CLI command on the local Asterisk."""
    from hotline.asterisk.local import AsteriskError, LocalAsterisk

    try:
        console.print(LocalAsterisk(config_or_exit(config)).rx(command), end="", highlight=False)
    except AsteriskError as exc:
        raise fail(str(exc)) from None


@asterisk_app.command("render")
def asterisk_render(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the configuration into.")],
    config: ConfigOption = None,
) -> None:
    """Write the site's Asterisk configuration (for a production Asterisk's /etc/asterisk)."""
    from hotline.asterisk.provision import AsteriskInstall, ProvisionError
    from hotline.asterisk.render import AsteriskLayout, render

    cfg = config_or_exit(config)
    try:
        module_dir = AsteriskInstall(root=None).module_dir()
    except ProvisionError:
        module_dir = Path("/usr/lib/x86_64-linux-gnu/asterisk/modules")
    layout = AsteriskLayout(
        etc_dir=out.resolve(),
        state_dir=Path("/var/lib/asterisk/hotline"),
        run_dir=Path("/var/run/asterisk"),
        module_dir=module_dir,
    )
    for path in render(cfg, layout, out):
        console.print(str(path))


# -- database ------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Create or migrate the ticket store to the newest schema."""
    from db.lines import sync_lines
    from db.migrate import upgrade
    from db.session import make_engine, make_session_factory, unit_of_work

    cfg = config_or_exit(config)
    upgrade(cfg.database_url)
    engine = make_engine(cfg.database_url)
    with unit_of_work(make_session_factory(engine)) as session:
        sync_lines(session, cfg.lines)
    engine.dispose()
    console.print(f"database at the newest schema: {cfg.database_url}")


@app.command("demo-data")
def demo_data(
    seed: Annotated[int, typer.Option(help="Same seed, size and --until: identical data.")] = 12345,
    tickets: Annotated[int, typer.Option(help="How many tickets.")] = 300_000,
    until: Annotated[
        str, typer.Option(help="Last day, YYYY-MM-DD (default: today, local time).")
    ] = "",
    years: Annotated[float, typer.Option(help="How far back the city's history goes.")] = 2.5,
    config: ConfigOption = None,
) -> None:
    """Fill an empty store with a realistic demo city (five-level tree, tickets, callbacks)."""
    from datetime import date

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    from hotline.demo import DemoError, generate_demo_city

    try:
        last = date.fromisoformat(until) if until else None
    except ValueError:
        raise fail(f"--until: {until!r} is not a date; use YYYY-MM-DD") from None
    db_upgrade(config)
    cfg = config_or_exit(config)
    columns = [BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    try:
        with Progress("demo city: tickets", *columns, console=console) as bar:
            task = bar.add_task("tickets", total=tickets)
            summary = generate_demo_city(
                sessions(cfg),
                cfg,
                seed,
                tickets,
                last,
                years,
                lambda done, total: bar.update(task, completed=done, total=total),
            )
    except DemoError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"{summary.departments} units, {summary.tickets:,} tickets "
        f"({summary.first_day} .. {summary.last_day}), {summary.events:,} events, "
        f"{summary.attempts:,} robot calls, {summary.valid_callbacks:,} valid callbacks"
    )
    table = Table("rate", "demo city", "seed city")
    seed_city = {
        "completion 办结率": (summary.completion, 0.972),
        "response 响应率": (summary.response, 0.957),
        "resolution 解决率": (summary.resolution, 0.837),
        "satisfaction 满意率": (summary.satisfaction, 0.972),
        "robot success 回访成功率": (summary.robot_success, 0.7183),
    }
    for name, (value, target) in seed_city.items():
        table.add_row(name, "no data" if value is None else f"{value:.1%}", f"{target:.1%}")
    console.print(table)


# -- prompts -------------------------------------------------------------------
@prompts_app.command("build")
def prompts_build(
    config: ConfigOption = None,
    force: Annotated[bool, typer.Option(help="Render every prompt again.")] = False,
) -> None:
    """Render the prompt catalog into Asterisk-ready audio (incremental)."""
    from prompts.build import PromptBuildError, build_all

    cfg = config_or_exit(config)
    try:
        report = build_all(cfg, force=force, show_progress=True)
    except PromptBuildError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"prompts: {report.rendered} rendered, {report.overridden} from studio overrides, "
        f"{report.unchanged} unchanged -> {cfg.sounds_dir}"
    )


# -- the citizen softphone ----------------------------------------------------------
KeysOption = Annotated[str, typer.Option(help='Keys to press, groups a gap apart: "1,3,2".')]
ScriptOption = Annotated[
    str | None,
    typer.Option(help='Full script instead of --keys/--say: "w1.5|d1|w7|p/voice.wav|d#|h".'),
]


@phone_app.command("call")
def phone_call(
    number: Annotated[str, typer.Argument(help="The number to dial, e.g. 12345.")],
    keys: KeysOption = "",
    say: Annotated[Path | None, typer.Option(help="A sound file to say after the keys.")] = None,
    script: ScriptOption = None,
    user: Annotated[str, typer.Option("--as", help="Which configured phone to use.")] = "",
    key_gap: Annotated[float, typer.Option(help="Seconds before each key group.")] = 2.0,
    say_after: Annotated[float, typer.Option(help="Seconds from the last key to speaking.")] = 7.0,
    hold: Annotated[float, typer.Option(help="Stay at most this long for the hotline.")] = 60,
    config: ConfigOption = None,
) -> None:
    """Register, dial, press keys, speak, then wait for the hotline to hang up."""
    from hotline.phone.softphone import (
        CitizenPhone,
        PhoneError,
        PhoneSettings,
        keys_script,
        parse_script,
    )

    cfg = config_or_exit(config)
    try:
        plan = script if script is not None else keys_script(keys, key_gap, say, say_after)
        parse_script(plan)
        settings = PhoneSettings.from_config(cfg, user or cfg.asterisk.sip.citizen_phones[0])
        with CitizenPhone(settings) as phone:
            console.print(f"{settings.username} registered; calling {number}")
            call = phone.dial(number)
            console.print(f"answered; script: {plan or '(none)'}")
            phone.run_script(call, plan, hold)
    except PhoneError as exc:
        raise fail(str(exc)) from None
    console.print("call ended")


@phone_app.command("answer")
def phone_answer(
    keys: KeysOption = "",
    script: ScriptOption = None,
    user: Annotated[str, typer.Option("--as", help="Which configured phone to use.")] = "",
    key_gap: Annotated[float, typer.Option(help="Seconds before each key group.")] = 3.0,
    timeout: Annotated[float, typer.Option(help="Give up if no call comes this long.")] = 120,
    hold: Annotated[float, typer.Option(help="Stay at most this long on the call.")] = 60,
    config: ConfigOption = None,
) -> None:
    """Register, wait for a call (e.g. the robot), answer it and press keys."""
    from hotline.phone.softphone import CitizenPhone, PhoneError, PhoneSettings, keys_script

    cfg = config_or_exit(config)
    try:
        plan = script if script is not None else keys_script(keys, key_gap, None, 0)
        settings = PhoneSettings.from_config(cfg, user or cfg.asterisk.sip.citizen_phones[0])
        with CitizenPhone(settings) as phone:
            console.print(f"{settings.username} registered; waiting for a call")
            call = phone.answer(timeout)
            console.print("answered")
            phone.run_script(call, plan, hold)
    except PhoneError as exc:
        raise fail(str(exc)) from None
    console.print("call ended")


# -- tickets, reconciliation, transcripts ------------------------------------------
TICKET_COLUMNS = (
    "number",
    "accepted",
    "caller",
    "line",
    "type",
    "category",
    "urgency",
    "status",
    "due",
    "source",
)


@tickets_app.command("list")
def tickets_list(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 30,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    caller: Annotated[str, typer.Option(help="Only this caller's tickets.")] = "",
    config: ConfigOption = None,
) -> None:
    """The newest tickets."""
    import json

    from rich.table import Table

    from db.session import unit_of_work
    from db.tickets import list_tickets

    if fmt not in ("table", "json"):
        raise fail(f"--format: {fmt!r} is not one of table, json")
    cfg = config_or_exit(config)
    with unit_of_work(sessions(cfg)) as session:
        rows = [
            {
                "number": t.number,
                "accepted": local_time(t.accepted_at, cfg),
                "caller": t.caller_number,
                "line": t.line.did if t.line else None,
                "type": t.request_type.value if t.request_type else None,
                "category": t.category,
                "urgency": t.urgency.value,
                "status": t.status.value,
                "due": local_time(t.due_at, cfg),
                "source": t.source,
                "recording": t.recording_path,
            }
            for t in list_tickets(session, limit, caller_number=caller or None)
        ]
    if fmt == "json":
        console.print_json(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(*TICKET_COLUMNS)
    for row in rows:
        table.add_row(*(str(row[k] or "") for k in TICKET_COLUMNS))
    console.print(table)


@tickets_app.command("show")
def tickets_show(
    number: Annotated[str, typer.Argument(help="The ticket number.")],
    config: ConfigOption = None,
) -> None:
    """One ticket with its calls, recordings, transcript and event history."""
    from db.session import unit_of_work
    from db.tickets import ticket_by_number

    cfg = config_or_exit(config)
    with unit_of_work(sessions(cfg)) as session:
        ticket = ticket_by_number(session, number)
        if ticket is None:
            raise fail(f"no ticket numbered {number}")
        console.print(f"[bold]ticket {ticket.number}[/] ({ticket.status.value})")
        fields = {
            "caller": ticket.caller_number,
            "line": f"{ticket.line.did} {ticket.line.name}" if ticket.line else "-",
            "type": ticket.request_type.value if ticket.request_type else "-",
            "category": ticket.category or "-",
            "urgency": ticket.urgency.value,
            "accepted": local_time(ticket.accepted_at, cfg),
            "due": local_time(ticket.due_at, cfg),
            "unit": ticket.department.name if ticket.department else "-",
            "urged": str(ticket.urge_count),
            "source": ticket.source,
            "description": ticket.description or "-",
            "reply": ticket.reply or "-",
            "recording": ticket.recording_path or "-",
            "transcript": ticket.transcript
            or f"({ticket.transcript_status.value if ticket.transcript_status else 'none'})",
        }
        for key, value in fields.items():
            console.print(f"  {key:<12} {value}", highlight=False)
        console.print("  calls:")
        for call in ticket.calls:
            console.print(
                f"    {call.uniqueid} {call.direction.value} from "
                f"{call.caller_number} {local_time(call.started_at, cfg)} -> "
                f"{local_time(call.ended_at, cfg)} cause {call.hangup_cause or '-'} "
                f"step {call.last_step or '-'} recording {call.recording_path or '-'}"
                + (f" ({call.note})" if call.note else ""),
                highlight=False,
            )
        console.print("  events:")
        for event in ticket.events:
            console.print(
                f"    {local_time(event.at, cfg)} {event.kind.value:<12} by {event.actor}"
                + (f": {event.note}" if event.note else ""),
                highlight=False,
            )


@app.command("reconcile")
def reconcile_command(
    settle: Annotated[
        int | None,
        typer.Option(help="Treat calls/recordings younger than this (s) as in progress."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Turn calls and recordings without a ticket into tickets; report orphans both ways."""
    from ivr.reconcile import reconcile
    from ivr.store import IvrStore

    cfg = config_or_exit(config)
    setup_logging()
    report = reconcile(IvrStore(cfg, sessions(cfg)), settle)
    console.print(f"spool: {report.spool_applied} applied, {report.spool_left} left")
    console.print(f"tickets created for calls without one: {len(report.tickets_for_calls)}")
    console.print(
        "tickets created for recordings without a call: "
        f"{len(report.tickets_for_orphan_recordings)}"
    )
    console.print(f"empty recordings removed: {len(report.empty_recordings_removed)}")
    for uid, path in report.calls_missing_recording:
        console.print(f"[red]missing on disk[/]: call {uid} -> {path}", highlight=False)
    for path in report.recordings_without_call:
        console.print(f"[red]no call names[/]: {path}", highlight=False)
    if not report.clean:
        raise typer.Exit(code=1)


@app.command("transcribe")
def transcribe_command(
    limit: Annotated[int, typer.Option(help="At most this many recordings.")] = 50,
    config: ConfigOption = None,
) -> None:
    """Transcribe request recordings into their tickets with the configured vosk model."""
    from ivr.transcribe import SpeechModelError, Transcriber

    cfg = config_or_exit(config)
    try:
        report = Transcriber(cfg, sessions(cfg)).run_once(limit)
    except SpeechModelError as exc:
        raise fail(str(exc)) from None
    if report.model is None:
        console.print(
            f"no speech.model_path configured in {cfg.source}: "
            f"{report.waiting} request recordings wait for transcription"
        )
        return
    console.print(
        f"transcribed {report.done}, failed {report.failed}, "
        f"{report.waiting} still waiting (model {report.model})"
    )


# -- the callback robot -------------------------------------------------------------
@robot_app.command("run")
def robot_run(config: ConfigOption = None, verbose: bool = False) -> None:
    """Dispatch survey calls within the call windows until Ctrl-C."""
    from callback_robot.runner import run_robot
    from hotline.asterisk.ami import AMIError

    cfg = config_or_exit(config)
    setup_logging(verbose)
    try:
        asyncio.run(run_robot(cfg))
    except AMIError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        pass


@robot_app.command("status")
def robot_status(config: ConfigOption = None) -> None:
    """What is dialing, in a call, and done, and who is due next."""
    from datetime import UTC, datetime

    from sqlalchemy import func, select

    from callback_robot.dispatcher import due_rules
    from callback_robot.windows import in_call_window, next_window_start
    from db.models import CallbackAttempt
    from db.robot import due_tickets, waiting_to_retry
    from db.session import unit_of_work

    cfg = config_or_exit(config)
    now = datetime.now(UTC)
    with unit_of_work(sessions(cfg)) as session:
        states = dict(
            session.execute(
                select(CallbackAttempt.state, func.count()).group_by(CallbackAttempt.state)
            ).all()
        )
        due = due_tickets(session, due_rules(cfg, now), limit=100000)
        waiting = waiting_to_retry(session, due)
    window = in_call_window(now, cfg.robot, cfg.tz)
    upcoming = next_window_start(now, cfg.robot, cfg.tz)
    console.print(
        f"call window: {'open' if window else 'closed'}"
        + ("" if window or upcoming is None else f" (opens {upcoming.strftime('%Y-%m-%d %H:%M')})")
    )
    for state in ("dialing", "in_call", "done"):
        count = next((c for s, c in states.items() if s.value == state), 0)
        console.print(f"{state:<8} {count}")
    console.print(f"due now  {len(due)} tickets")
    console.print(f"waiting to retry {waiting} tickets (interval, daily or per-citizen limit)")


@robot_app.command("report")
def robot_report(
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (local).")],
    end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (local), included.")],
    fmt: Annotated[str, typer.Option("--format", help="table or csv.")] = "table",
    within: Annotated[int, typer.Option(help="Per-ticket reach within N attempts.")] = 3,
    config: ConfigOption = None,
) -> None:
    """Calls placed, reached, completed, success rate and outcomes per day."""
    import csv
    import sys as _sys
    from datetime import date, datetime, time, timedelta

    from rich.table import Table

    from db.models import AttemptOutcome
    from db.robot import robot_figures
    from db.session import unit_of_work

    cfg = config_or_exit(config)
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as exc:
        raise fail(f"--from/--to: {exc}; use YYYY-MM-DD") from None
    if fmt not in ("table", "csv"):
        raise fail(f"--format: {fmt!r} is not one of table, csv")
    begin = datetime.combine(first, time(0), tzinfo=cfg.tz)
    finish = datetime.combine(last + timedelta(days=1), time(0), tzinfo=cfg.tz)
    with unit_of_work(sessions(cfg)) as session:
        figures = robot_figures(session, begin, finish, cfg.timezone, within)
    outcomes = [o.value for o in AttemptOutcome]
    by_day: dict[str, dict[str, int]] = figures["by_day"]  # type: ignore[assignment]
    if fmt == "csv":
        writer = csv.writer(_sys.stdout)
        writer.writerow(["day", "placed", *outcomes])
        for day, counts in by_day.items():
            writer.writerow([day, sum(counts.values()), *(counts.get(o, 0) for o in outcomes)])
        return
    rate = figures["success_rate"]
    ticket_rate = figures["ticket_rate"]
    console.print(
        f"calls placed {figures['placed']}, reached {figures['reached']}, "
        f"completed {figures['completed']}, success rate "
        f"{'no data' if rate is None else f'{rate:.2%}'}"
    )
    console.print(
        f"tickets called {figures['tickets']}, completed within {within} attempts "
        f"{figures['tickets_completed_within']} "
        f"({'no data' if ticket_rate is None else f'{ticket_rate:.2%}'})"
    )
    table = Table("day", "placed", *outcomes)
    for day, counts in by_day.items():
        table.add_row(day, str(sum(counts.values())), *(str(counts.get(o, 0)) for o in outcomes))
    console.print(table)


# -- serving -------------------------------------------------------------------
@app.command("web")
def web(config: ConfigOption = None) -> None:
    """Serve only the web app (the platform's import API) on web.host:web.port."""
    import uvicorn

    from dashboard.app import create_app

    cfg = config_or_exit(config)
    console.print(f"web app on http://{cfg.web.host}:{cfg.web.port}/ (Ctrl-C stops)")
    uvicorn.run(create_app(cfg), host=cfg.web.host, port=cfg.web.port, log_level="info")


@app.command("serve")
def serve(config: ConfigOption = None, verbose: bool = False) -> None:
    """Run the FastAGI server with every route (IVR, survey, diagnostics)."""
    from db.migrate import SchemaOutOfDate, check_current
    from hotline.app import run_forever

    cfg = config_or_exit(config)
    setup_logging(verbose)
    try:
        check_current(cfg.database_url)
    except SchemaOutOfDate as exc:
        raise fail(str(exc)) from None
    try:
        asyncio.run(run_forever(cfg))
    except OSError as exc:
        raise fail(
            f"{cfg.source}: agi.port: cannot listen on {cfg.agi.host}:{cfg.agi.port}: "
            f"{exc.strerror}"
        ) from None
    except KeyboardInterrupt:
        pass


@app.command("up")
def up(config: ConfigOption = None, verbose: bool = False) -> None:
    """Bring the whole hotline up: Asterisk, the database, prompts, then serve."""
    asterisk_up(config)
    db_upgrade(config)
    prompts_build(config)
    cfg = config_or_exit(config)
    console.print(
        f"[bold green]hotline up[/]: call 12345 from SIP phone "
        f"{cfg.asterisk.sip.citizen_phones[0]}@{cfg.asterisk.sip.bind}:{cfg.asterisk.sip.port}; "
        f"FastAGI on {cfg.agi.host}:{cfg.agi.port}; web app on "
        f"http://{cfg.web.host}:{cfg.web.port}/. Ctrl-C stops serving."
    )
    serve(config, verbose)


if __name__ == "__main__":
    app()

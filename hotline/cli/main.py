"""`hotline`: one command line whose sub-commands follow the system's parts.

Each group lives in its own module as a thin shell over library functions;
this module only assembles them.
"""

from __future__ import annotations

import typer
from rich.markup import escape

from hotline.cli import analysis, demo, housekeeping, performance, serve
from hotline.cli.asterisk import asterisk_app
from hotline.cli.cluster import cluster_app
from hotline.cli.governance import governance_app
from hotline.cli.jobs import jobs_app
from hotline.cli.kb import kb_app
from hotline.cli.phone import phone_app
from hotline.cli.prompts import prompts_app
from hotline.cli.report import report_app
from hotline.cli.retention import retention_app
from hotline.cli.robot import robot_app
from hotline.cli.store import db_app
from hotline.cli.support import ConfigOption, config_or_exit, console, err
from hotline.cli.tickets import tickets_app
from hotline.cli.users import users_app

app = typer.Typer(
    help="The 12345 hotline: IVR, callback robot, ticket store.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
for group, name in (
    (asterisk_app, "asterisk"),
    (db_app, "db"),
    (prompts_app, "prompts"),
    (phone_app, "phone"),
    (tickets_app, "tickets"),
    (robot_app, "robot"),
    (report_app, "report"),
    (retention_app, "retention"),
    (users_app, "users"),
    (kb_app, "kb"),
    (governance_app, "governance"),
    (cluster_app, "cluster"),
    (jobs_app, "jobs"),
):
    app.add_typer(group, name=name)
app.command("up")(serve.up)
app.command("serve")(serve.serve)
app.command("web")(serve.web)
app.command("reconcile")(housekeeping.reconcile_command)
app.command("transcribe")(housekeeping.transcribe_command)
app.command("demo-data")(demo.demo_data)
app.command("demo-floor")(demo.demo_floor)
report_app.command("performance")(performance.performance_command)
app.command("analyse")(analysis.analyse_command)
report_app.command("hotspots")(analysis.hotspots_command)
report_app.command("topics")(analysis.topics_command)
report_app.command("accountability")(analysis.accountability_command)
report_app.command("kb")(analysis.kb_command)


@app.command("check-config")
def check_config(config: ConfigOption = None) -> None:
    """Validate the config file and print where things will live."""
    cfg = config_or_exit(config)
    console.print(f"{cfg.source}: ok", markup=False)
    console.print(f"database: {cfg.database_url}", markup=False)
    console.print(f"recordings: {cfg.recordings_dir}", markup=False)
    for warning in cfg.warnings():
        err.print(f"[bold yellow]warning:[/] {escape(warning)}")


if __name__ == "__main__":
    app()

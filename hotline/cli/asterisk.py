"""`hotline asterisk up|provision|down|status|rx|render`: the local Asterisk, the site config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from hotline.cli.support import ConfigOption, config_or_exit, console, fail

asterisk_app = typer.Typer(help="The local Asterisk: up, provision, down, status, rx, render.")


@asterisk_app.command("up")
def asterisk_up(config: ConfigOption = None) -> None:
    """Start the local Asterisk (provisioning Debian's Asterisk 22 on first use)."""
    from tools.local_asterisk.local import AsteriskError, LocalAsterisk

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

    from tools.local_asterisk.provision import ProvisionError, find_install, provision

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
    from tools.local_asterisk.local import LocalAsterisk

    stopped = LocalAsterisk(config_or_exit(config)).down()
    console.print("Asterisk stopped" if stopped else "Asterisk was not running")


@asterisk_app.command("status")
def asterisk_status(config: ConfigOption = None) -> None:
    """Version, uptime and channels of the local Asterisk."""
    from tools.local_asterisk.local import AsteriskError, LocalAsterisk

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
    from tools.local_asterisk.local import AsteriskError, LocalAsterisk

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
    from tools.local_asterisk.provision import AsteriskInstall, ProvisionError
    from tools.local_asterisk.render import AsteriskLayout, render

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

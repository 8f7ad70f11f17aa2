"""`hotline prompts build`: the voice prompts, rendered for Asterisk."""

from __future__ import annotations

from typing import Annotated

import typer

from hotline.cli.support import ConfigOption, config_or_exit, console, fail

prompts_app = typer.Typer(help="Voice prompts.")


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

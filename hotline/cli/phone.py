"""`hotline phone call|answer`: the citizen softphone, for tests, demos and trying the IVR."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hotline.cli.support import ConfigOption, config_or_exit, console, fail

phone_app = typer.Typer(help="A SIP softphone that plays a citizen (tests, demo).")
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
    from tools.softphone.softphone import (
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
    from tools.softphone.softphone import CitizenPhone, PhoneError, PhoneSettings, keys_script

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

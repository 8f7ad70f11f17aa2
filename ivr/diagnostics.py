"""The diagnostic `echo` route: proves the whole media path in one call.

Answer, play a built prompt, read one key, say it back. The key is left in the
channel variable HOTLINE_ECHO_DIGIT, so an administrator (or a test) can see
what Asterisk received without listening to the call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prompts.build import PromptLibrary
from telephony.agi import AGI

DIGITS = "0123456789*#"
DIGIT_VARIABLE = "HOTLINE_ECHO_DIGIT"


def echo_route(prompts: PromptLibrary, wait_ms: int = 8000) -> Callable[[AGI], Awaitable[None]]:
    """Build the echo handler for a prompt library."""

    async def echo(agi: AGI) -> None:
        await agi.answer()
        digit, endpos = await agi.stream_file(prompts.path("echo_intro"), DIGITS)
        await agi.set_variable("HOTLINE_ECHO_PROMPT_ENDPOS", str(endpos))
        if digit is None:
            digit = await agi.wait_for_digit(wait_ms)
        await agi.set_variable(DIGIT_VARIABLE, digit or "none")
        agi.log.info("echo: prompt played to %s, key %s", endpos, digit or "none")
        if digit is None:
            await agi.stream_file(prompts.path("no_input"))
            return
        await agi.stream_file(prompts.path("you_pressed"))
        await agi.say_digits(digit)

    return echo

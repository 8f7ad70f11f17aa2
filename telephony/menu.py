"""The one key collector both call flows use: play a prompt, take one valid key.

A menu is a prompt, the keys it accepts, how long to wait after the prompt and
how many times to try. Any key interrupts the prompt (a citizen who knows the
menu need not listen to it); a timeout or a wrong key repeats it, optionally
after an "invalid key" prompt; after the last try the answer says why there is
no key. An exit key (the survey's opt-out) ends the menu at once, wherever it
is pressed, by raising `MenuExit`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from telephony.agi import AGI

ALL_KEYS = "0123456789*#"


class KeyStatus(enum.Enum):
    """How a menu ended."""

    VALID = "valid"
    NO_KEY = "no_key"  # nothing pressed within the timeout, on the last try
    WRONG_KEY = "wrong_key"  # a key the menu does not accept, on the last try


class MenuExit(Exception):
    """An exit key was pressed (the survey's opt-out key)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"exit key {key} pressed")
        self.key = key


@dataclass(frozen=True)
class Menu:
    """One question asked by key."""

    name: str  # for the log: the prompt's name
    prompt: str  # the sound file to play (path without extension)
    keys: str  # the keys that answer it
    timeout_ms: int  # wait after the prompt ends
    tries: int = 1
    invalid_prompt: str | None = None  # played after a wrong key, before the next try
    exit_keys: str = ""  # keys that end the menu at once (MenuExit)


@dataclass(frozen=True)
class KeyAnswer:
    """A menu's outcome: the key when valid, else why there is none."""

    key: str | None
    status: KeyStatus

    @property
    def valid(self) -> bool:
        return self.status is KeyStatus.VALID


async def play(agi: AGI, prompt: str, escape_keys: str = "", exit_keys: str = "") -> str | None:
    """Play a prompt that the listed keys interrupt; an exit key raises MenuExit."""
    digit, _ = await agi.stream_file(prompt, escape_keys + exit_keys)
    if digit is not None and digit in exit_keys:
        raise MenuExit(digit)
    return digit


async def collect_key(agi: AGI, menu: Menu) -> KeyAnswer:
    """Ask the menu up to `menu.tries` times; the first valid key answers it."""
    status = KeyStatus.NO_KEY
    for attempt in range(1, max(menu.tries, 1) + 1):
        key = await play(agi, menu.prompt, ALL_KEYS, menu.exit_keys)
        if key is None:
            key = await agi.wait_for_digit(menu.timeout_ms)
            if key is not None and key in menu.exit_keys:
                raise MenuExit(key)
        if key is not None and key in menu.keys:
            return KeyAnswer(key, KeyStatus.VALID)
        status = KeyStatus.NO_KEY if key is None else KeyStatus.WRONG_KEY
        agi.log.info(
            "menu %s: %s (try %d of %d)",
            menu.name,
            "no key" if key is None else f"invalid key {key}",
            attempt,
            menu.tries,
        )
        if key is not None and menu.invalid_prompt:
            await agi.stream_file(menu.invalid_prompt)
    return KeyAnswer(None, status)

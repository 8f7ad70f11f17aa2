"""RECORD FILE into a full disk (a real tmpfs, real Asterisk): logged as a write error, not
taken for a hang-up; the IVR still makes the ticket and tells the caller its number.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.app import Hotline
from telephony.agi import AGI
from telephony.ami import AMIClient
from tests.support.calls import calls_ended, citizen_call, speech_file, ticket_of_call
from tools.local_asterisk.local import LocalAsterisk

NEW_REQUEST = "w1.5|d1|w1.5|d1|w1.5|d2|w7|p{voice}|w1|d#"


@pytest.fixture(params=["no-space", "no-inodes"])
def full_disk(
    hotline: Hotline, asterisk: LocalAsterisk, request: pytest.FixtureRequest
) -> Iterator[Path]:
    """A 64 KiB tmpfs, filled up, seen at the same path by Python and by Asterisk.

    no-space: a new file can be created but not written (Asterisk's buffered writes then
    report success for an empty file); no-inodes: not even created (`result=-1 (writefile)`).
    """
    folder = hotline.config.state_dir / "full-disk"
    folder.mkdir(exist_ok=True)
    options = "size=64k,mode=1777" + (",nr_inodes=2" if request.param == "no-inodes" else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=True)
    inside = asterisk._install().host_path(folder)
    shared = inside != folder
    try:
        if shared:
            inside.mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", "--bind", str(folder), str(inside)], check=True)
        filler = subprocess.run(
            ["dd", "if=/dev/zero", f"of={folder / 'filler'}", "bs=4k"], capture_output=True
        )
        assert b"No space left" in filler.stderr
        yield folder
    finally:
        if shared:
            subprocess.run(["umount", "-l", str(inside)], check=False)
        subprocess.run(["umount", "-l", str(folder)], check=False)


async def test_a_request_recorded_into_a_full_disk_still_becomes_a_ticket_and_is_read_back(
    hotline: Hotline, ami: AMIClient, full_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    original = hotline.server.routes["ivr"]

    async def onto_the_full_disk(agi: AGI) -> None:
        # the recording's base name comes as the AGI's second argument (and the variable)
        base = agi.env.get("agi_arg_2") or await agi.get_variable("HOTLINE_BASE") or ""
        redirected = str(full_disk / Path(base).name)
        agi.env["agi_arg_2"] = redirected
        await agi.set_variable("HOTLINE_BASE", redirected)
        await original(agi)

    voice = speech_file(hotline.config.state_dir / "voices", "네")
    hotline.server.routes["ivr"] = onto_the_full_disk
    try:
        with caplog.at_level(logging.WARNING):
            result = await citizen_call(
                ami, "12345", NEW_REQUEST.format(voice=voice), caller="13200132077"
            )
            await calls_ended(hotline, result.uniqueid)
    finally:
        hotline.server.routes["ivr"] = original
    assert "could not be written" in caplog.text  # said as what it is, not "hung up"
    assert not result.user_events("HotlineFallback")
    ticket = ticket_of_call(hotline, result.uniqueid)
    assert ticket is not None and ticket.caller_number == "13200132077"
    assert result.variables.get("HOTLINE_TICKET") == ticket.number  # the caller heard it

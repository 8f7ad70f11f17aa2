"""Recording file names carry who called which line, so no recording is ever anonymous.

The dialplan names every file `<recordings>/YYYY/MM/DD/<uniqueid>_<did>_<caller>.wav`
(MixMonitor, the whole call), `...-request.wav` (the citizen's request, RECORD
FILE in the IVR) and `...-message.wav` (the dialplan fallback's Record()).
The uniqueid may carry the node's name (`ast1-1700000000.12_12345_138….wav` on a
node with a systemname, see core.uniqueid).
Even when the FastAGI server or the database was down, the reconciler can turn
such a file into a ticket with the right caller number and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path

from core.phone_numbers import from_caller_id
from core.uniqueid import UNIQUEID_PATTERN, node_of

NAME = re.compile(
    rf"^(?P<uniqueid>{UNIQUEID_PATTERN})_(?P<did>[0-9]*)_(?P<caller>[0-9+]*)"
    r"(?:-(?P<kind>request|message))?\.wav$"
)
WAV_HEADER = 44


@dataclass(frozen=True)
class RecordingName:
    uniqueid: str
    did: str
    caller: str
    is_request: bool  # the citizen's request or message, not the whole call
    path: Path

    @property
    def node(self) -> str | None:
        """The Asterisk node that recorded the call (None on one box)."""
        return node_of(self.uniqueid)

    @property
    def has_audio(self) -> bool:
        return has_audio(self.path)


def has_audio(path: str | Path | None) -> bool:
    """More than a bare WAV header on disk."""
    if not path:
        return False
    try:
        return Path(path).stat().st_size > WAV_HEADER
    except OSError:
        return False


def file_size(path: str | Path) -> int:
    """Bytes on disk; -1 when the file is not there."""
    try:
        return Path(path).stat().st_size
    except OSError:
        return -1


def parse(path: Path) -> RecordingName | None:
    """What a recording's file name says, or None for a file we did not name."""
    match = NAME.match(path.name)
    if match is None:
        return None
    return RecordingName(
        match["uniqueid"],
        match["did"],
        from_caller_id(match["caller"]),
        match["kind"] is not None,
        path,
    )


def request_path(call_recording: str) -> str:
    """The request recording that belongs to a call recording (same stem, -request)."""
    return (
        call_recording[:-4] + "-request.wav"
        if call_recording.endswith(".wav")
        else (call_recording + "-request.wav")
    )


def scan(recordings_dir: Path, days: Iterable[date] | None = None) -> list[RecordingName]:
    """Hotline-named recordings: of the given local days' folders, or the whole tree."""
    if days is None:
        paths = recordings_dir.rglob("*.wav")
    else:
        paths = (p for day in days for p in day_folder(recordings_dir, day).glob("*.wav"))
    found = []
    for path in sorted(paths):
        parsed = parse(path)
        if parsed is not None:
            found.append(parsed)
    return found


def day_folder(recordings_dir: Path, day: date) -> Path:
    """The dialplan's folder of one local day: YYYY/MM/DD."""
    return recordings_dir / f"{day.year:04d}" / f"{day.month:02d}" / f"{day.day:02d}"


def recent_days(now: datetime, tz: tzinfo) -> list[date]:
    """Today and yesterday in the hotline's local time (a call may cross midnight)."""
    today = now.astimezone(tz).date()
    return [today - timedelta(days=1), today]

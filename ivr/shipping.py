"""A node's finished recordings, shipped into the shared store with sizes and checksums checked.

MixMonitor and RECORD FILE write to the node's own disk, so a stalled store
never blocks media. The node daemon moves each finished file into
`cluster.recordings_store` under the same key (`[survey/]YYYY/MM/DD/name.wav`,
core.recording_keys), and the store's rows name that key from then on.

A recording is finished when its call's channel is gone (the Uniqueid in its
name is not among the node's live channels) and the file has not grown for
the settle period. A node whose AMI cannot be reached is taken for dead:
nothing on its disk is still being written, and its files go once settled.
A name without a Uniqueid (an agent-first callback's) goes on the settle
period alone: a live recording grows every second.

Shipping one file: copy it beside its place in the store (the WAV sizes
rebuilt when Asterisk never wrote them), fsync, compare the copy's size and
sha256 with what was meant, rename it into place, point the rows at the key,
then delete the node's file. A failed check removes the copy and leaves the
node's file for the next pass. Killed anywhere, the next pass finishes the
job: a copy already in place is checked against the node's file again.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.phone_numbers import mask_in_text
from core.uniqueid import UNIQUEID_PATTERN
from db.session import unit_of_work
from db.shipped import point_at_store
from ivr.cdr_tail import ship_cdrs
from ivr.wav_header import HEAD_BYTES, WavHeaderError, read_header, rebuilt, sizes_disagree

log = logging.getLogger(__name__)

SETTLE_SECONDS = 10.0  # a file this long unchanged, its channel gone, is finished
COPY_BYTES = 1 << 20
OWNER = re.compile(rf"^(?P<uniqueid>{UNIQUEID_PATTERN})_")  # the channel a recording belongs to


class Readiness(enum.StrEnum):
    READY = "ready"
    LIVE = "live"  # its channel is still up on the node
    GROWING = "growing"  # written to within the settle period


@dataclass(frozen=True)
class NodeDisk:
    """Where one node's files are, and the store they go to (plain paths, from the config)."""

    node: str
    recordings_dir: Path  # the node's own disk (its MixMonitor folder)
    master_csv: Path  # the node's cdr_csv file
    store_dir: Path  # cluster.recordings_store


@dataclass
class ShipReport:
    """What one pass of a node's daemon did."""

    node: str
    ami_up: bool = False
    cdr_lines: int = 0
    cdr_error: str | None = None
    shipped: list[str] = field(default_factory=list)  # store keys
    repaired: list[str] = field(default_factory=list)  # keys whose WAV sizes were rebuilt
    live: list[str] = field(default_factory=list)
    growing: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # key, why
    tickets: list[int] = field(default_factory=list)  # waiting for the recordings just shipped
    deferred: int = 0  # transcription jobs queued for them


@dataclass(frozen=True)
class CopyPlan:
    """The bytes the store's copy is made of: `head`, then the node file's bytes
    [skip, skip + data_bytes), then `pad`."""

    head: bytes
    skip: int
    data_bytes: int
    pad: bytes
    repaired: bool

    @property
    def size(self) -> int:
        return len(self.head) + self.data_bytes + len(self.pad)


@dataclass(frozen=True)
class Digest:
    size: int
    sha256: str


class ShipError(Exception):
    """A file could not be shipped this pass; it stays on the node's disk."""


def ship_node(
    sessions: sessionmaker[Session],
    disk: NodeDisk,
    live: set[str] | None,
    now: float | None = None,
    settle: float = SETTLE_SECONDS,
) -> ShipReport:
    """One pass over a node: its new call records, then its finished recordings.

    `live`: the Uniqueids of the node's channels (None: its AMI is unreachable).
    """
    report = ShipReport(disk.node, ami_up=live is not None)
    try:
        report.cdr_lines = ship_cdrs(sessions, disk.node, disk.master_csv)
    except (OSError, SQLAlchemyError) as exc:
        report.cdr_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        log.error("node %s: call records not shipped: %s", disk.node, report.cdr_error)
    ship_recordings(sessions, disk, live, report, now, settle)
    return report


def ship_recordings(
    sessions: sessionmaker[Session],
    disk: NodeDisk,
    live: set[str] | None,
    report: ShipReport,
    now: float | None = None,
    settle: float = SETTLE_SECONDS,
) -> None:
    """Ship every finished recording of the node; the others are counted as live or growing."""
    now = time.time() if now is None else now
    for path in node_recordings(disk.recordings_dir):
        key = path.relative_to(disk.recordings_dir).as_posix()
        try:
            state = readiness(path, live, now, settle)
        except FileNotFoundError:
            continue  # shipped or removed meanwhile
        if state == Readiness.LIVE:
            report.live.append(key)
        elif state == Readiness.GROWING:
            report.growing.append(key)
        else:
            ship_recording(sessions, disk, path, report)


def node_recordings(folder: Path) -> Iterator[Path]:
    """The recordings on the node's disk, oldest folders first."""
    yield from sorted(p for p in folder.rglob("*.wav") if not p.name.startswith("."))


def owner_of(path: Path) -> str | None:
    """The Uniqueid of the channel the recording belongs to (its name's first part)."""
    match = OWNER.match(path.name)
    return match["uniqueid"] if match else None


def readiness(path: Path, live: set[str] | None, now: float, settle: float) -> Readiness:
    """Whether a node's recording can go: its channel gone and the file settled."""
    owner = owner_of(path)
    if live is not None and owner is not None and owner in live:
        return Readiness.LIVE
    if now - path.stat().st_mtime < settle:
        return Readiness.GROWING
    return Readiness.READY


def ship_recording(
    sessions: sessionmaker[Session], disk: NodeDisk, path: Path, report: ShipReport
) -> None:
    """Copy one finished recording into the store, checked, point its rows there, delete it."""
    key = path.relative_to(disk.recordings_dir).as_posix()
    dest = disk.store_dir / key
    try:
        before = path.stat()
        plan = copy_plan(path, before.st_size)
        if dest.exists():
            _check_earlier_copy(path, plan, dest)
        else:
            _copy_checked(path, plan, dest, before, disk.node)
        with unit_of_work(sessions) as session:
            report.tickets += point_at_store(session, str(path), key, owner_of(path))
        path.unlink()
        _fsync_dir(path.parent)
    except ShipError as exc:
        _failed(report, disk.node, key, str(exc))
        return
    except (OSError, SQLAlchemyError) as exc:
        _failed(report, disk.node, key, f"{type(exc).__name__}: {exc}".splitlines()[0])
        return
    report.shipped.append(key)
    if plan.repaired:
        report.repaired.append(key)
    log.info(
        "node %s: shipped %s (%d bytes%s)",
        disk.node,
        shown(key),
        plan.size,
        ", WAV sizes rebuilt" if plan.repaired else "",
    )


def copy_plan(path: Path, size: int) -> CopyPlan:
    """What the store's copy holds: the file as it is, or with its WAV sizes rebuilt."""
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    try:
        header = read_header(head)
    except WavHeaderError:
        return CopyPlan(b"", 0, size, b"", repaired=False)  # copied as written: nothing to fix
    if not sizes_disagree(header, size):
        return CopyPlan(b"", 0, size, b"", repaired=False)
    fixed = rebuilt(head, header, size)
    return CopyPlan(fixed.head, header.data_offset, fixed.data_bytes, fixed.pad, repaired=True)


def _copy_checked(
    source: Path, plan: CopyPlan, dest: Path, before: os.stat_result, node: str
) -> None:
    """Write the copy beside its place, check it, and rename it into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.{node}.part")
    try:
        meant = write_copy(source, plan, part, stat.S_IMODE(before.st_mode))
        after = source.stat()
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise ShipError("the node's file changed while it was copied; next pass")
        written = digest_of(part)
        if written != meant:
            raise ShipError(
                f"the store's copy differs from the node's file ({written.size} bytes, "
                f"sha256 {written.sha256[:12]}…, meant {meant.size} bytes, "
                f"sha256 {meant.sha256[:12]}…); the node's file is kept"
            )
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    _fsync_dir(dest.parent)


def _check_earlier_copy(source: Path, plan: CopyPlan, dest: Path) -> None:
    """A copy already in the store (a pass killed before deleting): it must be this file."""
    meant = Digest(plan.size, _sha256(_planned_bytes(source, plan)))
    there = digest_of(dest)
    if there != meant:
        raise ShipError(
            f"the store already holds a different file under this key ({there.size} bytes, "
            f"meant {meant.size}); both are kept"
        )


def write_copy(source: Path, plan: CopyPlan, part: Path, mode: int = 0o600) -> Digest:
    """Write the planned bytes to `part` (with the node file's mode: a citizen's voice is
    no more readable in the store than on the node) and fsync it; the size and sha256."""
    digest = hashlib.sha256()
    size = 0
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(fd, mode)  # the umask left aside: the mode is the node file's
    with os.fdopen(fd, "wb") as out:
        for block in _planned_bytes(source, plan):
            out.write(block)
            digest.update(block)
            size += len(block)
        out.flush()
        os.fsync(out.fileno())
    return Digest(size, digest.hexdigest())


def digest_of(path: Path) -> Digest:
    """The size and sha256 of a file as it reads back from disk."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(COPY_BYTES):
            digest.update(block)
            size += len(block)
    return Digest(size, digest.hexdigest())


def _planned_bytes(source: Path, plan: CopyPlan) -> Iterator[bytes]:
    yield plan.head
    with source.open("rb") as handle:
        handle.seek(plan.skip)
        left = plan.data_bytes
        while left > 0:
            block = handle.read(min(COPY_BYTES, left))
            if not block:
                raise ShipError("the node's file is shorter than when it was looked at")
            left -= len(block)
            yield block
    yield plan.pad


def _sha256(blocks: Iterator[bytes]) -> str:
    digest = hashlib.sha256()
    for block in blocks:
        digest.update(block)
    return digest.hexdigest()


def _failed(report: ShipReport, node: str, key: str, why: str) -> None:
    report.failed.append((key, why))
    log.error("node %s: %s not shipped: %s", node, shown(key), mask_in_text(why))


def shown(key: str) -> str:
    """A key as logged: the caller's number in its name masked.

    mask_in_text leaves a number followed by "." whole (it reads as part of
    an id like 1700000000.12), and the caller's number ends the name before
    ".wav", so the extension is set aside first.
    """
    stem, dot, extension = key.rpartition(".")
    return mask_in_text(stem) + dot + extension if dot else mask_in_text(key)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""Importing platform records from CSV, JSON or JSON Lines (and the HTTP endpoint's body).

Each record is validated, then upserted inside its own savepoint: a bad record
is reported with where it is (`tickets.csv:17`, `tickets[3]`) and why, and
leaves nothing behind, while the good ones land. Work is committed every
`chunk` records so a crash part-way keeps whole records only, and importing the
file again picks up where it stopped (upserts are idempotent).

Departments are applied before tickets and parents before children (sorted by
level), so a file may list a tree in any order.

A refusal names the record by where it is and the field by its name, with what
is wrong; it never repeats what the record holds (no value, no whole record).
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig
from core.deadlines import due_at
from core.vocabulary import Urgency
from tickets.area import TreeIndex
from tickets.intake.records import DepartmentRecord, TicketRecord, ticket_from_csv_row
from tickets.intake.upsert import Outcome, upsert_department, upsert_ticket

Item = tuple[str, dict[str, Any]]  # (where it is, the raw record)


class ImportFileError(ValueError):
    """A file that cannot be read at all (unknown kind, broken JSON, missing header)."""


@dataclass
class RecordError:
    where: str
    reason: str
    order: int = 0  # the record's place in the input, so refusals list in file order


@dataclass
class ImportReport:
    """What an import did, per kind of record, and every record it refused."""

    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {
            kind: {"created": 0, "updated": 0, "unchanged": 0} for kind in ("department", "ticket")
        }
    )
    errors: list[RecordError] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{kind}s: " + ", ".join(f"{n} {what}" for what, n in counts.items())
            for kind, counts in self.counts.items()
            if any(counts.values())
        ]
        return "; ".join([*parts, f"{len(self.errors)} refused"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "errors": [{"where": e.where, "reason": e.reason} for e in self.errors],
        }


# -- reading -----------------------------------------------------------------------
def _csv_items(path: Path) -> Iterator[Item]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = set(reader.fieldnames or [])
        if "external_id" in header:
            kind = "ticket"
        elif {"code", "level"} <= header:
            kind = "department"
        else:
            raise ImportFileError(
                f"{path}: the header names neither tickets (external_id, ...) nor "
                f"departments (code, name, level, parent_code, peer_group)"
            )
        for row in reader:
            where = f"{path.name}:{reader.line_num}"
            if None in row:
                yield where, {"kind": kind, "__error__": "more cells than header columns"}
                continue
            data = ticket_from_csv_row(row) if kind == "ticket" else dict(row)
            yield where, {"kind": kind, **data}


def _json_items(path: Path) -> Iterator[Item]:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"{path}: not valid JSON ({exc})") from None
    yield from body_items(body)


MAX_JSON_DEPTH = 8  # {"tickets": [{"events": [{...}]}]} is 4 deep; anything deeper is not ours


def parse_document(raw: bytes) -> Any:
    """A JSON document from the platform, refused when malformed or nested past MAX_JSON_DEPTH."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise ImportFileError(f"the body is not a JSON document: {reason}") from None
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ImportFileError(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, dict | list):
            stack.extend((child, depth + 1) for child in children)
    return document


def body_items(body: Any) -> Iterator[Item]:
    """Records of a JSON document: {"departments": [...], "tickets": [...]} or a list."""
    if isinstance(body, list):
        body = {"tickets": body}
    if not isinstance(body, dict) or not set(body) <= {"departments", "tickets"}:
        raise ImportFileError('expected {"departments": [...], "tickets": [...]} or a list')
    for kind in ("departments", "tickets"):
        records = body.get(kind) or []
        if not isinstance(records, list):
            raise ImportFileError(f'"{kind}" must be a list')
        for index, record in enumerate(records):
            data = record if isinstance(record, dict) else {"__error__": "not an object"}
            yield f"{kind}[{index}]", {"kind": kind[:-1], **data}


def _jsonl_items(path: Path) -> Iterator[Item]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                yield where, {"__error__": f"not valid JSON ({exc.msg})"}
                continue
            if not isinstance(data, dict):
                yield where, {"__error__": "not an object"}
                continue
            yield where, {"kind": "ticket", **data}


def read_file(path: Path) -> Iterator[Item]:
    """The records of a .csv, .json or .jsonl file, each with where it is."""
    readers = {".csv": _csv_items, ".json": _json_items, ".jsonl": _jsonl_items}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise ImportFileError(f"{path}: expected a .csv, .json or .jsonl file")
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    return reader(path)


def count_records(path: Path) -> int | None:
    """How many records a file holds, for the progress bar (None if unknown cheaply)."""
    if path.suffix.lower() in (".csv", ".jsonl"):
        with path.open("rb") as handle:
            lines = sum(1 for line in handle if line.strip())
        return max(lines - (1 if path.suffix.lower() == ".csv" else 0), 0)
    return None


# -- validating --------------------------------------------------------------------
def _reason(exc: ValidationError) -> str:
    """Why a record was refused: the fields and what is wrong with them, never what they
    hold (the answer goes back to whoever sent the record, and into logs: a field may be
    a citizen's number, a 4,000-character text or a list of 200 events)."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False)[:3]:
        location = ".".join(str(p)[:40] for p in error["loc"][:6])  # a key may be anything
        message = error["msg"].removeprefix("Value error, ")[:200]
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


def parse(data: dict[str, Any], zone: ZoneInfo) -> DepartmentRecord | TicketRecord:
    """Validate one raw record (ValueError with the reason if it is bad)."""
    if "__error__" in data:
        raise ValueError(data["__error__"])
    model = DepartmentRecord if data.get("kind") == "department" else TicketRecord
    return model.model_validate(data, context={"zone": zone})


# -- applying ----------------------------------------------------------------------
log = logging.getLogger(__name__)
CHUNK_RETRY_SECONDS = 120.0


class Importer:
    """Applies records to the store, one savepoint per record, committing in chunks."""

    def __init__(self, sessions: sessionmaker[Session], config: HotlineConfig) -> None:
        self.sessions = sessions
        self.config = config
        self.zone = ZoneInfo(config.timezone)
        self._tree: TreeIndex | None = None  # built for the tickets after each tree change

    def local_day(self, when: datetime) -> date:
        return when.astimezone(self.zone).date()

    def due(self, accepted: datetime, urgency: Urgency) -> datetime:
        return due_at(accepted, urgency, self.config.deadlines, self.zone)

    def run(
        self,
        items: Iterable[Item],
        progress: Callable[[int], None] | None = None,
        chunk: int = 500,
    ) -> ImportReport:
        """Import items (departments first, parents before children)."""
        report = ImportReport()
        departments: list[tuple[int, str, DepartmentRecord]] = []
        pending: list[tuple[int, str, TicketRecord]] = []
        session = self.sessions()
        try:
            for order, (where, data) in enumerate(items):
                try:
                    record = parse(data, self.zone)
                except ValidationError as exc:
                    report.errors.append(RecordError(where, _reason(exc), order))
                    self._tick(progress)
                    continue
                except ValueError as exc:
                    report.errors.append(RecordError(where, str(exc), order))
                    self._tick(progress)
                    continue
                if isinstance(record, DepartmentRecord):
                    departments.append((order, where, record))
                    continue
                if departments:  # a tree ahead of the tickets: apply it first, in level order
                    self._apply_departments(session, departments, report, progress)
                    departments = []
                pending.append((order, where, record))
                if len(pending) >= chunk:
                    self._apply_tickets(session, pending, report, progress)
                    pending = []
            self._apply_departments(session, departments, report, progress)
            self._apply_tickets(session, pending, report, progress)
        finally:
            session.close()
        report.errors.sort(key=lambda error: error.order)
        return report

    @staticmethod
    def _tick(progress: Callable[[int], None] | None, count: int = 1) -> None:
        if progress is not None:
            progress(count)

    def _commit_chunk(
        self, session: Session, work: Callable[[], None], report: ImportReport
    ) -> None:
        """Apply and commit one chunk; a busy or unreachable database retries the whole chunk.

        An import is bulk work beside live calls: it waits for the IVR's writes (up
        to CHUNK_RETRY_SECONDS) instead of failing; the chunk's counts and refusals
        are taken back before each retry, so nothing is counted twice.
        """
        deadline = time.monotonic() + CHUNK_RETRY_SECONDS
        delay = 0.2
        while True:
            counts, refused = copy.deepcopy(report.counts), len(report.errors)
            try:
                work()
                session.commit()
                return
            except OperationalError as exc:
                session.rollback()
                report.counts, report.errors[refused:] = counts, []
                if time.monotonic() + delay > deadline:
                    raise
                log.warning(
                    "import: database busy (%s); chunk retried in %.1f s",
                    str(exc.orig).splitlines()[0],
                    delay,
                )
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _apply(
        self,
        session: Session,
        item: tuple[int, str],
        kind: str,
        work: Callable[[], Outcome],
        report: ImportReport,
    ) -> None:
        order, where = item
        try:
            with session.begin_nested():
                outcome = work()
        except (ValueError, IntegrityError, DataError) as exc:
            reason = str(exc.orig) if isinstance(exc, IntegrityError | DataError) else str(exc)
            report.errors.append(RecordError(where, reason.splitlines()[0], order))
            return
        report.counts[kind][outcome] += 1

    def _apply_departments(
        self,
        session: Session,
        departments: list[tuple[int, str, DepartmentRecord]],
        report: ImportReport,
        progress: Callable[[int], None] | None,
    ) -> None:
        if departments:
            self._tree = None

        def work() -> None:
            for order, where, record in sorted(departments, key=lambda item: item[2].level):
                self._apply(
                    session,
                    (order, where),
                    "department",
                    lambda r=record: upsert_department(session, r),
                    report,
                )

        self._commit_chunk(session, work, report)
        self._tick(progress, len(departments))

    def _apply_tickets(
        self,
        session: Session,
        pending: list[tuple[int, str, TicketRecord]],
        report: ImportReport,
        progress: Callable[[int], None] | None,
    ) -> None:
        def work() -> None:
            tree = self._tree or TreeIndex.build(session)
            self._tree = tree
            for order, where, record in pending:
                self._apply(
                    session,
                    (order, where),
                    "ticket",
                    lambda r=record: upsert_ticket(session, r, self.local_day, self.due, tree),
                    report,
                )

        self._commit_chunk(session, work, report)
        self._tick(progress, len(pending))

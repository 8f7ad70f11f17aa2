"""The knowledge base's entries: imported from YAML, versioned, published, edited.

An entry is known by its `key` across versions. Changing what an entry says (title,
phrasings, keywords, answers, category, lines, validity, owner) writes a new version
and retires the old one, so an offer made last month still points at the text the
caller heard; re-importing an unchanged file changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.departments import department_by_code
from db.models import Department, KbEntry, utcnow
from kb.matching import Document, Matcher

KEY_PATTERN = r"^[a-z0-9][a-z0-9-]{1,63}$"
CONTENT = (
    "title",
    "phrasings",
    "keywords",
    "answer_zh",
    "answer_en",
    "category",
    "lines",
    "valid_from",
    "valid_to",
    "owner_department_id",
)


class EntryError(ValueError):
    """A file or an edit a person can fix: the message names the file, entry and field."""


def _clean(values: list[str]) -> list[str]:
    return [v.strip() for v in values if v.strip()]


class EntryIn(BaseModel):
    """One entry as a file or the console gives it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    key: str = Field(pattern=KEY_PATTERN)
    title: str = Field(min_length=2, max_length=200)
    phrasings: list[str] = Field(min_length=3)
    keywords: list[str] = Field(min_length=1)
    answer_zh: str = Field(min_length=2)
    answer_en: str | None = None
    category: str | None = Field(None, max_length=100)
    lines: list[str] = []  # DIDs; empty: every line
    valid_from: date | None = None
    valid_to: date | None = None
    owner: str | None = None  # the owner unit's department code
    status: Literal["draft", "published"] = "draft"

    @field_validator("phrasings", "keywords", "lines", mode="before")
    @classmethod
    def _texts(cls, value: object) -> object:
        # YAML reads 12315 as a number: a keyword or a DID is text all the same
        return [str(v) for v in value] if isinstance(value, list) else value

    @field_validator("phrasings")
    @classmethod
    def _three_phrasings(cls, value: list[str]) -> list[str]:
        if len(set(_clean(value))) < 3:
            raise ValueError("at least 3 different phrasings")
        return _clean(value)

    @field_validator("keywords", "lines")
    @classmethod
    def _no_blanks(cls, value: list[str]) -> list[str]:
        return _clean(value)

    @model_validator(mode="after")
    def _valid_span(self) -> EntryIn:
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError(f"valid_to {self.valid_to} is before valid_from {self.valid_from}")
        return self


class EntryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[EntryIn] = Field(min_length=1)


def _where(error: dict) -> str:  # type: ignore[type-arg]
    return ".".join(str(part) for part in error["loc"]) or "file"


def load_file(path: Path) -> list[EntryIn]:
    """The entries of a YAML file, or EntryError with the first fault in one line."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EntryError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise EntryError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    try:
        entries = EntryFile.model_validate(raw).entries
    except ValidationError as exc:
        first = exc.errors()[0]
        raise EntryError(f"{path}: {_where(first)}: {first['msg']}") from None
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if entry.key in seen:
            raise EntryError(f"{path}: entries.{index}.key: {entry.key!r} appears twice")
        seen.add(entry.key)
    return entries


def _content(entry: EntryIn, owner_id: int | None) -> dict[str, object]:
    return {
        "title": entry.title,
        "phrasings": json.dumps(entry.phrasings, ensure_ascii=False),
        "keywords": json.dumps(entry.keywords, ensure_ascii=False),
        "answer_zh": entry.answer_zh,
        "answer_en": entry.answer_en or None,
        "category": entry.category or None,
        "lines": json.dumps(entry.lines, ensure_ascii=False),
        "valid_from": entry.valid_from,
        "valid_to": entry.valid_to,
        "owner_department_id": owner_id,
    }


def _same(row: KbEntry, content: dict[str, object]) -> bool:
    return all(getattr(row, name) == content[name] for name in CONTENT)


def latest(session: Session, key: str) -> KbEntry | None:
    """The newest version of an entry (retired or not)."""
    return session.scalars(
        select(KbEntry).where(KbEntry.key == key).order_by(KbEntry.version.desc()).limit(1)
    ).first()


@dataclass
class ImportResult:
    """What an import did, by entry key."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # a new version
    status_changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _owner_id(session: Session, entry: EntryIn) -> int | None:
    if not entry.owner:
        return None
    unit = department_by_code(session, entry.owner)
    if unit is None:
        raise EntryError(f"entry {entry.key}: owner: no department with code {entry.owner!r}")
    return unit.id


def save(
    session: Session, entry: EntryIn, by: str, now: datetime | None = None
) -> tuple[KbEntry, str]:
    """Write entry: a first version, a new version (old retired) if its content changed,
    or only its status; returns the current row and what happened
    (added|changed|status_changed|unchanged)."""
    now = now or utcnow()
    content = _content(entry, _owner_id(session, entry))
    current = latest(session, entry.key)
    if current is not None and _same(current, content):
        if current.status == entry.status:
            return current, "unchanged"
        current.status, current.updated_by, current.updated_at = entry.status, by, now
        if entry.status == "published":
            current.reviewed_at = now
        return current, "status_changed"
    if current is not None and current.status != "retired":
        current.status, current.updated_by, current.updated_at = "retired", by, now
    row = KbEntry(
        key=entry.key,
        version=(current.version + 1) if current is not None else 1,
        status=entry.status,
        updated_by=by,
        updated_at=now,
        reviewed_at=now if entry.status == "published" else None,
        **content,
    )
    session.add(row)
    session.flush()
    return row, "added" if current is None else "changed"


def import_entries(
    session: Session, entries: list[EntryIn], by: str, now: datetime | None = None
) -> ImportResult:
    """Write every entry of a file (see `save`); idempotent for an unchanged file."""
    result = ImportResult()
    for entry in entries:
        _, what = save(session, entry, by, now)
        getattr(result, what).append(entry.key)
    return result


def current_entries(session: Session, include_retired: bool = False) -> list[KbEntry]:
    """The newest version of every entry, by category and title (retired ones only if asked)."""
    newest = (
        select(KbEntry.key, func.max(KbEntry.version).label("version"))
        .group_by(KbEntry.key)
        .subquery()
    )
    statement = select(KbEntry).join(
        newest, (KbEntry.key == newest.c.key) & (KbEntry.version == newest.c.version)
    )
    if not include_retired:
        statement = statement.where(KbEntry.status != "retired")
    rows = session.scalars(statement)
    return sorted(rows, key=lambda r: (r.category or "", r.title, r.key))


def as_input(row: KbEntry, session: Session) -> EntryIn:
    """A stored entry as the input model (what the console's edit form starts from)."""
    owner = session.get(Department, row.owner_department_id) if row.owner_department_id else None
    return EntryIn(
        key=row.key,
        title=row.title,
        phrasings=json.loads(row.phrasings),
        keywords=json.loads(row.keywords),
        answer_zh=row.answer_zh,
        answer_en=row.answer_en,
        category=row.category,
        lines=json.loads(row.lines or "[]"),
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        owner=owner.code if owner else None,
        status="published" if row.status == "published" else "draft",
    )


def publish(session: Session, key: str, by: str, now: datetime | None = None) -> KbEntry:
    """Publish an entry's newest version (reviewed now)."""
    row = latest(session, key)
    if row is None or row.status == "retired":
        raise EntryError(f"entry {key}: no such entry (or it is retired)")
    now = now or utcnow()
    row.status, row.reviewed_at, row.updated_by, row.updated_at = "published", now, by, now
    return row


def live_entries(session: Session, day: date, dids: set[str] | None = None) -> list[KbEntry]:
    """Published entries valid on day; with dids, only those for one of these lines (an
    entry without lines is for every line)."""
    rows = session.scalars(
        select(KbEntry).where(
            KbEntry.status == "published",
            (KbEntry.valid_from.is_(None)) | (KbEntry.valid_from <= day),
            (KbEntry.valid_to.is_(None)) | (KbEntry.valid_to >= day),
        )
    )
    if dids is None:
        return list(rows)
    return [r for r in rows if not json.loads(r.lines or "[]") or set(json.loads(r.lines)) & dids]


def document(row: KbEntry) -> Document:
    """What the matcher reads of a stored entry."""
    return Document(
        key=row.key,
        title=row.title,
        phrasings=tuple(json.loads(row.phrasings)),
        keywords=tuple(json.loads(row.keywords)),
    )


def matcher(rows: list[KbEntry]) -> Matcher:
    """A matcher over stored entries."""
    return Matcher([document(r) for r in rows])


def edit(
    session: Session, entry: EntryIn, by: str, now: datetime | None = None
) -> tuple[KbEntry, str]:
    """Change an existing entry (the console's form): as `save`, for a known key only."""
    if latest(session, entry.key) is None:
        raise EntryError(f"entry {entry.key}: no such entry")
    return save(session, entry, by, now)

"""Where a ticket's problem is (`tickets.area_id`), for the monthly hotspot analysis.

A surge is "劳动纠纷 rose in 某某镇", so every ticket needs a place on the tree,
whichever unit handled it. The place is found in this order, and the order is
recorded in `area_source`:

1. `import`: the platform said so (the import's `area_code`, a department code);
2. `unit`: the handling unit is territorial (a district office, a street or
   township, a community or village); a community rolls up to its township,
   the finest level the analysis counts;
3. `text`: a district, township or community name appears in the description or
   the transcript (the longest name found wins; a name two places share is not
   evidence and is skipped; a community again rolls up to its township);
4. `unknown`: none of these (`area_id` stays empty).

The name index is built once per run (`TreeIndex.build`) and looked up by each
name's first two characters, so a ticket costs one dict lookup per character of
its text, not one search per place of the tree.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.vocabulary import Level
from db.departments import department_by_code
from db.models import Department, Ticket

IMPORT, UNIT, TEXT, UNKNOWN = "import", "unit", "text", "unknown"
AREA_SOURCES = (IMPORT, UNIT, TEXT, UNKNOWN)
TERRITORIAL_GROUPS = frozenset({"district", "street", "community"})
PREFIX = 2  # names are looked up by their first two characters
MIN_NAME = 2  # a one-character "name" would match anywhere
FILL_BATCH = 2000


class AreaError(ValueError):
    """An area code that names no department (the import refuses the record)."""


class TicketText(Protocol):
    """What `resolve_area` reads of a ticket: an ORM ticket or a selected row."""

    @property
    def department_id(self) -> int | None: ...
    @property
    def description(self) -> str | None: ...
    @property
    def transcript(self) -> str | None: ...


@dataclass(frozen=True)
class TreeUnit:
    """A department as the area rules read it (from the store, or the demo's tree)."""

    id: int
    code: str
    name: str
    level: int
    parent_id: int | None
    peer_group: str


@dataclass
class TreeIndex:
    """The tree as the area rules need it: each territorial unit's area, and place names."""

    area_of_unit: dict[int, int] = field(default_factory=dict)
    id_of_code: dict[str, int] = field(default_factory=dict)
    area_of_name: dict[str, int | None] = field(default_factory=dict)  # None: two places
    names_by_prefix: dict[str, list[str]] = field(default_factory=dict)  # longest first

    @classmethod
    def build(cls, session: Session) -> TreeIndex:
        """Read the department tree once (a few hundred rows)."""
        rows = session.execute(
            select(
                Department.id,
                Department.code,
                Department.name,
                Department.level,
                Department.parent_id,
                Department.peer_group,
            )
        )
        return cls.of_units([TreeUnit(*row) for row in rows])

    @classmethod
    def of_units(cls, units: list[TreeUnit]) -> TreeIndex:
        by_id = {unit.id: unit for unit in units}
        index = cls(id_of_code={unit.code: unit.id for unit in units})
        for unit in units:
            area = _area_of(unit, by_id)
            if area is not None:
                index.area_of_unit[unit.id] = area
        for unit in units:
            area = index.area_of_unit.get(unit.id)
            name = unit.name.strip()
            if area is None or len(name) < MIN_NAME:
                continue
            known = index.area_of_name.get(name, area)
            index.area_of_name[name] = area if known == area else None
        prefixes: dict[str, list[str]] = defaultdict(list)
        for name in index.area_of_name:
            prefixes[name[:PREFIX]].append(name)
        index.names_by_prefix = {
            key: sorted(names, key=len, reverse=True) for key, names in prefixes.items()
        }
        return index

    def area_of(self, unit_id: int | None) -> int | None:
        """The area a territorial unit stands for (its township for a community)."""
        return self.area_of_unit.get(unit_id) if unit_id is not None else None

    def place_in(self, text: str) -> int | None:
        """The area of the longest unambiguous place name in text, if any."""
        best: tuple[int, int] | None = None  # (length, area)
        for start in range(len(text) - MIN_NAME + 1):
            for name in self.names_by_prefix.get(text[start : start + PREFIX], ()):
                if best is not None and len(name) <= best[0]:
                    break  # longest first: nothing further here beats what we have
                area = self.area_of_name[name]
                if area is not None and text.startswith(name, start):
                    best = (len(name), area)
                    break
        return best[1] if best else None


def _is_territorial(unit: TreeUnit, by_id: dict[int, TreeUnit]) -> bool:
    """A place, not a bureau: its peer group says so, or it sits under a district office."""
    if unit.peer_group in TERRITORIAL_GROUPS:
        return True
    step = unit
    while step.level > Level.DISTRICT and step.parent_id in by_id:
        step = by_id[step.parent_id]
    return unit.level > Level.DISTRICT and step.peer_group == "district"


def _area_of(unit: TreeUnit, by_id: dict[int, TreeUnit]) -> int | None:
    if unit.level < Level.DISTRICT or not _is_territorial(unit, by_id):
        return None
    if unit.level > Level.TOWNSHIP and unit.parent_id in by_id:
        return _area_of(by_id[unit.parent_id], by_id) or unit.id
    return unit.id


def resolve_area(
    session: Session, ticket: TicketText, tree_index: TreeIndex, area_code: str | None = None
) -> tuple[int | None, str]:
    """(area_id, area_source) for a ticket: import code, territorial unit, place name, unknown.

    `area_code` is what the import gave (a department code); a code naming no
    department raises AreaError. A code the index does not know (a unit added
    after it was built) is looked up in the store.
    """
    if area_code:
        found = tree_index.id_of_code.get(area_code)
        if found is None:
            unit = department_by_code(session, area_code)
            if unit is None:
                raise AreaError(f"area_code {area_code!r} is not a known department")
            found = unit.id
        return found, IMPORT
    area = tree_index.area_of(ticket.department_id)
    if area is not None:
        return area, UNIT
    text = " ".join(part for part in (ticket.description, ticket.transcript) if part)
    area = tree_index.place_in(text) if text else None
    if area is not None:
        return area, TEXT
    return None, UNKNOWN


def fill_areas(session: Session, since: datetime | None = None) -> int:
    """Give every ticket without an area source one (those accepted since `since`, if given).

    The monthly analysis calls this first. Tickets already placed are left as they
    are, so running it twice changes nothing the second time; work goes in
    batches of FILL_BATCH by id, in the caller's transaction. The tree is read only
    when a batch has tickets to place: most runs find none.
    """
    index: TreeIndex | None = None
    query = select(Ticket.id, Ticket.department_id, Ticket.description, Ticket.transcript).where(
        Ticket.area_source.is_(None)
    )
    if since is not None:
        query = query.where(Ticket.accepted_at >= since)
    filled, after = 0, 0
    while True:
        rows = session.execute(
            query.where(Ticket.id > after).order_by(Ticket.id).limit(FILL_BATCH)
        ).all()
        if not rows:
            return filled
        if index is None:
            index = TreeIndex.build(session)
        changes = []
        for row in rows:
            area_id, source = resolve_area(session, row, index)
            changes.append({"id": row.id, "area_id": area_id, "area_source": source})
        session.execute(update(Ticket), changes)
        filled += len(changes)
        after = rows[-1].id

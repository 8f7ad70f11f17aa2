"""Departments: the five-level tree with peer groups."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.vocabulary import Level
from db.models import Department


def create_department(
    session: Session,
    code: str,
    name: str,
    level: Level,
    parent: Department | None = None,
    peer_group: str = "default",
) -> Department:
    """Add a unit under parent; a unit must sit exactly one level below its parent."""
    if parent is not None and level != parent.level + 1:
        raise ValueError(
            f"department {code}: level {level.name.lower()} cannot sit under "
            f"{parent.code} (level {Level(parent.level).name.lower()})"
        )
    department = Department(
        code=code, name=name, level=int(level), parent=parent, peer_group=peer_group
    )
    session.add(department)
    session.flush()
    return department


def subtree_ids(session: Session, root_id: int) -> list[int]:
    """The ids of a unit and every unit below it (a recursive query, not a Python walk)."""
    tree = select(Department.id).where(Department.id == root_id).cte(recursive=True)
    tree = tree.union_all(select(Department.id).where(Department.parent_id == tree.c.id))
    return list(session.scalars(select(tree.c.id)))

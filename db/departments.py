"""Departments: the five-level tree with peer groups, and the one query for "units under X".

Every feature that scopes by unit (the console's staff, a report's subtree, the
rates rolled up the tree) asks `subtree` here, so the recursive walk is written
once. The walk stops at `MAX_DEPTH` levels below its root: the tree has five
levels, and a parent chain that loops (written straight into the table, past
`create_department`) must end the query, not recurse until the database gives up.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, literal_column, select
from sqlalchemy.orm import Session

from core.vocabulary import Level
from db.models import Department

MAX_DEPTH = 16  # levels below a root the walk follows; the tree has five


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


def department_by_code(session: Session, code: str) -> Department | None:
    return session.scalars(select(Department).where(Department.code == code)).one_or_none()


def subtree(root_id: int) -> Select[Any]:
    """A subquery of the ids of root_id and every unit below it (a recursive CTE).

    For `IN (...)`: on a looping parent chain an id may come more than once.
    """
    tree = (
        select(Department.id, literal_column("0").label("depth"))
        .where(Department.id == root_id)
        .cte("subtree", recursive=True)
    )
    tree = tree.union_all(
        select(Department.id, tree.c.depth + literal_column("1")).where(
            Department.parent_id == tree.c.id, tree.c.depth < literal_column(str(MAX_DEPTH))
        )
    )
    return select(tree.c.id)


def subtree_ids(session: Session, root_id: int) -> list[int]:
    """The ids of a unit and every unit below it, each once."""
    return list(session.scalars(subtree(root_id).distinct()))

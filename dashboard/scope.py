"""Staff see their unit's subtree only: the scope checks and the unit pickers of the console.

Every walk down the tree is `db.departments.subtree`, the one recursive query.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.departments import subtree
from db.models import Department


def in_subtree(session: Session, department_id: int | None, root_id: int) -> bool:
    """Is department_id root_id or below it? (None, a ticket with no unit yet: no.)"""
    if department_id is None:
        return False
    found = session.scalar(
        select(func.count()).where(subtree(root_id).subquery().c.id == department_id)
    )
    return bool(found)


def subtree_units(session: Session, root_id: int) -> list[Department]:
    """root_id and every unit below it, by level and code."""
    return list(
        session.scalars(
            select(Department)
            .where(Department.id.in_(subtree(root_id)))
            .order_by(Department.level, Department.code)
        )
    )


def department(session: Session, department_id: int) -> Department | None:
    return session.get(Department, department_id)


def children(session: Session, parent_id: int | None) -> list[Department]:
    """The units one level below parent_id (the top level for None)."""
    condition = (
        Department.parent_id.is_(None) if parent_id is None else Department.parent_id == parent_id
    )
    return list(session.scalars(select(Department).where(condition).order_by(Department.code)))

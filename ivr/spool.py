"""The spool moved to `db.spool` (shared by every flow's way into the store)."""

from db.spool import Spool

__all__ = ["Spool"]

"""The store runtime: every flow's one way into the store, retried, bounded, else spooled.

A process builds one `StoreRuntime` on its engine and every flow opens its
`StoreGateway` on it (`runtime.gateway(retry_seconds, spool)`): the IVR, the
survey and `survey-end`, the dialer, the robot's claim, heartbeat and recovery.
Their work takes turns on one queue, so on SQLite one process's writers never
race each other for the file lock: on the store thread, or in the store process
(`process.py`, `python -m db.runtime`) when `hotline serve` has one,
fed over a pipe from the event loop. Each flow keeps its own retry budget and
its own spool (`spool.py`); `outage.py` says which errors mean "the store is
away for now". The runtime runs the operations the flows register by name and
imports no feature; it takes plain values, never a config object.
"""

from db.runtime.gateway import StoreGateway, StoreRuntime, store_threads
from db.runtime.outage import (
    StoreLate,
    StoreOutage,
    StoreUnavailable,
    StoreWorkFailed,
    is_outage,
)
from db.runtime.process import Operation, StoreProcess, StoreRecipe, combined
from db.runtime.spool import Spool, read_time

__all__ = [
    "Operation",
    "Spool",
    "StoreGateway",
    "StoreLate",
    "StoreOutage",
    "StoreProcess",
    "StoreRecipe",
    "StoreRuntime",
    "StoreUnavailable",
    "StoreWorkFailed",
    "combined",
    "is_outage",
    "read_time",
    "store_threads",
]

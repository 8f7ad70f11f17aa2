"""The domain's vocabulary: the words every floor shares, as enums.

Tickets, calls and callbacks are described with these in the store, the flows,
the reports and the dialplan renderer alike, so a word is spelled in one place.
The values are what the database stores: renaming a value is a migration.
"""

from __future__ import annotations

import enum


class Level(enum.IntEnum):
    """The five-level network: region -> city -> district -> township/street -> village."""

    REGION = 1
    CITY = 2
    DISTRICT = 3
    TOWNSHIP = 4
    VILLAGE = 5


class RequestType(enum.StrEnum):
    CONSULTATION = "consultation"  # 咨询
    HELP = "help"  # 求助
    COMPLAINT = "complaint"  # 投诉
    REPORT = "report"  # 举报
    SUGGESTION = "suggestion"  # 建议


class Urgency(enum.StrEnum):
    EMERGENCY = "emergency"  # 1 working day
    DAILY_LIFE = "daily_life"  # 3 working days
    COMPLEX = "complex"  # 7 calendar days


class TicketStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # 受理
    DISPATCHED = "dispatched"  # 派单
    SIGNED = "signed"  # 签收
    IN_PROGRESS = "in_progress"  # 办理
    RETURNED = "returned"  # 退单
    CLOSED = "closed"  # 办结
    ARCHIVED = "archived"  # 归档


class EventKind(enum.StrEnum):
    ACCEPTED = "accepted"
    DISPATCHED = "dispatched"
    SIGNED = "signed"
    RETURNED = "returned"
    REDISPATCHED = "redispatched"
    URGED = "urged"
    SUPERVISED = "supervised"
    CLOSED = "closed"
    REWORK = "rework"
    SURVEYED = "surveyed"
    ARCHIVED = "archived"
    DISPATCHED_ABOVE = "dispatched_above"  # 双派单: the level above is sent a copy to oversee
    RETURN_REJECTED = "return_rejected"  # a 退单 judged improper: counted against the unit


class TranscriptStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # no speech model configured


class CallDirection(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class AttemptState(enum.StrEnum):
    QUEUED = "queued"
    DIALING = "dialing"
    IN_CALL = "in_call"
    DONE = "done"


class AttemptOutcome(enum.StrEnum):
    COMPLETED = "completed"
    PARTIAL = "partial"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"  # congestion or a channel that could not be created
    OPTED_OUT = "opted_out"


class Question(enum.StrEnum):
    CONTACTED = "contacted"
    RESOLVED = "resolved"
    SATISFACTION = "satisfaction"


class CallStep(enum.StrEnum):
    """Where a citizen's call is: set as HOTLINE_STEP by the flow and by the dialplan.

    The hang-up handler and the reconciler read it back to say where a caller left;
    the dialplan renderer writes FALLBACK into the dialplan's globals.
    """

    GREETING = "greeting"
    MENU = "menu"
    TYPE = "type"
    URGENCY = "urgency"
    RECORDING = "recording"
    READBACK = "readback"
    PROGRESS = "progress"
    URGE = "urge"
    QUEUE = "queue"
    FALLBACK = "fallback"  # the dialplan took the message itself (FastAGI down or failed)
    UNKNOWN = "unknown"  # the reconciler found the call with no step recorded
    NO_CALL_ROW = "no_call_row"  # the reconciler found only recordings: FastAGI never saw it

    def describe(self) -> str:
        """The step as a ticket's description says it."""
        return STEP_DESCRIPTIONS.get(self, self.value)

    @classmethod
    def read(cls, value: str | None) -> CallStep:
        """A step as the channel or the store had it; anything else is UNKNOWN."""
        try:
            return cls(value or "")
        except ValueError:
            return cls.UNKNOWN


STEP_DESCRIPTIONS = {
    CallStep.UNKNOWN: "unknown (found by the reconciler)",
    CallStep.NO_CALL_ROW: "no call row: the FastAGI server never saw this call",
}

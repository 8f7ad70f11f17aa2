"""What the IVR asks of a knowledge base, without knowing one (features stand alone).

The call flows offer answers to waiting and self-service callers; the knowledge
base itself (`kb/`) is wired in on the composition floor (`hotline.kb_answers`).
A hotline without one passes `None` and the flows offer nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

CHANNELS = ("queue", "menu", "speech")


@dataclass(frozen=True)
class Answer:
    """One entry as a caller hears it: its title read as a choice, then its answer."""

    entry_id: int
    key: str
    title: str
    answer_zh: str
    answer_en: str | None = None
    category: str | None = None
    score: float | None = None  # how well a spoken question matched it (speech only)

    def text(self, lang: str) -> str:
        """The answer in the caller's language (Chinese when there is no English one)."""
        return self.answer_en if lang == "en" and self.answer_en else self.answer_zh


@dataclass(frozen=True)
class Asker:
    """The call an offer is made on: who called which line, and the call's id."""

    uniqueid: str
    number: str
    did: str


class KnowledgeAnswers(Protocol):
    """The knowledge base as the IVR uses it; every method is safe to call on a live call."""

    async def top(self, did: str) -> list[Answer]:
        """The season's most asked entries for the line, most asked first (may be empty)."""
        ...

    async def search(self, text: str, did: str) -> Answer | None:
        """The best entry for what the caller said, if it clears the threshold."""
        ...

    async def offered(
        self, answer: Answer, channel: str, asker: Asker, query: str | None = None
    ) -> int | None:
        """Record the offer before it is read out; its id (None if it could not be kept)."""
        ...

    async def heard(self, offer_id: int) -> None:
        """The caller heard the answer to its end."""
        ...

    async def answered(self, offer_id: int | None, answer: Answer, asker: Asker) -> str | None:
        """The caller pressed 1: the call's ticket, closed at once as explained
        (source ivr-kb), and the offer accepted with it; the ticket's number."""
        ...

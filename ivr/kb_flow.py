"""Self-service answers from the knowledge base (智能知识库) on a live call.

Three ways in: a caller waiting in the queue presses `kb.offer_key` (app_queue's
exit context sends the call to the FastAGI route `ivr-kb`, or the key is pressed
during the queue's own offer); a `menu` line's self-service key; and, after
type 咨询, the question said in `kb.listen_seconds` and matched over
`kb.threshold`. The caller picks an entry, hears its answer, then presses
1 (answered: the call's ticket is closed at once as explained, source ivr-kb),
2 (back: to the queue, or on a menu line to leave the request as before) or
0 (an operator: back into the queue ahead of others, marked for the agent).
Every offer is recorded before it is read out, so a hang-up loses nothing.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from core.vocabulary import CallStep
from ivr.answers import Answer, Asker, KnowledgeAnswers
from speech.recognition import SpeechModel, recognize
from telephony.agi import AGI
from telephony.menu import Menu, collect_key

if TYPE_CHECKING:
    from ivr.inbound import CitizenCall, InboundFlow

T = TypeVar("T")
Recognizer = Callable[[Path], Awaitable[str]]  # a recording in, the words heard out
AFTER_KEYS = "120"
OPERATOR_PRIORITY = "5"  # app_queue's QUEUE_PRIO: ahead of callers who never left
OPERATOR_MARK = "常见问题转人工"  # the caller name the agent's phone and screen pop show


class Outcome(enum.Enum):
    """How a caller left the knowledge base."""

    ANSWERED = "answered"  # pressed 1: the question is answered
    BACK = "back"  # pressed 2: to the queue (or, on a menu line, to leave the request)
    OPERATOR = "operator"  # pressed 0
    NOTHING = "nothing"  # no choice (or nothing to offer)


def vosk_recognizer(model: SpeechModel) -> Recognizer | None:
    """The hotline's vosk model as a recognizer, off the event loop; None without a model."""
    if model.path is None:
        return None

    async def hear(path: Path) -> str:
        loaded = await asyncio.to_thread(model)
        return await asyncio.to_thread(recognize, loaded, path)

    return hear


def asker(call: CitizenCall) -> Asker:
    return Asker(call.agi.uniqueid, call.caller, call.line.did)


def choices_text(answers: list[Answer], lang: str) -> str:
    """The list read out as one phrase: each title with its key."""
    if lang == "en":
        return " ".join(f"{a.title}: press {i}." for i, a in enumerate(answers, 1))
    return "；".join(f"{a.title}，请按{i}" for i, a in enumerate(answers, 1)) + "。"


class KbFlow:
    """The knowledge-base part of the citizen's call (see the module's docstring)."""

    def __init__(
        self,
        flow: InboundFlow,
        answers: KnowledgeAnswers | None,
        recognizer: Recognizer | None = None,
    ) -> None:
        self.flow = flow
        self.answers = answers
        self.recognizer = recognizer
        self.settings = flow.config.kb

    @property
    def key(self) -> str:
        return self.settings.offer_key

    async def top(self, call: CitizenCall) -> list[Answer]:
        """What may be offered on this line now; nothing when the KB is off or fails."""
        if self.answers is None or not self.settings.enabled:
            return []
        try:
            return (await self.answers.top(call.line.did))[: self.settings.offer_top]
        except Exception:  # a broken knowledge base must never cost the caller the call
            call.agi.log.exception("knowledge base: no offer (top entries failed)")
            return []

    # -- the FastAGI route `ivr-kb`: the key pressed while waiting in the queue ----------
    async def route(self, agi: AGI) -> None:
        """From the queue's exit context; back to the queue (HOTLINE_NEXT) unless answered."""
        did, base = [*agi.script_args, "", ""][:2]
        call = await self.flow.resumed(agi, did, base)
        outcome = await self.offer_top(call, "queue")
        if outcome is Outcome.ANSWERED:
            await self.flow.play(call, "goodbye")
            return
        await self.back_to_queue(call, outcome)

    async def back_to_queue(self, call: CitizenCall, outcome: Outcome) -> None:
        """The dialplan's Queue() again (same queue): 0 goes ahead, named for the agent."""
        await self.flow.step(call, CallStep.QUEUE)
        await self.mark_for_operator(call, outcome)
        await self.flow.play(call, "kb_back_to_queue")
        await call.agi.set_variable("HOTLINE_NEXT", "queue")
        call.queued = True

    async def mark_for_operator(self, call: CitizenCall, outcome: Outcome) -> None:
        """0 after an answer: ahead in the queue, and named so the agent sees why."""
        if outcome is Outcome.OPERATOR:
            await call.agi.set_variable("QUEUE_PRIO", OPERATOR_PRIORITY)
            await call.agi.set_variable("CALLERID(name)", OPERATOR_MARK)
            await call.agi.set_variable("HOTLINE_KB_OPERATOR", "1")

    # -- offering ---------------------------------------------------------------------
    async def offer_top(self, call: CitizenCall, channel: str) -> Outcome:
        """The season's top entries as 按1…按2… (each an offer); the chosen one read out."""
        answers = await self.top(call)
        if not answers:
            return Outcome.NOTHING
        offers = [await self.offered(call, a, channel) for a in answers]
        listing = await self.flow.phrases.path(choices_text(answers, call.lang), call.lang)
        await self.flow.play(call, "kb_intro")
        menu = Menu(
            name="kb_choices",
            prompt=listing,
            keys="".join(str(i) for i in range(1, len(answers) + 1)),
            timeout_ms=self.flow.ivr.key_timeout_ms,
            tries=self.flow.ivr.menu_retries,
            invalid_prompt=self.flow.prompts.path("invalid_key", call.lang),
        )
        key = (await collect_key(call.agi, menu)).key
        if key is None:
            return Outcome.NOTHING
        return await self.hear(call, answers[int(key) - 1], offers[int(key) - 1])

    async def offered(
        self, call: CitizenCall, answer: Answer, channel: str, query: str | None = None
    ) -> int | None:
        assert self.answers is not None
        return await self.safely(call, self.answers.offered(answer, channel, asker(call), query))

    async def hear(self, call: CitizenCall, answer: Answer, offer: int | None) -> Outcome:
        """Read the answer to its end, then take 1 answered / 2 back / 0 operator."""
        assert self.answers is not None
        await call.agi.set_variable("HOTLINE_KB_ENTRY", answer.key)
        spoken = await self.flow.phrases.path(answer.text(call.lang), call.lang)
        await call.agi.stream_file(spoken)  # no key cuts it short: "heard" means heard
        if offer is not None:
            await self.safely(call, self.answers.heard(offer))
        key = await self.flow.ask(call, "kb_after_answer", AFTER_KEYS)
        if key == "1":
            number = await self.safely(call, self.answers.answered(offer, answer, asker(call)))
            if number:
                await call.agi.set_variable("HOTLINE_TICKET", number)
            await self.flow.play(call, "kb_thanks")
            return Outcome.ANSWERED
        return {"2": Outcome.BACK, "0": Outcome.OPERATOR}.get(key or "", Outcome.NOTHING)

    async def safely(self, call: CitizenCall, work: Awaitable[T]) -> T | None:
        """A store write of the knowledge base; its failure is logged, the call goes on
        (the call's own ticket is still made by the hang-up handler)."""
        try:
            return await work
        except Exception:
            call.agi.log.exception("knowledge base: a write failed")
            return None

    # -- the spoken question (after type 咨询) -------------------------------------------
    async def listen(self, call: CitizenCall) -> Outcome:
        """Ask for the question in a few seconds; offer a match over the threshold."""
        if self.recognizer is None or not await self.top(call):  # nothing the line could offer
            return Outcome.NOTHING
        assert self.answers is not None
        path = call.base + "-question"
        await self.flow.play(call, "kb_say_question")
        try:
            await call.agi.record_file(
                path, "wav", "#", self.settings.listen_seconds * 1000, beep=True, silence_s=2
            )
            said = await self.recognizer(Path(path + ".wav"))
            found = await self.answers.search(said, call.line.did) if said.strip() else None
        except Exception:
            call.agi.log.exception("knowledge base: the spoken question was not matched")
            return Outcome.NOTHING
        call.agi.log.info(
            "knowledge base: heard %d characters, match %s", len(said), found and found.key
        )
        if found is None:
            return Outcome.NOTHING
        offer = await self.offered(call, found, "speech", query=said)
        title = await self.flow.phrases.path(found.title, call.lang)
        await self.flow.play(call, "kb_did_you_mean")
        digit, _ = await call.agi.stream_file(title, "1")
        if digit != "1" and await self.flow.ask(call, "kb_press_1_to_hear", "1", tries=1) != "1":
            return Outcome.NOTHING
        return await self.hear(call, found, offer)

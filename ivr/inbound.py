"""The citizen's call: greet, menu, and the four services, read as the call goes.

The dialplan has already answered and started MixMonitor (so the whole call is
recorded from its first second, whatever happens here). Each step sets
HOTLINE_STEP, so the hang-up handler knows where a caller left; a request
recording sets HOTLINE_REQUEST_REC, a created ticket HOTLINE_TICKET.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from core.config import HotlineConfig, LineConfig
from core.phone_numbers import for_log, from_caller_id
from core.vocabulary import CallStep, RequestType, Urgency
from ivr.answers import KnowledgeAnswers
from ivr.kb_flow import KbFlow, Outcome, Recognizer
from ivr.recordings import WAV_HEADER, file_size
from ivr.store import CallStart, IvrStore, TicketRequest, TicketView, sip_call_id_of
from ivr.verification import CODE_DIGITS, code_matches, ticket_code
from prompts.build import PromptLibrary
from prompts.phrases import PhraseCache
from telephony.agi import AGI, AGIHangup, AGIWriteError
from telephony.menu import Menu, collect_key

MENU_KEYS = "1230"
ENGLISH_KEY = "9"
SELF_SERVICE_KEY = "4"  # a menu line's 常见问题 key, offered when the line has answers
REQUEST_TYPES = {
    "1": RequestType.CONSULTATION,
    "2": RequestType.HELP,
    "3": RequestType.COMPLAINT,
    "4": RequestType.REPORT,
    "5": RequestType.SUGGESTION,
}
URGENCIES = {"1": Urgency.EMERGENCY, "2": Urgency.DAILY_LIFE, "3": Urgency.COMPLEX}


@dataclass
class CitizenCall:
    """What the inbound flow knows about the citizen's call in progress."""

    agi: AGI
    line: LineConfig
    base: str  # recording path without extension: <dir>/<uniqueid>_<did>_<caller>
    lang: str
    request_type: RequestType | None = None
    urgency: Urgency = Urgency.DAILY_LIFE
    requests: list[str] = field(default_factory=list)
    queued: bool = False  # the dialplan's Queue() takes over when the route returns

    @property
    def caller(self) -> str:
        """The CallerID as a phone number (digits, bounded), or 'unknown'."""
        return from_caller_id(self.agi.caller_number)


class InboundFlow:
    """The FastAGI route `ivr`: one citizen call from greeting to goodbye."""

    def __init__(
        self,
        config: HotlineConfig,
        prompts: PromptLibrary,
        phrases: PhraseCache,
        store: IvrStore,
        answers: KnowledgeAnswers | None = None,
        recognizer: Recognizer | None = None,
    ) -> None:
        self.config = config
        self.ivr = config.ivr
        self.prompts = prompts
        self.phrases = phrases
        self.store = store
        self.agents = config.agents
        self.lines = {line.did: line for line in config.lines}
        # $ivr.ticket_code_secret_env when set: every FastAGI host must give a ticket one code
        self.code_secret = config.ticket_code_secret()
        # 智能知识库: offered in the queue, on a menu line's key and after type 咨询
        self.kb = KbFlow(self, answers, recognizer)

    async def __call__(self, agi: AGI) -> None:
        call, call_row = await self.begin(agi)
        try:
            if call.line.answer == "agents":
                await self.answer_with_people(call)
            else:
                key = await self.greet(call)
                await self.serve(call, key)
                if not call.queued:  # the queue's Queue() follows this route: no goodbye yet
                    await self.play(call, "goodbye")
        finally:
            await call_row

    async def answer_with_people(self, call: CitizenCall) -> None:
        """GB/T 33358: a short greeting, then a person; a ticket's progress is one key away."""
        key = await self.greet_briefly(call)
        if key == self.agents.progress_key:
            await self.progress(call)
            await self.play(call, "goodbye")
        elif not call.line.staffed(datetime.now(self.config.tz).time()):
            await self.take_message(call, "message_after_hours", reason="after_hours")
        else:
            await self.join_queue(call)

    async def after_queue(self, agi: AGI) -> None:
        """The FastAGI route `ivr-after-queue`: nobody answered, so the message is taken.

        The dialplan comes back here when the caller pressed the message key
        while waiting, when no agent could take the call (JOINEMPTY,
        LEAVEEMPTY) or when the wait ran out (TIMEOUT): the request is
        recorded, becomes a ticket and a callback task, and its number is read back.
        """
        did, base, status, left_by = [*agi.script_args, "", "", "", ""][:4]
        call = await self.resumed(agi, did, base)
        agi.log.info("queue ended: %s%s", status or "-", " (message key)" if left_by else "")
        if left_by == "key":
            await self.take_message(call, "message_by_key", reason="message_key")
        elif status == "TIMEOUT":
            await self.take_message(call, "message_wait_too_long", reason="wait_too_long")
        else:
            await self.take_message(call, "message_no_agents", reason="no_agents")

    async def resumed(self, agi: AGI, did: str, base: str) -> CitizenCall:
        """A call the dialplan hands back after the queue, in the language it chose."""
        line = self.lines.get(did) or self.config.lines[0]
        lang = await agi.get_variable("HOTLINE_LANG") or ""
        languages = self.config.prompts.languages
        return CitizenCall(agi, line, base, lang if lang in languages else languages[0])

    # -- building blocks --------------------------------------------------------------
    async def begin(self, agi: AGI) -> tuple[CitizenCall, asyncio.Task[None]]:
        """The call, and the writing of its row, which the greeting does not wait for.

        The dialplan hands over the line, the recording's base name and the
        linkedid as the AGI's arguments (`ivr?key=…,DID,BASE,LINKEDID`), so the
        greeting is the call's first AGI command; a dialplan without them is
        asked. The row is written meanwhile: every later write of the call
        makes it too (upsert), so nothing waits on a slow store before the
        citizen hears the hotline.
        """
        args = agi.script_args
        sip_call_id = sip_call_id_of(args[3] if len(args) >= 4 else "")
        if len(args) >= 3:
            did, base, linkedid = args[0] or agi.dialed, args[1], args[2] or None
        else:
            did = await agi.get_variable("HOTLINE_DID") or agi.dialed
            base = await agi.get_variable("HOTLINE_BASE") or ""
            linkedid = await agi.get_full_variable("${CHANNEL(linkedid)}")
        line = self.lines.get(did) or self.config.lines[0]
        call = CitizenCall(agi, line, base, self.config.prompts.languages[0])
        recording = base + ".wav" if base else None
        start = CallStart(
            agi.uniqueid, call.caller, line.did, recording, linkedid, sip_call_id=sip_call_id
        )
        call_row = asyncio.create_task(self.store.call_started(start))
        agi.log.info("citizen %s on line %s", for_log(call.caller), line.did)
        return call, call_row

    async def step(self, call: CitizenCall, step: CallStep) -> None:
        await call.agi.set_variable("HOTLINE_STEP", step.value)

    async def play(self, call: CitizenCall, prompt: str, keys: str = "") -> str | None:
        digit, _ = await call.agi.stream_file(self.prompts.path(prompt, call.lang), keys)
        return digit

    async def ask(
        self, call: CitizenCall, prompt: str, keys: str, tries: int | None = None
    ) -> str | None:
        """Play a menu and take one valid key; timeouts and wrong keys repeat it, then None."""
        menu = Menu(
            name=prompt,
            prompt=self.prompts.path(prompt, call.lang),
            keys=keys,
            timeout_ms=self.ivr.key_timeout_ms,
            tries=tries or self.ivr.menu_retries,
            invalid_prompt=self.prompts.path("invalid_key", call.lang),
        )
        return (await collect_key(call.agi, menu)).key

    async def say_number(self, call: CitizenCall, number: str) -> None:
        """The number digit by digit, as one Playback of the joined digit prompts.

        One AGI round trip for the whole number instead of one per digit (the
        read-back of a ticket number and its code was 15 of a call's 45 commands).
        """
        prompts = "&".join(self.prompts.path(f"digit_{digit}", call.lang) for digit in number)
        if prompts and await call.agi.exec("Playback", prompts) < 0:
            raise AGIHangup("the caller hung up during the read-back")

    # -- the call ---------------------------------------------------------------------
    async def greet_briefly(self, call: CitizenCall) -> str | None:
        """The line's greeting and the progress offer (at most 8 s): 9 English, 2 progress."""
        await self.step(call, CallStep.GREETING)
        keys = self.agents.progress_key + ENGLISH_KEY
        for prompt in (call.line.greeting, "progress_offer"):
            key = await self.play(call, prompt, keys)
            if key == ENGLISH_KEY and "en" in self.config.prompts.languages:
                call.lang = "en"
                await call.agi.set_variable("CHANNEL(language)", "en")
            elif key is not None:
                return key
        return None

    async def join_queue(self, call: CitizenCall, offer_kb: bool = True) -> None:
        """Into the agents' queue (the dialplan's Queue() runs once this route returns).

        The message key is offered, and 常见问题 (`kb.offer_key`) when the line has
        answers: pressed now, the answers come at once; pressed while waiting, the
        queue's exit context brings the call to the route `ivr-kb`.
        """
        await self.step(call, CallStep.QUEUE)
        queue = self.config.language_queue(call.line, call.lang)
        kb = offer_kb and self.kb.key != self.agents.message_key and bool(await self.kb.top(call))
        keys = self.agents.message_key + (self.kb.key if kb else "")
        key = await self.play(call, "queue_message_offer", keys)
        if key is None and kb:
            key = await self.play(call, "kb_queue_offer", keys)
        if key == self.agents.message_key:
            await self.take_message(call, "message_by_key", reason="message_key")
            return
        if key is not None:  # the knowledge base's key
            outcome = await self.kb.offer_top(call, "queue")
            if outcome is Outcome.ANSWERED:
                await self.play(call, "goodbye")
                return
            await self.kb.mark_for_operator(call, outcome)
            await self.step(call, CallStep.QUEUE)
        await call.agi.set_variable("HOTLINE_LANG", call.lang)  # the message after the queue
        # app_queue says the position and the wait in the caller's language (sounds/zh/digits)
        await call.agi.set_variable("CHANNEL(language)", call.lang)
        await call.agi.set_variable("HOTLINE_QUEUE", queue.name)
        await call.agi.set_variable("HOTLINE_QUEUE_WAIT", str(queue.max_wait_seconds))
        await call.agi.set_variable("HOTLINE_NEXT", "queue")
        call.queued = True

    async def take_message(self, call: CitizenCall, intro: str, reason: str) -> None:
        """Record the request instead of a conversation: a ticket and a callback task."""
        await self.record_and_ticket(call, source=f"queue-{reason}", intro=intro, callback=reason)
        await self.play(call, "goodbye")

    async def greet(self, call: CitizenCall) -> str | None:
        """The line's greeting and the English offer; a menu key already answers the menu."""
        await self.step(call, CallStep.GREETING)
        for prompt in (call.line.greeting, "english_offer"):
            key = await self.play(call, prompt, MENU_KEYS + ENGLISH_KEY)
            if key == ENGLISH_KEY and "en" in self.config.prompts.languages:
                call.lang = "en"
                await call.agi.set_variable("CHANNEL(language)", "en")
                return None
            if key is not None and key in MENU_KEYS:
                return key
        return None

    async def serve(self, call: CitizenCall, key: str | None) -> None:
        await self.step(call, CallStep.MENU)
        if key is None:
            kb = bool(await self.kb.top(call))
            menu, keys = (
                ("main_menu_kb", MENU_KEYS + SELF_SERVICE_KEY) if kb else ("main_menu", MENU_KEYS)
            )
            key = await self.ask(call, menu, keys)
        services = {
            "1": self.new_request,
            "2": self.progress,
            "3": self.urge,
            "0": self.agent,
            SELF_SERVICE_KEY: self.self_service,
        }
        if key is None:  # nobody chose: never end a call without hearing the citizen
            await self.record_and_ticket(call, source="ivr-menu-timeout")
            return
        await services[key](call)

    async def new_request(self, call: CitizenCall) -> None:
        await self.step(call, CallStep.TYPE)
        kind = await self.ask(call, "request_type_menu", "".join(REQUEST_TYPES), tries=1)
        call.request_type = REQUEST_TYPES.get(kind or "")
        consultation = call.request_type is RequestType.CONSULTATION
        if consultation and await self.after_kb(call, await self.kb.listen(call)):
            return
        await self.step(call, CallStep.URGENCY)
        urgency = await self.ask(call, "urgency_menu", "".join(URGENCIES), tries=1)
        call.urgency = URGENCIES.get(urgency or "", Urgency.DAILY_LIFE)
        await self.record_and_ticket(call)

    async def record_and_ticket(
        self,
        call: CitizenCall,
        source: str = "ivr",
        intro: str = "record_request",
        callback: str | None = None,
    ) -> None:
        await self.step(call, CallStep.RECORDING)
        path = call.base + "-request"
        await call.agi.set_variable("HOTLINE_REQUEST_REC", path + ".wav")
        call.requests.append(path + ".wav")
        await self.play(call, intro)
        written = await self.record_request(call, path)
        number = await self.store.ticket_for_call(
            TicketRequest(
                call.agi.uniqueid,
                call.caller,
                call.line.did,
                path + ".wav" if written else None,
                call.request_type,
                call.urgency,
                source,
                callback=callback,
            )
        )
        await self.read_back(call, number)

    async def record_request(self, call: CitizenCall, path: str) -> bool:
        """RECORD FILE; False (logged as a write error, not a hang-up) when nothing was written."""
        try:
            _key, endpos = await call.agi.record_file(
                path,
                "wav",
                "#",
                self.ivr.record_max_seconds * 1000,
                beep=True,
                silence_s=self.ivr.record_silence_seconds,
            )
        except AGIWriteError as exc:
            call.agi.log.error("request recording could not be written (%s); disk full?", exc)
            return False
        size = file_size(path + ".wav")
        # Asterisk's buffered writes fail silently on a full disk: not even a whole WAV header
        if size < WAV_HEADER or (endpos > 0 and size == WAV_HEADER):
            call.agi.log.error(
                "request recording %s.wav could not be written (%d bytes on disk, %d samples "
                "recorded); disk full?",
                path,
                size,
                endpos,
            )
            return False
        return True

    async def read_back(self, call: CitizenCall, number: str | None) -> None:
        await self.step(call, CallStep.READBACK)
        if number is None:
            await self.play(call, "request_recorded_no_number")
            return
        await call.agi.set_variable("HOTLINE_TICKET", number)
        for _ in range(1 + self.ivr.readback_repeats):
            await self.play(call, "ticket_created")
            await self.say_number(call, number)
            await self.play(call, "verification_code_is")
            await self.say_number(call, ticket_code(self.code_secret, number))
            if await self.ask(call, "repeat_ticket", "1", tries=1) != "1":
                return

    async def progress(self, call: CitizenCall) -> None:
        await self.step(call, CallStep.PROGRESS)
        for _ in range(self.ivr.menu_retries):
            digits = await call.agi.get_data(
                self.prompts.path("enter_ticket_number", call.lang),
                self.ivr.ticket_digits_timeout_ms,
                14,
            )
            ticket = await self.store.lookup(digits) if digits else None
            if ticket is None:
                call.agi.log.info("progress: unknown ticket number %r", digits)
                await self.play(call, "unknown_ticket")
                continue
            if await self.may_hear(call, ticket):
                await self.speak_ticket(call, ticket)
                return
            await self.play(call, "verification_failed")
        await self.record_and_ticket(call, source="ivr-progress-fallback")

    async def may_hear(self, call: CitizenCall, ticket: TicketView) -> bool:
        """The ticket's own caller may; anyone else only with its verification code."""
        if call.caller != "unknown" and call.caller == ticket.caller:
            await call.agi.set_variable("HOTLINE_VERIFIED", "caller")
            return True
        keyed = await call.agi.get_data(
            self.prompts.path("enter_verification_code", call.lang),
            self.ivr.ticket_digits_timeout_ms,
            CODE_DIGITS,
        )
        verified = code_matches(self.code_secret, ticket.number, keyed)
        await call.agi.set_variable("HOTLINE_VERIFIED", "code" if verified else "refused")
        if not verified:
            call.agi.log.info(
                "progress: ticket %s not spoken: wrong verification code", ticket.number
            )
        return verified

    async def speak_ticket(self, call: CitizenCall, ticket: TicketView) -> None:
        await call.agi.set_variable("HOTLINE_SPOKEN_STATUS", ticket.status.value)
        await self.play(call, "ticket_status_is")
        await self.play(call, f"status_{ticket.status.value}")
        await self.play(call, "handling_unit_is")
        if ticket.unit:
            await call.agi.stream_file(await self.phrases.path(ticket.unit, call.lang))
        else:
            await self.play(call, "unit_not_assigned")
        if ticket.due_at is not None:
            local = ticket.due_at.astimezone(self.config.tz)
            text = (
                f"{local.month}月{local.day}日{local.hour}点"
                if call.lang == "zh"
                else local.strftime("%B %d, %H:00")
            )
            await self.play(call, "due_date_is")
            await call.agi.stream_file(await self.phrases.path(text, call.lang))

    async def urge(self, call: CitizenCall) -> None:
        await self.step(call, CallStep.URGE)
        number = await self.store.urge_latest(call.caller)
        if number is None:
            await self.play(call, "no_open_ticket")
            await self.record_and_ticket(call, source="ivr-urge-no-ticket")
            return
        await call.agi.set_variable("HOTLINE_URGED", number)
        await self.play(call, "urge_passed_on")
        await self.say_number(call, number)

    async def agent(self, call: CitizenCall) -> None:
        """Menu key 0: the same queue as a line answered by people."""
        await self.join_queue(call)

    async def self_service(self, call: CitizenCall) -> None:
        """A menu line's 常见问题 key: the top answers; 2 leaves the request as key 1 does."""
        outcome = await self.kb.offer_top(call, "menu")
        if not await self.after_kb(call, outcome):
            await self.record_and_ticket(call, source="ivr-kb-back")

    async def after_kb(self, call: CitizenCall, outcome: Outcome) -> bool:
        """Whether the knowledge base ended the call's business (answered, or to an operator);
        otherwise the menu's flow goes on as before."""
        if outcome is Outcome.ANSWERED:
            return True
        if outcome is Outcome.OPERATOR:
            await self.kb.mark_for_operator(call, outcome)
            await self.join_queue(call, offer_kb=False)
            return True
        return False

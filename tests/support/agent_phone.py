"""A scripted agent's desk phone for the SIP front: registers, answers at once, hangs up.

A thread on its own UDP address (a `SipPeer`'s socket): every new INVITE is
answered 200 with an audio answer (PCMU), and the phone hangs up itself
`talk_seconds` later with a BYE along the call's Record-Route set, as an agent
hangs up a call that went quiet (a killed node sends no BYE). A BYE from the
far end is answered 200. The phone writes down each call it answered and every
INVITE that reached it while it was already in a call (the front must never
let one through).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass

from tests.support.sip_udp import SipMessage, SipPeer, token


@dataclass
class PhoneCall:
    call_id: str
    invite: SipMessage
    tag: str
    answered: float  # monotonic
    ended: float | None = None


class AutoAnswerPhone:
    """Registers `user` at the front and answers every call in a thread until `close`."""

    def __init__(
        self,
        address: str,
        front: tuple[str, int],
        user: str,
        talk_seconds: float,
        port: int = 5060,
        password: str | None = None,
    ) -> None:
        self.peer = SipPeer(address, front, port)
        self.password = password  # the front challenges every REGISTER
        self.user, self.talk_seconds = user, talk_seconds
        self.calls: dict[str, PhoneCall] = {}
        self.second_calls: list[str] = []  # INVITEs that came while a call was up
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"phone-{user}", daemon=True)

    def register(self, within: float = 60) -> None:
        """REGISTER until the front says 200 (it may still be starting)."""
        deadline = time.monotonic() + within
        while True:
            try:
                reply = self.peer.register(self.user, timeout=1, password=self.password)
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
                continue
            assert reply.status == 200, reply.first
            return

    def start(self) -> None:
        self.register()
        self.thread.start()

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.peer.close()

    def answered(self) -> list[PhoneCall]:
        with self.lock:
            return list(self.calls.values())

    def _busy(self) -> bool:
        return any(call.ended is None for call in self.calls.values())

    # -- the phone's loop ----------------------------------------------------------------
    def _run(self) -> None:
        sock = self.peer.sock
        sock.settimeout(0.2)
        while not self.stopping.is_set():
            self._hang_up_due()
            try:
                data, _ = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            message = SipMessage.parse(data)
            if message.status is not None:
                continue  # replies to our BYEs
            method = message.first.split(" ", 1)[0]
            if method == "INVITE":
                self._invited(message)
            elif method == "BYE":
                self._reply(message, 200, "OK")
                with self.lock:
                    call = self.calls.get(message.header("Call-ID"))
                    if call is not None and call.ended is None:
                        call.ended = time.monotonic()
                        self._ended(call)
            elif method == "CANCEL" or method in ("OPTIONS", "NOTIFY", "INFO", "UPDATE"):
                self._reply(message, 200, "OK")

    def _invited(self, invite: SipMessage) -> None:
        call_id = invite.header("Call-ID")
        with self.lock:
            known = self.calls.get(call_id)
            if known is None and self._busy():
                self.second_calls.append(call_id)
            if known is None:
                known = self.calls[call_id] = PhoneCall(call_id, invite, token(), time.monotonic())
                self._answered(known)
        self._reply(invite, 200, "OK", known.tag, sdp=self._sdp(known))  # a repeat: the same 200

    def _answered(self, call: PhoneCall) -> None:
        """A new call was answered (under the lock): a phone with media starts it here."""

    def _ended(self, call: PhoneCall) -> None:
        """A call ended, either side hanging up (under the lock): its media stops here."""

    def _hang_up_due(self) -> None:
        now = time.monotonic()
        with self.lock:
            due = [
                c
                for c in self.calls.values()
                if c.ended is None and now - c.answered >= self.talk_seconds
            ]
            for call in due:
                call.ended = now
                self._ended(call)
        for call in due:
            self._bye(call)

    # -- what the phone writes -------------------------------------------------------------
    def _reply(
        self, request: SipMessage, code: int, reason: str, tag: str = "", sdp: str = ""
    ) -> None:
        to = request.header("To")
        if tag and ";tag=" not in to:
            to = f"{to};tag={tag}"
        body = sdp
        lines = [f"SIP/2.0 {code} {reason}"]
        lines += [f"Via: {via}" for via in request.all("Via")]
        lines += [f"Record-Route: {rr}" for rr in request.all("Record-Route")]
        lines += [
            f"From: {request.header('From')}",
            f"To: {to}",
            f"Call-ID: {request.header('Call-ID')}",
            f"CSeq: {request.header('CSeq')}",
            f"Contact: <sip:{self.user}@{self.peer.address}:{self.peer.port}>",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines += [f"Content-Length: {len(body.encode())}", "", body]
        self._send("\r\n".join(lines))

    def _sdp(self, call: PhoneCall) -> str:
        """The answer's audio: PCMU on a port nobody reads (an agent here says nothing)."""
        address = self.peer.address
        return (
            f"v=0\r\no=agent 1 1 IN IP4 {address}\r\ns=-\r\nc=IN IP4 {address}\r\nt=0 0\r\n"
            "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
        )

    def _bye(self, call: PhoneCall) -> None:
        """Hang up as the called party: to the caller's Contact, along the Record-Route set."""
        invite = call.invite
        target = invite.header("Contact").split("<", 1)[-1].split(">", 1)[0]
        lines = [
            f"BYE {target} SIP/2.0",
            f"Via: {self.peer.via()}",
            "Max-Forwards: 70",
        ]
        lines += [f"Route: {rr}" for rr in invite.all("Record-Route")]
        lines += [
            f"From: {invite.header('To')};tag={call.tag}",
            f"To: {invite.header('From')}",
            f"Call-ID: {call.call_id}",
            "CSeq: 1 BYE",
            "Content-Length: 0",
            "",
            "",
        ]
        self._send("\r\n".join(lines))

    def _send(self, text: str) -> None:
        with contextlib.suppress(OSError):
            self.peer.sock.sendto(text.encode(), self.peer.front)

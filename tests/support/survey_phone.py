"""A citizen's phone for the robot's survey calls through the SIP front: it answers and presses keys.

The scripted desk phone (`tests.support.agent_phone`) registers its number at
Kamailio and answers every call; this one also has media. Its answer offers
PCMU and telephone-events on an RTP socket of its own, and a thread per call
sends 20 ms of silence at a time toward the node's RTP port from the offer,
and each key due (`presses`: seconds after the answer, key) as RFC 4733
events, as a hardware phone does (tools.softphone.dtmf's packets). The call
ends when the node hangs up (BYE) or, a dead node's call, `talk_seconds` after
the answer with the phone's own BYE.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import threading
import time
from dataclasses import dataclass

from tests.support.agent_phone import AutoAnswerPhone, PhoneCall
from tools.softphone.dtmf import (
    END_PACKETS,
    EVENT_PACKETS,
    SAMPLES_PER_PACKET,
    event_payload,
    rtp_header,
)

PCMU, SILENCE = 0, b"\xff" * SAMPLES_PER_PACKET
TICK = SAMPLES_PER_PACKET / 8000  # 20 ms


@dataclass(frozen=True)
class Offer:
    """Where the node wants our audio, and its telephone-event payload type."""

    address: str
    port: int
    event_type: int

    @classmethod
    def parse(cls, sdp: str) -> Offer:
        address = re.search(r"^c=IN IP4 (\S+)", sdp, re.M)
        port = re.search(r"^m=audio (\d+) ", sdp, re.M)
        event = re.search(r"^a=rtpmap:(\d+) telephone-event/8000", sdp, re.M)
        if not (address and port):
            raise ValueError(f"an offer without audio: {sdp!r}")
        return cls(address[1], int(port[1]), int(event[1]) if event else 101)


class CallMedia:
    """One call's RTP: silence, and the keys at their times, until stopped."""

    def __init__(self, address: str, offer: Offer, presses: list[tuple[float, str]]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 0))
        self.port = int(self.sock.getsockname()[1])
        self.offer, self.presses = offer, sorted(presses)
        self.ssrc, self.sequence, self.timestamp = random.getrandbits(32), 0, 0
        self.stopped = threading.Event()
        self.pressed: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"rtp-{self.port}")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(2)
        self.sock.close()

    def _send(self, payload_type: int, marker: bool, timestamp: int, payload: bytes) -> None:
        header = rtp_header(payload_type, marker, self.sequence, timestamp, self.ssrc)
        with contextlib.suppress(OSError):  # a dead node: nothing listens any more
            self.sock.sendto(header + payload, (self.offer.address, self.offer.port))
        self.sequence += 1

    def _run(self) -> None:
        began = time.monotonic()
        due = list(self.presses)
        while not self.stopped.wait(TICK):
            if due and time.monotonic() - began >= due[0][0]:
                self._press(due.pop(0)[1])
                continue
            self._send(PCMU, False, self.timestamp, SILENCE)
            self.timestamp += SAMPLES_PER_PACKET

    def _press(self, key: str) -> None:
        """One key: event packets with one timestamp, a marker first, three end packets."""
        start = self.timestamp
        for index in range(EVENT_PACKETS + END_PACKETS):
            duration = SAMPLES_PER_PACKET * min(index + 1, EVENT_PACKETS)
            payload = event_payload(key, index >= EVENT_PACKETS, duration)
            self._send(self.offer.event_type, index == 0, start, payload)
            if self.stopped.wait(TICK):
                return
        self.timestamp = start + SAMPLES_PER_PACKET * EVENT_PACKETS
        self.pressed.append(key)


class SurveyPhone(AutoAnswerPhone):
    """A citizen's number registered at the front; each call answered, its keys pressed."""

    def __init__(
        self,
        address: str,
        port: int,
        front: tuple[str, int],
        number: str,
        presses: list[tuple[float, str]],
        password: str,
        talk_seconds: float = 90.0,
    ) -> None:
        super().__init__(address, front, number, talk_seconds, port=port, password=password)
        self.presses = presses
        self.media: dict[str, CallMedia] = {}

    def _answered(self, call: PhoneCall) -> None:
        media = self.media[call.call_id] = CallMedia(
            self.peer.address, Offer.parse(call.invite.body), self.presses
        )
        media.start()

    def _ended(self, call: PhoneCall) -> None:
        self.media[call.call_id].stopped.set()

    def _sdp(self, call: PhoneCall) -> str:
        media, address = self.media[call.call_id], self.peer.address
        event = media.offer.event_type
        return (
            f"v=0\r\no=citizen 1 1 IN IP4 {address}\r\ns=-\r\nc=IN IP4 {address}\r\nt=0 0\r\n"
            f"m=audio {media.port} RTP/AVP {PCMU} {event}\r\na=rtpmap:0 PCMU/8000\r\n"
            f"a=rtpmap:{event} telephone-event/8000\r\na=fmtp:{event} 0-16\r\n"
            "a=ptime:20\r\na=sendrecv\r\n"
        )

    def pressed(self) -> dict[str, list[str]]:
        """The keys each call got, by Call-ID."""
        return {call_id: list(media.pressed) for call_id, media in self.media.items()}

    def close(self) -> None:
        super().close()
        for media in self.media.values():
            media.stop()

"""RFC 4733 telephone-events for pyVoIP 1.6, which can receive DTMF but not send it.

pyVoIP's RTP transmitter is one thread sending a 20 ms audio packet per tick.
`DtmfRTPClient` keeps that loop and, when a key is queued, sends the key's
event packets in those ticks instead of audio (same SSRC, continuing sequence
numbers, one timestamp for the whole event, a marker on the first packet and
three end packets), as a hardware phone does. Asterisk then reports the key
with `dtmf_mode=auto` or `rfc4733`.
"""

from __future__ import annotations

import contextlib
import queue
import struct
import time

from pyVoIP import RTP

EVENT_CODES = {
    **{str(d): d for d in range(10)},
    "*": 10,
    "#": 11,
    "A": 12,
    "B": 13,
    "C": 14,
    "D": 15,
}
SAMPLES_PER_PACKET = 160  # 20 ms at 8 kHz
EVENT_PACKETS = 8  # 160 ms key press
END_PACKETS = 3
VOLUME = 10  # -10 dBm0


def rtp_header(payload_type: int, marker: bool, sequence: int, timestamp: int, ssrc: int) -> bytes:
    return struct.pack(
        "!BBHII",
        0x80,
        (0x80 if marker else 0) | payload_type,
        sequence & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc,
    )


def event_payload(key: str, end: bool, duration: int) -> bytes:
    return struct.pack("!BBH", EVENT_CODES[key], (0x80 if end else 0) | VOLUME, duration)


class DtmfRTPClient(RTP.RTPClient):
    """pyVoIP's RTP client plus `send_dtmf`."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.keys: queue.Queue[str] = queue.Queue()
        self.event_type = next(
            (pt for pt, kind in self.assoc.items() if kind == RTP.PayloadType.EVENT), 101
        )

    def send_dtmf(self, keys: str) -> None:
        """Queue keys to be sent as telephone-events, in order."""
        for key in keys:
            if key.upper() not in EVENT_CODES:
                raise ValueError(f"not a DTMF key: {key!r}")
            self.keys.put(key.upper())

    def _send(self, packet: bytes) -> None:
        with contextlib.suppress(OSError):  # the call is ending; the RTP socket is gone
            self.sout.sendto(packet, (self.outIP, self.outPort))
        self.outSequence = (self.outSequence + 1) & 0xFFFF

    def _tick(self, started: int) -> None:
        delay = SAMPLES_PER_PACKET / self.preference.rate
        elapsed = (time.monotonic_ns() - started) / 1e9
        time.sleep(max(0.0, delay - elapsed))

    def _send_audio(self) -> None:
        payload = self.encode_packet(self.pmout.read())
        self._send(
            rtp_header(
                int(self.preference), False, self.outSequence, self.outTimestamp, self.outSSRC
            )
            + payload
        )
        self.outTimestamp = (self.outTimestamp + len(payload)) & 0xFFFFFFFF

    def _send_event(self, key: str) -> None:
        start = self.outTimestamp
        for index in range(EVENT_PACKETS + END_PACKETS):
            tick = time.monotonic_ns()
            end = index >= EVENT_PACKETS
            duration = SAMPLES_PER_PACKET * min(index + 1, EVENT_PACKETS)
            header = rtp_header(self.event_type, index == 0, self.outSequence, start, self.outSSRC)
            self._send(header + event_payload(key, end, duration))
            self._tick(tick)
        self.outTimestamp = (start + SAMPLES_PER_PACKET * EVENT_PACKETS) & 0xFFFFFFFF

    def trans(self) -> None:
        while self.NSD:
            tick = time.monotonic_ns()
            try:
                key = self.keys.get_nowait()
            except queue.Empty:
                self._send_audio()
                self._tick(tick)
                continue
            self._send_event(key)


def install() -> None:
    """Make pyVoIP build every call's RTP client as a DtmfRTPClient."""
    RTP.RTPClient = DtmfRTPClient  # pyVoIP looks the class up at call time

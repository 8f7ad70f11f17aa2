"""The SIPp citizen's media: one pcap of RTP from one source, every key and the voice in order.

SIPp's `play_pcap_audio` replays a pcap's packets as they are: it does not
renumber their RTP sequence numbers or timestamps. The pcaps sip-tester ships
were each cut from one capture, so their timestamps follow the digit (key 1 at
13280, key 2 at 23200, key 3 at 31040, ...) and g711a.pcap has another SSRC and
its own numbering. Asterisk drops an RFC 4733 event whose timestamp is not
after the last event it ended, so keys 1, 3, 2 played from those pcaps lose the
2: the urgency menu waits out its timeout (the default urgency, daily life, is
what 2 would have chosen, so the ticket looked right), every later step runs
some 8 s late, the voice is over before the recording starts and the `#` meant
to end it falls on the recording's beep. RECORD FILE takes a key during its
beep as the end and returns before it creates the file; `Record` ignores it,
then waits its maximum for audio that no longer comes (a 44-byte file).

This module writes the whole citizen instead, as one phone would send it: one
SSRC, sequence numbers that never go back, timestamps that follow the clock,
nothing sent between talk spurts (silence suppression: a silent gap would count
toward the recording's silence detection before the citizen speaks), keys as
RFC 4733 events, the voice as PCMA from the speech sample sip-tester ships.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

RATE = 8000  # samples per second (PCMA and telephone-event)
PTIME_MS = 20
PCMA = 8  # the RTP payload types the scenario's SDP offers
EVENT_PT = 101
EVENT_MS = 160  # how long each key is held
VOLUME = 10  # of the telephone-event (-10 dBm0)
EVENT_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
SSRC = 0x12345001
FIRST_SEQ = 1000
FIRST_TS = 8000  # not 0: Asterisk takes a key whose timestamp is not after the last as old
ADDRESS = bytes([127, 0, 0, 1])
PORTS = (6000, 6000)  # SIPp puts the call's own media ports in their place


@dataclass(frozen=True)
class Step:
    """Wait `after_ms` (from the end of the previous step), then press `key` or speak."""

    after_ms: int
    key: str = ""  # a DTMF key, or "" for the voice


# the citizen of bench.ivr_capacity.SCRIPT (w1.5|d1|w1.5|d3|w1.5|d2|w7|p{voice}|w1|d#),
# counted from the first key (the scenario waits LEAD_MS after the ACK for it)
LEAD_MS = 1500
STEPS = (Step(0, "1"), Step(1500, "3"), Step(1500, "2"), Step(7000), Step(1000, "#"))


def read_pcma(pcap: Path) -> bytes:
    """The PCMA payload of every RTP packet in a pcap (Ethernet, IPv4, UDP), in order."""
    data = pcap.read_bytes()
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">"}.get(data[:4])
    if endian is None or struct.unpack(endian + "I", data[20:24])[0] != 1:
        raise ValueError(f"{pcap}: not an Ethernet pcap")
    audio = bytearray()
    offset = 24
    while offset + 16 <= len(data):
        length = struct.unpack(endian + "I", data[offset + 8 : offset + 12])[0]
        frame = data[offset + 16 : offset + 16 + length]
        offset += 16 + length
        ip = frame[14:]
        if frame[12:14] != b"\x08\x00" or ip[9] != 17:  # IPv4, UDP
            continue
        rtp = ip[(ip[0] & 0x0F) * 4 + 8 :]
        if len(rtp) > 12 and rtp[1] & 0x7F == PCMA:
            audio += rtp[12 + 4 * (rtp[0] & 0x0F) :]
    return bytes(audio)


@dataclass(frozen=True)
class Packet:
    at_ms: int  # from the first packet
    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    payload: bytes


def citizen_packets(voice: bytes, steps: tuple[Step, ...] = STEPS) -> list[Packet]:
    """The RTP packets of the steps: one stream, its clock running through the gaps."""
    packets: list[Packet] = []
    now = 0  # ms since the first packet
    seq = FIRST_SEQ

    def add(at: int, pt: int, payload: bytes, clock: int, marker: bool = False) -> None:
        """A packet sent `at` ms whose RTP timestamp is the stream's clock at `clock` ms."""
        stamp = (FIRST_TS + clock * RATE // 1000) & 0xFFFFFFFF
        packets.append(Packet(at, pt, marker, seq & 0xFFFF, stamp, payload))

    for step in steps:
        now += step.after_ms
        if step.key:
            code = EVENT_CODES[step.key]
            for i in range(EVENT_MS // PTIME_MS):  # one event: its start's timestamp, growing
                duration = (i + 1) * PTIME_MS * RATE // 1000
                event = struct.pack(">BBH", code, VOLUME, duration)
                add(now + i * PTIME_MS, EVENT_PT, event, now, marker=i == 0)
                seq += 1
            end = struct.pack(">BBH", code, 0x80 | VOLUME, EVENT_MS * RATE // 1000)
            for _ in range(3):  # the end, sent three times with one sequence number (RFC 4733)
                add(now + EVENT_MS, EVENT_PT, end, now)
            seq += 1
            now += EVENT_MS
        else:
            size = PTIME_MS * RATE // 1000
            for i, start in enumerate(range(0, len(voice) - size + 1, size)):
                at = now + i * PTIME_MS
                add(at, PCMA, voice[start : start + size], at, marker=i == 0)
                seq += 1
            now += len(voice) // size * PTIME_MS
    return packets


def ipv4_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f">{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(packet: Packet, ident: int) -> bytes:
    """Ethernet + IPv4 + UDP + RTP, as a capture on loopback would hold it."""
    rtp = (
        struct.pack(
            ">BBHII",
            0x80,
            (0x80 if packet.marker else 0) | packet.payload_type,
            packet.seq,
            packet.timestamp,
            SSRC,
        )
        + packet.payload
    )
    udp = struct.pack(">HHHH", PORTS[0], PORTS[1], 8 + len(rtp), 0) + rtp
    header = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0x4000, 64, 17,
                         0, ADDRESS, ADDRESS)  # fmt: skip
    header = header[:10] + struct.pack(">H", ipv4_checksum(header)) + header[12:]
    return b"\x00" * 12 + b"\x08\x00" + header + udp


def write_pcap(packets: list[Packet], path: Path) -> Path:
    """A libpcap file (microseconds, Ethernet) that SIPp's play_pcap_audio replays in time."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for ident, packet in enumerate(packets):
        data = frame(packet, ident)
        seconds, ms = divmod(packet.at_ms, 1000)
        out += struct.pack("<IIII", seconds, ms * 1000, len(data), len(data)) + data
    path.write_bytes(bytes(out))
    return path


def citizen_pcap(voice_pcap: Path, path: Path) -> Path:
    """The citizen's media track (keys 1-3-2, the voice, #) written to path."""
    return write_pcap(citizen_packets(read_pcma(voice_pcap)), path)

"""A WAV header's sizes, checked against the file and rebuilt from it.

Asterisk (MixMonitor, RECORD FILE) writes a WAV header with its RIFF and data
sizes at 0 when it opens the file, and the real sizes only when it closes it.
A recording still being written, or cut by a crashed node, therefore reads as
empty: `wave` finds 0 frames, and the transcriber heard nothing. The audio is
all there; only the two sizes are missing. These pure functions find the
sizes a header should have from the file's length (whole frames only) and
write them into a copy of the header, keeping every other byte (the format
chunk above all) as Asterisk wrote it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEAD_BYTES = 4096  # enough for the RIFF header, the format chunk and any chunk before the data
RIFF_SIZE_AT = 4  # the RIFF chunk's size field
MIN_FMT = 16  # PCM's format chunk: format, channels, rate, byte rate, block align, bits


class WavHeaderError(ValueError):
    """The bytes are not a WAV header we can read (not RIFF/WAVE, no fmt or data chunk)."""


@dataclass(frozen=True)
class WavHeader:
    """What a header says, and where its data begins."""

    riff_size: int  # the RIFF chunk's size as written (0 while Asterisk still writes)
    fmt: bytes  # the format chunk's body, as written
    block_align: int  # bytes per frame (all channels of one sample)
    data_size_at: int  # offset of the data chunk's size field
    data_offset: int  # offset of the first audio byte
    data_size: int  # the data chunk's size as written (0 while Asterisk still writes)

    @property
    def frame_bytes(self) -> int:
        """Bytes per frame; 1 for a header that claims 0 (so nothing divides by zero)."""
        return max(self.block_align, 1)


@dataclass(frozen=True)
class RebuiltHeader:
    """A header with sizes that match the file: write `head`, then `data_bytes` of audio."""

    head: bytes  # the header bytes up to the audio, sizes rebuilt
    data_bytes: int  # audio bytes to copy after the header (whole frames)
    pad: bytes  # one zero byte after odd-sized data (RIFF chunks are even), else nothing

    @property
    def total_size(self) -> int:
        return len(self.head) + self.data_bytes + len(self.pad)


def read_header(head: bytes) -> WavHeader:
    """The header at the start of a WAV file (its first `HEAD_BYTES` are enough)."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise WavHeaderError("not a RIFF/WAVE file")
    riff_size = struct.unpack_from("<I", head, RIFF_SIZE_AT)[0]
    fmt: bytes | None = None
    at = 12
    while at + 8 <= len(head):
        chunk, size = head[at : at + 4], struct.unpack_from("<I", head, at + 4)[0]
        if chunk == b"data":
            if fmt is None:
                raise WavHeaderError("data chunk before the fmt chunk")
            block_align = struct.unpack_from("<H", fmt, 12)[0]
            return WavHeader(riff_size, fmt, block_align, at + 4, at + 8, size)
        if chunk == b"fmt ":
            fmt = head[at + 8 : at + 8 + size]
            if len(fmt) < MIN_FMT:
                raise WavHeaderError("fmt chunk cut short")
        at += 8 + size + (size & 1)  # chunks are padded to an even size
    raise WavHeaderError("no data chunk in the first bytes of the file")


def whole_frame_bytes(header: WavHeader, file_size: int) -> int:
    """The audio bytes the file holds, in whole frames (a frame cut by a crash is dropped)."""
    there = max(file_size - header.data_offset, 0)
    return there - there % header.frame_bytes


def sizes_disagree(header: WavHeader, file_size: int) -> bool:
    """Whether the header's sizes are not the file's: still 0, or more than the file holds.

    A header Asterisk closed says exactly what is there. One it never closed
    says 0 (still recording, or cut by a crash); a file cut after its header
    was written says more than is there. A data chunk smaller than the rest of
    the file is left alone: other chunks may follow it.
    """
    audio = whole_frame_bytes(header, file_size)
    return (
        header.riff_size == 0
        or header.riff_size + 8 > file_size
        or header.data_offset + header.data_size > file_size
        or (header.data_size == 0 and audio > 0)
    )


def rebuilt(head: bytes, header: WavHeader, file_size: int) -> RebuiltHeader:
    """The header's bytes with the RIFF and data sizes the file's length gives.

    Everything else before the audio (the format chunk, any chunk Asterisk put
    before the data) is kept byte for byte; the audio is cut to whole frames.
    """
    data_bytes = whole_frame_bytes(header, file_size)
    pad = b"\x00" if data_bytes & 1 else b""
    fixed = bytearray(head[: header.data_offset])
    struct.pack_into("<I", fixed, RIFF_SIZE_AT, header.data_offset - 8 + data_bytes + len(pad))
    struct.pack_into("<I", fixed, header.data_size_at, data_bytes)
    return RebuiltHeader(bytes(fixed), data_bytes, pad)


def repaired(data: bytes) -> bytes:
    """A whole WAV file's bytes with its sizes rebuilt when they disagree (else unchanged)."""
    header = read_header(data[:HEAD_BYTES])
    if not sizes_disagree(header, len(data)):
        return data
    fixed = rebuilt(data, header, len(data))
    audio = data[header.data_offset : header.data_offset + fixed.data_bytes]
    return fixed.head + audio + fixed.pad

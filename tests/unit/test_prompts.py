"""Prompt builds: real espeak-ng through pyttsx3, sox conversion, incremental, overrides."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import pytest
import yaml

from core.config import load_config
from prompts.build import PromptBuildError, build_all, load_catalog
from tests.support.config import write_config


@pytest.fixture
def small(tmp_path: Path):  # type: ignore[no-untyped-def]
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        yaml.safe_dump(
            {
                "welcome": {"zh": "您好，欢迎致电12345。", "en": "Welcome to 12345."},
                "goodbye": {"zh": "再见。", "en": "Goodbye."},
            },
            allow_unicode=True,
        )
    )
    config = load_config(write_config(tmp_path / "site"))
    return config, catalog, tmp_path / "override"


def test_build_renders_asterisk_ready_audio_then_nothing_twice(small) -> None:  # type: ignore[no-untyped-def]
    config, catalog, override = small
    first = build_all(config, catalog_path=catalog, override_dir=override)
    assert (first.rendered, first.unchanged) == (4, 0)
    for lang in ("zh", "en"):
        with wave.open(str(config.sounds_dir / lang / "welcome.wav")) as audio:
            assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (
                8000,
                1,
                2,
            )
            assert audio.getnframes() > 8000 * 0.5  # at least half a second of speech
    again = build_all(config, catalog_path=catalog, override_dir=override)
    assert (again.rendered, again.unchanged) == (0, 4)


def test_changed_text_renders_only_that_prompt(small) -> None:  # type: ignore[no-untyped-def]
    config, catalog, override = small
    build_all(config, catalog_path=catalog, override_dir=override)
    data = yaml.safe_load(catalog.read_text())
    data["goodbye"]["en"] = "Goodbye, and thank you."
    catalog.write_text(yaml.safe_dump(data, allow_unicode=True))
    report = build_all(config, catalog_path=catalog, override_dir=override)
    assert (report.rendered, report.unchanged) == (1, 3)


def test_studio_recording_wins_over_synthesis(small) -> None:  # type: ignore[no-untyped-def]
    config, catalog, override = small
    build_all(config, catalog_path=catalog, override_dir=override)
    studio = override / "zh" / "welcome.wav"
    studio.parent.mkdir(parents=True)
    # a 44.1 kHz stereo "studio" file: 1.25 s of a 440 Hz tone
    subprocess.run(
        ["sox", "-n", "-r", "44100", "-c", "2", str(studio), "synth", "1.25", "sine", "440"],
        check=True,
    )
    report = build_all(config, catalog_path=catalog, override_dir=override)
    assert (report.overridden, report.rendered, report.unchanged) == (1, 0, 3)
    with wave.open(str(config.sounds_dir / "zh" / "welcome.wav")) as audio:
        assert (audio.getframerate(), audio.getnchannels()) == (8000, 1)
        assert audio.getnframes() == 10000  # 1.25 s at 8 kHz: the studio file, converted


def test_missing_translation_is_named(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("welcome:\n  zh: 您好\n")
    with pytest.raises(PromptBuildError, match="welcome: no text for language 'en'"):
        load_catalog(catalog, ["zh", "en"])


def test_shipped_catalog_has_both_languages_for_every_prompt() -> None:
    catalog = load_catalog(languages=["zh", "en"])
    assert {"welcome", "survey_contacted", "survey_satisfied", "system_error"} <= set(catalog)

"""Render the prompt catalog into audio Asterisk plays as-is.

Each prompt is synthesized with pyttsx3 driving espeak-ng, then converted by
sox to the configured Asterisk format (8 kHz mono 16-bit WAV by default). The
build is incremental: a manifest keeps a fingerprint of what produced each
file (text, voice, speed, rate, or the studio file's bytes), and only prompts
whose fingerprint changed are rendered again. A studio recording in
prompts/override/<lang>/<id>.wav wins over the synthesized one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from core.config import HotlineConfig
from core.paths import project_dir

CATALOG = Path(__file__).with_name("catalog.yaml")
OVERRIDE_DIR = project_dir() / "prompts" / "override"
MANIFEST = "manifest.json"
HOLD_PROMPT = "please_hold"
ENGINE_TAG = "pyttsx3-espeak-ng-1"
# Settings a prompt's text may name, filled in when it is built: a city that moves the
# knowledge base's key hears the key it set ("常见问题请按{kb.offer_key}。"), and a
# changed setting changes the text, so the prompt is rendered again.
SETTINGS_IN_TEXT: dict[str, Callable[[HotlineConfig], str]] = {
    "{kb.offer_key}": lambda config: config.kb.offer_key,
}
KEY_NAMES = {"*": {"zh": "星号键", "en": "star"}, "#": {"zh": "井号键", "en": "the hash key"}}


class PromptBuildError(Exception):
    """The catalog or the speech tools are not usable; the message names which."""


@dataclass
class BuildReport:
    rendered: int = 0
    overridden: int = 0
    unchanged: int = 0


def load_catalog(
    path: Path = CATALOG, languages: list[str] | None = None
) -> dict[str, dict[str, str]]:
    """Prompt id -> {language: text}; every id must have a text for every language used."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PromptBuildError(f"{path}: cannot read the prompt catalog: {exc}") from None
    catalog: dict[str, dict[str, str]] = {}
    for prompt_id, texts in data.items():
        if not isinstance(texts, dict):
            raise PromptBuildError(f"{path}: {prompt_id}: expected a mapping of language to text")
        for lang in languages or []:
            if not str(texts.get(lang, "")).strip():
                raise PromptBuildError(f"{path}: {prompt_id}: no text for language {lang!r}")
        catalog[str(prompt_id)] = {str(k): str(v) for k, v in texts.items()}
    return catalog


def spoken(text: str, config: HotlineConfig, lang: str) -> str:
    """A catalog text as the caller hears it: the settings it names filled in (a key
    that is not a digit by its name, which the synthesizer would not say)."""
    for placeholder, setting in SETTINGS_IN_TEXT.items():
        if placeholder in text:
            value = setting(config)
            text = text.replace(placeholder, KEY_NAMES.get(value, {}).get(lang, value))
    return text


ATTEMPTS = 4  # tries per prompt before the build gives up on it


class Synthesizer:
    """pyttsx3 on espeak-ng, one engine for the whole build."""

    def __init__(self, words_per_minute: int) -> None:
        try:
            # lazy: pyttsx3 loads its espeak driver on import; only a prompt build needs it
            import pyttsx3

            self.engine = pyttsx3.init("espeak")
        except Exception as exc:  # the driver raises bare errors when libespeak-ng is missing
            raise PromptBuildError(
                f"cannot start pyttsx3 with espeak-ng ({exc}); apt-get install espeak-ng"
            ) from None
        self.words_per_minute = words_per_minute

    def to_wav(self, text: str, voice: str, target: Path) -> None:
        """Speak text with voice into target (the engine's native WAV)."""
        # pyttsx3's espeak driver occasionally drops a file, more often on a loaded
        # machine (twice running was seen with three test workers building at once)
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(0.2 * attempt)
            target.unlink(missing_ok=True)
            self.engine.setProperty("voice", voice)
            self.engine.setProperty("rate", self.words_per_minute)
            with contextlib.redirect_stdout(io.StringIO()):  # the driver prints per file
                self.engine.save_to_file(text, str(target))
                self.engine.runAndWait()
            if target.exists() and target.stat().st_size > 44:
                return
        raise PromptBuildError(f"espeak-ng produced no audio for voice {voice!r}: {text[:40]!r}")


def convert(source: Path, target: Path, sample_rate: int) -> None:
    """Convert any WAV into mono 16-bit at sample_rate with sox, atomically."""
    if shutil.which("sox") is None:
        raise PromptBuildError("sox is needed to convert prompts: apt-get install sox")
    partial = target.with_suffix(".part.wav")
    done = subprocess.run(
        [
            "sox",
            str(source),
            "-r",
            str(sample_rate),
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            str(partial),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise PromptBuildError(f"sox could not convert {source}: {done.stderr.strip()}")
    partial.replace(target)


def fingerprint(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def build_all(
    config: HotlineConfig,
    *,
    force: bool = False,
    show_progress: bool = False,
    catalog_path: Path = CATALOG,
    override_dir: Path = OVERRIDE_DIR,
) -> BuildReport:
    """Render every (language, prompt) pair whose source changed; return what was done."""
    cfg = config.prompts
    catalog = load_catalog(catalog_path, list(cfg.languages))
    out = config.sounds_dir
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    manifest: dict[str, str] = {}
    if manifest_path.exists() and not force:
        with contextlib.suppress(ValueError):
            manifest = json.loads(manifest_path.read_text())
    jobs = [(lang, pid) for lang in cfg.languages for pid in catalog]
    report = BuildReport()
    synth: Synthesizer | None = None
    progress = _progress(show_progress)
    with progress, tempfile.TemporaryDirectory() as tmp:
        task = progress.add_task("building prompts", total=len(jobs))
        for lang, pid in jobs:
            progress.update(task, description=f"prompt {lang}/{pid}")
            target = out / lang / f"{pid}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            studio = override_dir / lang / f"{pid}.wav"
            voice = cfg.voices.get(lang, lang)
            text = spoken(catalog[pid][lang], config, lang)
            if studio.exists():
                key = fingerprint("override", studio.read_bytes(), str(cfg.sample_rate))
            else:
                key = fingerprint(
                    ENGINE_TAG,
                    text,
                    voice,
                    str(cfg.words_per_minute),
                    str(cfg.sample_rate),
                )
            name = f"{lang}/{pid}"
            if manifest.get(name) == key and target.exists():
                report.unchanged += 1
            elif studio.exists():
                convert(studio, target, cfg.sample_rate)
                report.overridden += 1
            else:
                synth = synth or Synthesizer(cfg.words_per_minute)
                raw = Path(tmp) / "raw.wav"
                synth.to_wav(text, voice, raw)
                convert(raw, target, cfg.sample_rate)
                report.rendered += 1
            manifest[name] = key
            manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
            progress.advance(task)
    _install_hold_music(config)
    return report


def _install_hold_music(config: HotlineConfig) -> None:
    """Queue callers hear the hotline's own hold prompt as music on hold."""
    lang = config.prompts.languages[0]
    source = config.sounds_dir / lang / f"{HOLD_PROMPT}.wav"
    moh = config.sounds_dir / "moh"
    moh.mkdir(parents=True, exist_ok=True)
    if source.exists():
        shutil.copyfile(source, moh / f"{HOLD_PROMPT}.wav")


def _progress(visible: bool) -> Progress:
    return Progress(
        TextColumn("{task.description:<40}"),
        BarColumn(),
        MofNCompleteColumn(),
        disable=not visible,
    )


class PromptLibrary:
    """Where Asterisk finds a built prompt: the path STREAM FILE wants (no extension)."""

    def __init__(self, config: HotlineConfig) -> None:
        self.root = config.sounds_dir
        self.languages = list(config.prompts.languages)

    def path(self, prompt_id: str, lang: str | None = None) -> str:
        lang = lang or self.languages[0]
        return str(self.root / lang / prompt_id)

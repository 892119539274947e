"""Chaos soak (issue 9): hundreds of scripted events against a live session, checked for silence and leaks.

A live session must never go silent, never lose a thread and never grow.

    python -m benchmarks.soak [--events N] [--seed S] [--out DIR] [--skip KIND]...

Why: a live session once went silent for good. When "stop", a barge-in or a newer question
cancelled a sentence while pyttsx3 was rendering it, the TTS worker died on `set_result` of a
cancelled future, and every later answer waited 120 s and said nothing. The soak plays a
live-paced session (WallClock, real time) through `pipelines.app.live`, so the supervisor,
the session and the real `Pyttsx3TTS` worker are all soaked; only the devices and the models
are doubles (benchmarks/soak_devices.py, benchmarks/soak_models.py):

- questions (with the wake phrase, follow-ups, push-to-talk), barge-ins by voice and by
  push-to-talk and "stop" (short, or long enough to barge in), each aimed either at the
  moment pyttsx3 is rendering a piece (see benchmarks/soak_script.py for how) or at a
  moment the answer is only playing; backchannels ("mm-hmm", 0.3 s) that must not
  interrupt; mode switches by the `m` key and by voice; a camera that goes dark for 2-4 s;
  a microphone that stalls for 3 s and then overflows its bounded queue;
- the speaker is the real SoundDeviceSpeaker (10 ms callback blocks) over a stream double;
  the window is glasses.fakes.FakeWindow (keys), the VAD tests.fakes.EnergyVAD.

Checks (benchmarks/soak_report.py): every question the script did not itself cut gets its
answer's first audio, within 10 s; no stage dies (no `error` record but the camera's, the TTS
thread alive until close); no thread is left once the session is over; the session ends
cleanly with an `end` record; the live collections (`end` record's `sizes`) stay within caps
read from the code; backchannels do not interrupt; a stop silences; cancellations did land
while pyttsx3 was rendering; utterances are cut where they were spoken; the camera comes back;
microphone overflow is counted. Writes OUT/soak.json (and OUT/session/) and a table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, deque
from pathlib import Path

from benchmarks import soak_report
from benchmarks.soak_devices import FlakyCapture, SoakSpeaker, SpeakingMicrophone
from benchmarks.soak_models import Pacer, SoakVLM, ToneASR, WatchedTTS
from benchmarks.soak_script import EPISODES, Episodes

GRACE = 1.5  # s after the session for its threads to be gone (a turn finishing its last token)


def thread_names() -> Counter:
    return Counter(th.name for th in threading.enumerate() if th.is_alive())


def rss_mb() -> float:
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20, 1)


class RSSMonitor:
    """RSS every `period` s while the session runs (a bounded series), and the threads then."""

    def __init__(self, period: float = 2.0):
        self.period = period
        self.samples: deque[tuple[float, float]] = deque(maxlen=2000)
        self.threads: list[str] = []  # names at the first sample: what a running session has
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-rss", daemon=True)

    def __enter__(self) -> "RSSMonitor":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        t0 = time.perf_counter()
        while not self._stop.wait(self.period):
            self.samples.append((round(time.perf_counter() - t0, 1), rss_mb()))
            if not self.threads:
                self.threads = sorted(thread_names().elements())


def read_records(path: Path) -> list[dict]:
    """session.jsonl in full (a live session keeps only its latest records in memory)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_soak(events: int = 200, seed: int = 0, out: Path | None = None, command: str = "",
             episodes: list[str] | None = None, skip: tuple[str, ...] = ()) -> dict:
    """One soak; returns the report (also written to OUT/soak.json). `episodes` replaces the
    seeded plan with a fixed list of benchmarks.soak_script.EPISODES names (the test's);
    `skip` leaves kinds out of the plan."""
    from core.clock import WallClock
    from glasses.camera import Camera
    from glasses.fakes import FakeWindow
    from pipelines.app import LiveOptions, live
    from tests.fakes import EnergyVAD

    out = Path(out or tempfile.mkdtemp(prefix="soak-"))
    out.mkdir(parents=True, exist_ok=True)
    load_before = round(os.getloadavg()[0], 2)
    before = thread_names()
    rss_start = rss_mb()
    tts = WatchedTTS()
    tts.setup()
    clock = WallClock()
    tts.now = clock.now
    pacer = Pacer()
    vlm = SoakVLM(pacer)
    speaker = SoakSpeaker(clock.now, tts, vlm)
    mic, asr, capture = SpeakingMicrophone(seed=seed), ToneASR(), FlakyCapture()
    window = FakeWindow()
    window.states = deque(maxlen=64)  # the double keeps every state it saw; the soak keeps the last few
    script = Episodes(mic=mic, asr=asr, window=window, clock=clock, speaker=speaker, tts=tts, vlm=vlm, pacer=pacer,
                      capture=capture, seed=seed)
    stop, failures = threading.Event(), []

    def drive() -> None:
        try:
            script.run(events, stop, episodes, skip)
        except BaseException:  # noqa: BLE001 - reported in soak.json; the session is still quit below
            failures.append(traceback.format_exc())
        finally:
            if window.on_key is not None:
                window.press("q")

    driver = threading.Thread(target=drive, name="soak-script", daemon=True)
    # The bursts are noise, not speech: a trained turn model's verdict on them means nothing, so the
    # soak pins endpointing on silence alone (the 0.5 s its timings assume) where the app offers a choice.
    pinned = {"turn": "silence"} if "turn" in LiveOptions.__dataclass_fields__ else {}
    opts = LiveOptions(window=False, out=out / "session", echo=False, self_hearing="gate", echo_ratio=0.5, **pinned)
    t0 = time.perf_counter()
    result = None
    try:
        with RSSMonitor() as rss:
            driver.start()
            result = live(opts, camera=Camera(capture, kind="device", name="soak camera"), mic=mic, speaker=speaker,
                          window=window, asr=asr, vlm=vlm, tts=tts, vad=EnergyVAD(), clock=clock)
    except BaseException:  # noqa: BLE001 - a runtime that fails is a soak result, not a crash of the soak
        failures.append(traceback.format_exc())
    finally:
        stop.set()
        driver.join(60)
        wall = time.perf_counter() - t0
        tts_alive = tts.alive()
        rss_end = rss_mb()
        tts.close()
        for handler in list(logging.getLogger().handlers):  # live() logs to OUT/session/debug.log: let it go
            handler.close()
            logging.getLogger().removeHandler(handler)
    time.sleep(GRACE)
    left = thread_names()
    report = soak_report.build({
        "command": command or (f"run_soak(seed={seed}, episodes={episodes})" if episodes
                               else f"python -m benchmarks.soak --events {events} --seed {seed}"),
        "machine": _machine(), "date": dt.date.today().isoformat(), "wall_s": round(wall, 1),
        "load_before": load_before, "load_after": round(os.getloadavg()[0], 2),
        "ledger": script.ledger(), "records": read_records(out / "session" / "session.jsonl"),
        "first_play": dict(speaker.first_play), "phases": list(speaker.phases), "heard": list(asr.heard),
        "tts": {"alive_at_end": tts_alive, "submitted": tts.submitted, "skipped": tts.skipped, "failed": tts.failed,
                "cancelled_while_rendering": tts.cancelled_while_rendering, "render_s": list(tts.render_s),
                "renders": [list(r) for r in tts.renders]},
        "threads": {"start": sorted(before.elements()), "during": rss.threads, "end": sorted(left.elements()),
                    "left_behind": sorted((left - before).elements())},
        "rss_mb": {"start": rss_start, "in_session": rss.samples[0][1] if rss.samples else None, "end": rss_end,
                   "max": max([s[1] for s in rss.samples] + [rss_end]), "series": list(rss.samples)},
        "failures": failures, "reason": getattr(result, "reason", None),
    })
    (out / "soak.json").write_text(json.dumps(report, indent=2, default=str))
    return report


def _machine() -> str:
    from benchmarks.latency import machine

    return machine()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=200, help="scripted events at least (default 200)")
    p.add_argument("--seed", type=int, default=0, help="the script's random seed (default 0)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for soak.json and the session (default: a temp folder)")
    p.add_argument("--skip", action="append", default=[], choices=sorted(EPISODES), metavar="KIND",
                   help="leave this kind of episode out (repeatable): " + ", ".join(EPISODES))
    a = p.parse_args(argv)
    if a.events < 1:
        p.error("--events must be >= 1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = a.out or Path(tempfile.mkdtemp(prefix="soak-"))
    print(f"soak: {a.events} events at 1x (about {a.events * 3 // 60 + 1} min) ...", file=sys.stderr, flush=True)
    report = run_soak(a.events, a.seed, out, "python -m benchmarks.soak " + " ".join(argv), skip=tuple(a.skip))
    print(soak_report.table(report))
    for failure in report["failures"]:
        print(failure, file=sys.stderr)
    print(f"report: {out / 'soak.json'}")
    return 0 if all(c["ok"] for c in report["checks"].values()) and not report["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())

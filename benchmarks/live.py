"""Benchmark: live mode's real-time figures (issue 3).

    python -m benchmarks.live [--out DIR] [--trials 12] [--seconds 40]

1. Capture and window while a model runs. `live()` with a 30 fps 640x360 clip as the camera
   (real OpenCV decoding, paced like a webcam), the real OpenCV window (under Xvfb when there
   is no $DISPLAY), and a SmolVLM-256M-sized vision-language model with random weights
   answering typed questions one after another (real compute: vision tower, prefill, decode).
   A monitor samples the camera's and the window's counters; rates are split into time when
   the model was generating and time when it was idle.
2. Barge-in reaction time with fake ports: scripted microphone (noise bursts, EnergyVAD),
   the real Session, and the real SoundDeviceSpeaker on a fake output stream that pulls
   10 ms blocks in real time. Each trial asks a question, and speaks over the answer; the
   figures are from the moment the session detected the speech (its first hint, at which the
   answer pauses) to the first silent block handed to the "device", and from the speech's
   onset to that block; and whether the barge-in then cancelled the answer. Run with the CPU
   idle, then with a torch workload keeping both cores busy (a model generating elsewhere in
   the process).
Results go to OUT/bench_live.json and a summary on stdout.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import cv2  # noqa: F401 - before PyAV (pipelines.app), or the window hangs: see glasses/window.py
import numpy as np

from pipelines.app import LiveOptions, live

LONG = "This is a long answer that goes on. " * 6


def _median(xs):
    return round(statistics.median(xs), 4) if xs else None


def ensure_display() -> subprocess.Popen | None:
    """A display for the window: $DISPLAY, else an Xvfb of our own (None if neither)."""
    from glasses.window import display_problem

    if not display_problem():
        return None
    if not shutil.which("Xvfb"):
        return None
    n = next(n for n in range(150, 250) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    server = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if Path(f"/tmp/.X11-unix/X{n}").exists():
            break
        time.sleep(0.05)
    os.environ["DISPLAY"] = f":{n}"
    return server


def real_size_vlm():
    from pipelines.tiny import _default_cache, _ensure, build_vlm
    from pipelines.vlm import HFVLM, VLMConfig

    root = _default_cache() / "glasses-assistant"
    folder = _ensure(root / "smolvlm-256m-random-v1", lambda d: build_vlm(d, "smolvlm-256m"))
    vlm = HFVLM(VLMConfig(model=str(folder), fixed_length=True))  # every answer runs to its token cap
    vlm.setup()
    return vlm


def capture_while_busy(work: Path, seconds: float) -> dict:
    """Camera rate and window drops, split into model-busy and idle time."""
    from glasses.camera import Camera
    from glasses.fakes import scripted_microphone
    from glasses.sample import make_clip
    from glasses.window import Window
    from core.clock import WallClock
    from tests.fakes import EnergyVAD, FakeTTS, ScriptedASR

    from glasses.window import display_problem

    xvfb = ensure_display()
    window = Window("bench") if display_problem() is None else None
    clip = make_clip(work / "camera.mp4", duration=seconds + 2, size=(640, 360), fps=30, audio=False)
    vlm = real_size_vlm()
    clock = WallClock()
    camera = Camera.open(str(clip))
    samples: list[tuple] = []
    stop = threading.Event()

    def monitor():
        while not stop.wait(0.25) and not camera.ended:
            samples.append((clock.now(), camera.frames, getattr(window, "frames_seen", 0),
                            getattr(window, "dropped", 0)))

    # two questions, half the run apart: each keeps the model busy (120 tokens), with idle time between
    asks = tuple((t, "What am I looking at? Describe it in detail.") for t in (3.0, 3.0 + seconds / 2))
    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    result = live(LiveOptions(window=False, out=work / "capture", asks=asks, max_new_tokens=120, echo=False),
                  camera=camera, mic=scripted_microphone(np.zeros(16000, np.float32)), window=window,
                  asr=ScriptedASR([]), vlm=vlm, tts=FakeTTS(), vad=EnergyVAD(), clock=clock)
    stop.set()
    watcher.join()
    if xvfb is not None:
        xvfb.terminate()
    busy = [(t["heard_at"], t["heard_at"] + (t["latency"]["vlm_total"] or 0)) for t in result.turns]

    def rates(inside: bool) -> dict:
        cam = seen = dropped = span = 0.0
        for (t0, c0, s0, d0), (t1, c1, s1, d1) in zip(samples, samples[1:]):
            in_busy = any(a <= t0 and t1 <= b for a, b in busy)
            idle = all(t1 < a - 0.5 or t0 > b + 0.5 for a, b in busy) and t0 > 1.0
            if (inside and in_busy) or (not inside and idle):
                cam, seen, dropped, span = cam + c1 - c0, seen + s1 - s0, dropped + d1 - d0, span + t1 - t0
        return {"seconds": round(span, 1), "camera_fps": round(cam / span, 1) if span else None,
                "window_fps": round(seen / span, 1) if span else None, "window_dropped": int(dropped),
                "window_dropped_pct": round(100 * dropped / cam, 1) if cam else None}

    return {
        "window": window is not None, "camera_source_fps": camera.source_fps,
        "turns": len(result.turns), "vlm_total_s": _median([t["latency"]["vlm_total"] for t in result.turns]),
        "busy": rates(True), "idle": rates(False),
        "window_draw_ms": round(1000 * statistics.median(window.draw_s), 2) if window and window.draw_s else None,
        "camera_fps_overall": result.figures.get("camera_fps"),
    }


def barge_in_trials(work: Path, trials: int, load: bool) -> dict:
    """Speech detected -> playback silent, `trials` times, with the real session and speaker."""
    from glasses.camera import Camera
    from glasses.fakes import FakeCapture, FakeOutputStream, scripted_microphone, tone_track
    from glasses.speaker import SoundDeviceSpeaker
    from core.clock import WallClock
    from tests.fakes import EnergyVAD, FakeTTS, ScriptedASR
    from tests.fakes import FakeVLM

    stop = threading.Event()
    hogs = []
    if load:  # a model generating elsewhere in the process: both cores busy with torch
        import torch

        def hog():
            a = torch.randn(768, 768)
            while not stop.is_set():
                a = torch.tanh(a @ a)

        torch.set_num_threads(2)
        hogs = [threading.Thread(target=hog, daemon=True)]
        for h in hogs:
            h.start()
    detect, from_onset, cancelled = [], [], 0
    try:
        for i in range(trials):
            clock = WallClock()
            speaker = SoundDeviceSpeaker(None, clock.now, rate=16000, block_s=0.01,
                                         stream_factory=functools.partial(FakeOutputStream, now=clock.now))
            image = np.full((180, 320, 3), 128, np.uint8)
            camera = Camera(FakeCapture(lambda k: image, fps=30, frames=int(3.8 * 30), paced=False), kind="file")
            mic = scripted_microphone(tone_track(3.8, [(0.2, 0.9), (2.4, 3.2)]))
            # the microphone hears no echo here (headphones): `off`, so the first answer already pauses
            result = live(LiveOptions(window=False, out=work / f"barge-{'load' if load else 'idle'}-{i}", echo=False,
                                      self_hearing="off"),
                          camera=camera, mic=mic, speaker=speaker, asr=ScriptedASR([(0.5, "Hey glasses, describe it.")]),
                          vlm=FakeVLM(LONG, delay=0.02), tts=FakeTTS(), vad=EnergyVAD(), clock=clock)
            barge = [r for r in result.records if r["type"] == "barge_in"]
            first = ([r for r in result.records if r["type"] == "yield"] + barge)[:1]  # the answer fell silent here
            cancelled += bool(barge)
            if first and speaker.silenced:
                detect.append(speaker.silenced[0] - first[0]["t"])
                from_onset.append(speaker.silenced[0] - first[0]["speech_start"])
    finally:
        stop.set()
        for h in hogs:
            h.join()
    return {"trials": trials, "measured": len(detect), "cancelled": cancelled,
            "cpu": "busy (torch on 2 threads)" if load else "idle",
            "detected_to_silent_ms": {"median": _ms(_median(detect)), "max": _ms(max(detect, default=None))},
            "speech_onset_to_silent_ms": {"median": _ms(_median(from_onset)), "max": _ms(max(from_onset, default=None))}}


def _ms(x):
    return None if x is None else round(1000 * x, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=40.0, help="length of the capture run")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-live-"))
    out.mkdir(parents=True, exist_ok=True)
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d")}
    report["barge_in_idle"] = barge_in_trials(out, args.trials, load=False)
    report["barge_in_busy"] = barge_in_trials(out, args.trials, load=True)
    report["capture"] = capture_while_busy(out, args.seconds)
    (out / "bench_live.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"written: {out / 'bench_live.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

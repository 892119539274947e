"""Memory's keyframes and describing: how many keyframes a minute, and whether describing keeps up.

    python -m benchmarks.memory_keyframes [--out DIR] [--seconds 60] [--change-every 3] [--dtype float32|bfloat16]
                                          [--skip-describe]

1. Keyframes per minute on the shared clips (../shared/media/video; skipped, saying so, when
   absent): each clip's frames as the session sees them (pipelines/vision.py scores them), the
   sharpest new frame offered every 0.5 s as the describer does (`Describer.pick`), with the
   app's `KeyframePicker`. Per clip and for all of them in a row (one picker, as one session).
2. Describing in live pacing: a real-time replay (`--pace realtime`: the live threads and the
   wall clock) of a generated clip whose view changes every `--change-every` seconds (3 s, the
   picker's minimum gap: the worst case), with memory on and no questions, so describing runs
   whenever it can. The VLM is a random-weight model at SmolVLM-256M's size (pipelines/tiny.py,
   the latency benchmark's recipe and cache): the compute of the real one, garbage captions,
   each the full 48 tokens (random weights never say they are done; real captions are shorter).
   Reported from the session's `end` record: keyframes, described, skipped, backlog at the end,
   seconds per description, and how long a keyframe waited to be described.
3. Questions while describing (`--questions K`, default 4; 0 skips it): the same replay twice,
   memory off and on, with K typed questions spread over the clip, each likely to come while a
   keyframe is being described. Voice-to-voice per question, off and on (the same model answers:
   random tokens, the first piece after 6 words, as in the app).

Run it on a quiet machine: describing shares the cores with nothing else here, as on glasses.
Writes OUT/memory_keyframes.json (default runs/bench-memory-TIME/).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "video"


class _NoStore:
    """Picking only: nothing is described or stored."""

    def expire(self, now, days):
        return 0

    def counts(self):
        return {"entries": 0}


def keyframes_on_clips(folder: Path = MEDIA) -> dict:
    """Keyframes per clip and per minute, and why the other offered frames were not kept."""
    from glasses.recorded import RecordedSource
    from core.messages import VideoFrame
    from pipelines.memory.describe import Describer
    from pipelines.memory.keyframes import KeyframePicker
    from pipelines.vision import score

    clips = sorted(folder.glob("*.mp4")) if folder.is_dir() else []
    if not clips:
        return {"skipped": f"no clips in {folder} (../shared/media is absent in a user's clone)"}
    rows, seconds = [], 0.0
    together = Describer(_NoStore(), None, KeyframePicker(), wall_origin=0.0, replay=True)
    offset = 0.0
    for clip in clips:
        alone = Describer(_NoStore(), None, KeyframePicker(), wall_origin=0.0, replay=True)
        frames, end = [], 0.0
        source = RecordedSource(clip)
        try:
            for ev in source.events():
                if isinstance(ev, VideoFrame):
                    snap = score(ev)
                    frames = (frames + [snap])[-30:]
                    alone.pick(snap.t, frames)
                    together.pick(offset + snap.t, [type(f)(offset + f.t, f.image, f.sharpness, f.exposure)
                                                    for f in frames])
                    end = ev.t
        finally:
            source.close()
        n = alone.counts["keyframes"]
        rows.append({"clip": clip.name, "seconds": round(end, 2), "keyframes": n,
                     "per_minute": round(60 * n / end, 1) if end > 0 else None, "offered": alone.counts["offered"],
                     "reasons": dict(alone.picker.counts)})
        seconds += end
        offset += end + 1.0
    return {"clips": rows, "all_in_a_row": {"seconds": round(seconds, 2), "keyframes": together.counts["keyframes"],
                                            "per_minute": round(60 * together.counts["keyframes"] / seconds, 1),
                                            "reasons": dict(together.picker.counts)},
            "keyframes_per_second_max": max((r["keyframes"] / r["seconds"] for r in rows if r["seconds"]), default=0)}


def busy_scene(change_every: float, seed: int = 0):
    """A draw(frame, t) whose view changes completely every `change_every` s: a new place, new things."""
    rng = np.random.default_rng(seed)
    cache: dict[int, tuple] = {}

    def layout(i: int):
        if i not in cache:
            cache[i] = (rng.integers(30, 220, 3), [(rng.integers(0, 3), rng.integers(30, 255, 3)) for _ in range(2)])
        return cache[i]

    def draw(frame: np.ndarray, t: float) -> None:
        h, w = frame.shape[:2]
        bg, things = layout(int(t // change_every))
        frame[:] = bg
        y, x = np.mgrid[0:h, 0:w]
        frame[((y // 8 + x // 8) % 2 == 0)] //= 2  # a coarse texture: sharp, and the same every frame
        for slot, colour in things:
            x0 = int(slot * w / 3)
            frame[h // 6: h - h // 10, x0: x0 + w // 3] = colour
    return draw


def bench_vlm_dir() -> Path:
    """The latency benchmark's SmolVLM-256M-size random model (built once, cached)."""
    from benchmarks.latency_models import CACHE_VERSION, _corpus, bench_corpus
    from pipelines.tiny import _default_cache, _ensure, build_vlm
    import hashlib

    corpus = bench_corpus()
    root = _default_cache() / "glasses-assistant" / CACHE_VERSION
    root.mkdir(parents=True, exist_ok=True)

    def vlm(d):
        with _corpus(corpus):
            build_vlm(d, "smolvlm-256m")

    return _ensure(root / f"smolvlm-256m-{hashlib.sha1(corpus.encode()).hexdigest()[:8]}", vlm)


def describing_live(seconds: float, change_every: float, work: Path, dtype: str | None = None,
                    questions: int = 0) -> dict:
    """A real-time replay with memory on and no questions; with `questions`, two more (memory off
    and on) with typed questions (see the module doc)."""
    from glasses.sample import make_clip
    from pipelines.app import ReplayOptions, replay
    from pipelines.vlm import HFVLM, VLMConfig, default_dtype
    from tests.fakes import FakeTTS, ScriptedASR

    clip = make_clip(work / "busy.mp4", duration=seconds, size=(640, 360), fps=15.0, draw=busy_scene(change_every),
                     audio_rate=16000, audio_channels=1)
    vlm = HFVLM(VLMConfig(model=str(bench_vlm_dir()), dtype=dtype or default_dtype()))
    t0 = time.perf_counter()
    vlm.setup()
    load = time.perf_counter() - t0

    def run(name: str, memory: bool, asks=()):
        opts = ReplayOptions(clip, out=work / name, pace="realtime", render=False, progress=False, asks=tuple(asks),
                             memory=work / f"memory-{name}" if memory else None, turn="silence")
        return replay(opts, asr=ScriptedASR([]), vlm=vlm, tts=FakeTTS(seconds_per_word=0.05))

    m = run("describe", True).records[-1].get("memory", {})
    report = {"clip_seconds": seconds, "view_changes_every_s": change_every, "dtype": vlm.config.dtype,
              "model_load_s": round(load, 2), "threads": os.cpu_count(),
              "keyframes_per_minute": round(60 * m.get("keyframes", 0) / seconds, 1), **m}
    if questions:
        asks = [(round(10.0 + i * (seconds - 15.0) / max(1, questions - 1), 2) + 0.5, "what is this?")
                for i in range(questions)]
        latency = {}
        for name, memory in (("off", False), ("on", True)):
            result = run(f"questions-{name}", memory, asks)
            latency[name] = [t["latency"]["voice_to_voice"] for t in result.turns]
            if memory:
                latency["memory"] = result.records[-1].get("memory", {})
        report["questions"] = {"at": [t for t, _ in asks], "voice_to_voice_off": latency["off"],
                               "voice_to_voice_on": latency["on"],
                               "p50_off": sorted(latency["off"])[len(latency["off"]) // 2],
                               "p50_on": sorted(latency["on"])[len(latency["on"]) // 2],
                               "descriptions_cancelled": latency["memory"].get("cancelled"),
                               "described_meanwhile": latency["memory"].get("described")}
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path)
    p.add_argument("--seconds", type=float, default=60.0, help="length of the live-pacing clip (default 60)")
    p.add_argument("--change-every", type=float, default=3.0, help="its view changes this often (default 3 s)")
    p.add_argument("--dtype", choices=("float32", "bfloat16"),
                   help="the VLM's dtype (default: the app's, bfloat16 where the CPU has AMX or AVX512-BF16)")
    p.add_argument("--questions", type=int, default=4, help="questions asked, memory off and on (0: none)")
    p.add_argument("--skip-describe", action="store_true", help="only the keyframes on the shared clips")
    args = p.parse_args(argv)
    out = args.out or Path("runs") / f"bench-memory-{dt.datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    report = {"when": dt.datetime.now().isoformat(timespec="seconds"), "keyframes": keyframes_on_clips()}
    print(json.dumps(report["keyframes"], indent=1))
    if not args.skip_describe:
        with tempfile.TemporaryDirectory() as tmp:
            report["describing_live"] = describing_live(args.seconds, args.change_every, Path(tmp), args.dtype,
                                                        args.questions)
        print(json.dumps(report["describing_live"], indent=1))
    (out / "memory_keyframes.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {out / 'memory_keyframes.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: fast-replay throughput (multiples of real time) and peak memory of a replay.

    python -m benchmarks.replay [--out DIR] [--clips DIR]

Each clip is replayed twice per configuration, every replay in a fresh process so its
peak RSS is its own: once with fake models (the pipeline's own cost: decoding, VAD,
frame scoring, TTS, rendering) and once with `--models tiny-random` (the real loaders
and generate loops on tiny random weights). Every clip gets one typed question at its
middle so each run answers once. Results go to OUT/bench_replay.json and a table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one(clip: Path, models: str, out: Path) -> dict:
    """Run inside the child process: one replay, its timings as JSON on stdout."""
    from glasses.recorded import probe
    from pipelines.app import ReplayOptions, replay
    from tests.fakes import ScriptedASR
    from tests.fakes import FakeVLM

    duration = probe(clip).duration
    opts = ReplayOptions(clip, out=out, models=models, asks=((round(duration / 2, 2), "what is this?"),),
                         progress=False, max_new_tokens=24)
    fakes = {"asr": ScriptedASR([]), "vlm": FakeVLM("It is a stream of water over stones.")} if models == "fake" else {}
    result = replay(opts, **fakes)
    return {"clip": clip.name, "models": models, "duration": duration, "turns": len(result.turns), **result.timings}


def measure(clip: Path, models: str, workdir: Path) -> dict:
    out = workdir / f"{clip.stem}-{models}"
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.replay", "--one", str(clip), "--models", models,
                             "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{clip.name} {models}: {stderr.strip().splitlines()[-1] if stderr.strip() else 'failed'}")
    row = json.loads(stdout.strip().splitlines()[-1])
    row["peak_rss_mb"] = _children_peak_mb()
    row["x_realtime_session"] = row["duration"] / row["session"]
    row["x_realtime_total"] = row["duration"] / (row["session"] + row["render"])
    return row


def _children_peak_mb() -> float:
    """Peak RSS of the replay process: this process's only child (see _measure_isolated)."""
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def clips_in(folder: Path | None) -> list[Path]:
    if folder and folder.is_dir():
        return sorted(folder.glob("*.mp4"))
    from glasses.sample import make_sample_clip

    return [make_sample_clip(Path(tempfile.mkdtemp()) / "sample.mp4")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_replay"))
    parser.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "media" / "video")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--models", default="fake", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, args.models, args.out)))
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for models in ("fake", "tiny-random"):
            for clip in clips_in(args.clips):
                rows.append(_measure_isolated(clip, models, Path(work)))
    report = {
        "command": "python -m benchmarks.replay " + " ".join(argv or sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
        "median_x_realtime_session": {m: statistics.median(r["x_realtime_session"] for r in rows if r["models"] == m)
                                      for m in ("fake", "tiny-random")},
        "median_x_realtime_total": {m: statistics.median(r["x_realtime_total"] for r in rows if r["models"] == m)
                                    for m in ("fake", "tiny-random")},
        "max_peak_rss_mb": {m: max(r["peak_rss_mb"] for r in rows if r["models"] == m) for m in ("fake", "tiny-random")},
    }
    (args.out / "bench_replay.json").write_text(json.dumps(report, indent=2))
    print(table(report))
    return 0


def _measure_isolated(clip: Path, models: str, work: Path) -> dict:
    """Run `measure` in a wrapper process so the peak RSS reported is that run's alone."""
    code = ("import json,sys; from pathlib import Path; from benchmarks.replay import measure; "
            "print(json.dumps(measure(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))))")
    proc = subprocess.run([sys.executable, "-c", code, str(clip), models, str(work)], cwd=ROOT, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark run failed: {proc.stderr.strip().splitlines()[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(report: dict) -> str:
    lines = [f"{'clip':34} {'models':11} {'media s':>7} {'session s':>9} {'render s':>8} {'x rt loop':>9} "
             f"{'x rt all':>8} {'peak MB':>7}"]
    for r in report["rows"]:
        lines.append(f"{r['clip'][:34]:34} {r['models']:11} {r['duration']:7.1f} {r['session']:9.2f} {r['render']:8.2f} "
                     f"{r['x_realtime_session']:9.1f} {r['x_realtime_total']:8.1f} {r['peak_rss_mb']:7.0f}")
    for m in ("fake", "tiny-random"):
        lines.append(f"median {m}: loop {report['median_x_realtime_session'][m]:.1f}x real time, with render "
                     f"{report['median_x_realtime_total'][m]:.1f}x; peak RSS max {report['max_peak_rss_mb'][m]:.0f} MB")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

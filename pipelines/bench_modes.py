"""Benchmark: the answer modes on a SmolVLM-256M-sized random-weight model (issue 4).

    python -m pipelines.bench_modes [--out DIR] [--repeats 3] [--draft-tokens 1 64 192]

Measured in one run, in one process, on real frames (the flower clip in ../shared/media,
else the sample clip) sized as the app sizes them (longest side 512, no image splitting):

1. Contemplating's K=4 draft requests in ONE batched generate, against the same 4 requests
   generated one after another, each draft exactly N new tokens, for each N of --draft-tokens.
   N=1 isolates what batching cannot share on a CPU (vision tower and prefill).
2. The wall time of each mode for one question, through `modes.answer` as the session calls
   it, at fixed lengths: every generation runs to its cap (random weights never write
   'Answer:', so Thinking always pays for its forced final-answer pass).

Compute does not depend on the weight values, so random weights at the real sizes cost what
the real model costs. Each figure is the median of --repeats runs after one warm-up; on a
shared machine each repeat first waits for other processes to go quiet, and repeats during
which others still used more than QUIET cores are left out of the median (all are in the
JSON, with the cores' worth of CPU others used during each). The
model is built once and cached under ~/.cache/glasses-assistant/. Results go to
OUT/bench_modes.json and to a table on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "media" / "video" / "mdn_flower_silent_audio.mp4"
QUESTION = ("What kind of flower is this?", 1.5, 3.0)  # text, speech start, speech end (clip seconds)
K = 4
QUIET = 0.1  # cores' worth of CPU used by other processes below which a repeat counts as undisturbed


def model_dir() -> Path:
    from pipelines.tiny import _default_cache, _ensure, build_vlm

    root = _default_cache() / "glasses-assistant"
    root.mkdir(parents=True, exist_ok=True)
    return _ensure(root / "smolvlm-256m-random-v1", lambda d: build_vlm(d, "smolvlm-256m"))


def load_frames(workdir: Path) -> tuple[str, list]:
    """Scored frames of the first 4 s of a real clip, at camera resolution (up to 960 px)."""
    from glasses.recorded import RecordedSource
    from pipelines.messages import VideoFrame
    from pipelines.vision import score

    clip = CLIP
    if not clip.is_file():
        from glasses.sample import make_sample_clip

        clip = make_sample_clip(workdir / "sample.mp4")
    source = RecordedSource(clip, max_side=960)
    frames = []
    for ev in source.events():
        if ev.t > 4.0:
            break
        if isinstance(ev, VideoFrame):
            frames.append(score(ev))
    source.close()
    return clip.name, frames


def _busy_seconds() -> float | None:
    """CPU seconds all processes have used so far, from /proc/stat (None off Linux)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def timed(fn) -> dict:
    """Wall seconds, this process's CPU seconds, and the cores' worth of CPU that OTHER processes
    used meanwhile: on a shared 2-core machine the wall time is only meaningful when that is ~0."""
    b0, t0, c0 = _busy_seconds(), time.perf_counter(), time.process_time()
    fn()
    wall, cpu, b1 = time.perf_counter() - t0, time.process_time() - c0, _busy_seconds()
    others = None if b0 is None else max(0.0, (b1 - b0 - cpu) / wall)
    return {"wall": wall, "cpu": cpu, "others": others}


def wait_quiet(limit: float, threshold: float = QUIET) -> None:
    """Wait (at most `limit` seconds) until other processes use less than `threshold` cores."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        b0 = _busy_seconds()
        time.sleep(1.0)
        if b0 is None or _busy_seconds() - b0 < threshold:
            return


def clean(runs: list[dict], key: str = "wall") -> float:
    """Median over the repeats that ran undisturbed (others below QUIET cores); all when none did."""
    quiet = [r[key] for r in runs if r["others"] is not None and r["others"] < QUIET]
    return median(quiet or [r[key] for r in runs])


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.bench_modes", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_modes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--draft-tokens", type=int, nargs="+", default=[1, 64, 192])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--wait-quiet", type=float, default=30.0,
                        help="before each repeat, wait up to this many seconds for other processes to go quiet")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from pipelines import modes
    from pipelines.messages import VLMRequest
    from pipelines.modes import ModeContext
    from pipelines.views import build_views
    from pipelines.vision import fit_for_model, pick_frame
    from pipelines.vlm import HFVLM, SYSTEM_PROMPT, VLMConfig

    t_start = time.perf_counter()
    load_before = os.getloadavg()  # other work on the machine shows here, and in the spread of the repeats
    path = model_dir()
    vlm = HFVLM(VLMConfig(model=str(path), dtype="float32", threads=args.threads, fixed_length=True))
    vlm.setup()
    with tempfile.TemporaryDirectory() as tmp:
        clip, frames = load_frames(Path(tmp))
    question, start, end = QUESTION
    best = pick_frame(frames, start, end)
    image = fit_for_model(best.image, 512)

    def context(said: list) -> ModeContext:
        request = VLMRequest(question, image, (), SYSTEM_PROMPT, 60)
        t0 = time.perf_counter()
        return ModeContext(vlm, request, threading.Event(), said.append, frames=frames, best=best, start=start, end=end,
                           image_side=512, agents=K, elapsed=lambda: time.perf_counter() - t0)

    views = build_views(K, image=image, best=best, frames=frames, start=start, end=end)
    cancel = threading.Event()
    print(f"model {path} (random weights, fp32, {args.threads} threads); clip {clip}, best frame t={best.t:.2f}, "
          f"image {image.shape[1]}x{image.shape[0]}; views: {', '.join(v.name for v in views)}", flush=True)

    # warm-up: the first generate of each batch shape allocates and initialises
    warm = modes.draft_requests(context([]), views, 2)
    vlm.generate_batch(warm[:1], cancel)
    vlm.generate_batch(warm, cancel)

    ratio_rows = []
    for n in args.draft_tokens:
        requests = modes.draft_requests(context([]), views, n)
        prompt_tokens = vlm.batch_inputs(requests)["attention_mask"].sum(dim=1).tolist()
        batched, sequential = [], []
        for _ in range(args.repeats):  # interleaved, so drift in the machine affects both alike
            wait_quiet(args.wait_quiet)
            batched.append(timed(lambda: vlm.generate_batch(requests, cancel, n, n)))
            wait_quiet(args.wait_quiet)
            sequential.append(timed(lambda: [vlm.generate_batch([r], cancel, n, n) for r in requests]))
        row = {"draft_tokens": n, "prompt_tokens": prompt_tokens, "batched_runs": batched, "sequential_runs": sequential,
               "batched": clean(batched), "sequential": clean(sequential),
               "batched_cpu": clean(batched, "cpu"), "sequential_cpu": clean(sequential, "cpu")}
        row["ratio"], row["ratio_cpu"] = row["batched"] / row["sequential"], row["batched_cpu"] / row["sequential_cpu"]
        ratio_rows.append(row)
        print(f"K={K} drafts of {n} tokens: batched {row['batched']:.2f} s, sequential {row['sequential']:.2f} s, "
              f"ratio {row['ratio']:.2f} (CPU time {row['ratio_cpu']:.2f}); repeats (wall s, others' cores) "
              f"{_show(batched)} / {_show(sequential)}", flush=True)

    mode_rows = []
    for mode in modes.MODES:
        runs = []
        for _ in range(args.repeats):
            wait_quiet(args.wait_quiet)  # first: the question "ends" when the context is made
            said: list[str] = []
            ctx = context(said)
            first_said = []
            ctx.speak = lambda text, t0=time.perf_counter(): (first_said or first_said.append(time.perf_counter() - t0),
                                                               said.append(text))
            out = {}
            run = timed(lambda: out.update(result=modes.answer(mode, ctx)))
            result = out["result"]
            runs.append({**run, "first_token": result.first_token, "first_spoken": first_said[0] if first_said else None,
                         "cue_t": (result.extra.get("cue") or {}).get("t"),
                         "draft_latency": result.extra.get("draft_latency"),
                         "aggregate_latency": result.extra.get("aggregate_latency"),
                         "answer_forced": result.extra.get("answer_forced"),
                         "aggregation_prompt_tokens": _tokens(vlm, result.extra.get("aggregation_prompt"))})
        row = {"mode": mode, "runs": runs, "wall": clean(runs), "cpu": clean(runs, "cpu"), "first_spoken": clean(runs, "first_spoken")}
        for key in ("draft_latency", "aggregate_latency"):
            if runs[0][key] is not None:
                row[key] = clean(runs, key)
        mode_rows.append(row)
        print(f"{mode}: wall {row['wall']:.2f} s, first text to speech {row['first_spoken']:.2f} s; repeats "
              f"(wall s, others' cores) {_show(runs)}", flush=True)

    # What a step costs: from the N=1 row (vision + prefill) and the longest row (plus N-1 decode steps).
    short, long_ = ratio_rows[0], ratio_rows[-1]
    steps = long_["draft_tokens"] - short["draft_tokens"]
    costs = {}
    if steps > 0:
        costs = {"prefill_batch1_s": short["sequential"] / K, "prefill_batch4_s": short["batched"],
                 "decode_step_batch1_s": (long_["sequential"] - short["sequential"]) / K / steps,
                 "decode_step_batch4_s": (long_["batched"] - short["batched"]) / steps}

    result = {
        "command": "python -m pipelines.bench_modes " + " ".join(argv or []),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "threads": args.threads},
        "model": "SmolVLM-256M-sized Idefics3, random weights (pipelines.tiny), fp32",
        "clip": clip, "frame_time": best.t, "image": list(image.shape), "question": question, "agents": K,
        "views": [v.name for v in views], "repeats": args.repeats,
        "lengths": {"instant": 60, "think_budget": modes.THINK_BUDGET, "final_answer": 60,
                    "draft_tokens": modes.DRAFT_TOKENS, "aggregation": 60},
        "batched_vs_sequential": ratio_rows, "step_costs": costs, "modes": mode_rows,
        "total_s": time.perf_counter() - t_start, "load_average": {"start": load_before, "end": os.getloadavg()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_modes.json").write_text(json.dumps(result, indent=2))
    print()
    print(table(result))
    print(f"\nwritten: {args.out / 'bench_modes.json'} (total {result['total_s']:.0f} s)")
    return 0


def _tokens(vlm, prompt: str | None) -> int | None:
    """Prompt length in tokens of a text-only request (the aggregator's), None without one."""
    from pipelines.messages import VLMRequest
    from pipelines.vlm import SYSTEM_PROMPT

    if not prompt:
        return None
    return int(vlm.batch_inputs([VLMRequest(prompt, None, (), SYSTEM_PROMPT)])["input_ids"].shape[1])


def _show(runs: list[dict]) -> str:
    return ", ".join(f"{r['wall']:.2f} ({r['others']:.2f})" if r["others"] is not None else f"{r['wall']:.2f}"
                     for r in runs)


def table(result: dict) -> str:
    """The two Markdown tables of BENCHMARKS.md."""
    rows = ["| draft tokens (each) | prompt tokens | K=4 batched s | 4 sequential s | batched / sequential | "
            "same, CPU time |", "|---:|---|---:|---:|---:|---:|"]
    for r in result["batched_vs_sequential"]:
        rows.append(f"| {r['draft_tokens']} | {min(r['prompt_tokens'])}-{max(r['prompt_tokens'])} | {r['batched']:.2f} | "
                    f"{r['sequential']:.2f} | **{r['ratio']:.2f}** | {r['ratio_cpu']:.2f} |")
    rows += ["", "| mode | wall s (one question) | CPU s | first text to speech s | drafts s | aggregation s |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in result["modes"]:
        drafts = f"{r['draft_latency']:.2f}" if "draft_latency" in r else "-"
        agg = f"{r['aggregate_latency']:.2f}" if "aggregate_latency" in r else "-"
        rows.append(f"| {r['mode']} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['first_spoken']:.2f} | {drafts} | {agg} |")
    c = result.get("step_costs")
    if c:
        rows += ["", f"Vision + prefill: {c['prefill_batch1_s']:.2f} s per prompt alone, {c['prefill_batch4_s']:.2f} s "
                     f"for the batch of 4. Decode step: {1000 * c['decode_step_batch1_s']:.0f} ms at batch 1, "
                     f"{1000 * c['decode_step_batch4_s']:.0f} ms at batch 4."]
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())

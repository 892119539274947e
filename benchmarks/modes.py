"""Benchmark: the answer modes on a SmolVLM-256M-sized random-weight model (issue 4).

    python -m benchmarks.modes [--out DIR] [--dtype float32|bfloat16] [--repeats 3]
                                    [--draft-tokens 1 64 192] [--still-tokens 1 64]

Measured in one run, in one process, on real frames (the flower clip in ../shared/media,
else the sample clip) sized as the app sizes them (longest side 512, no image splitting):

1. Contemplating's K=4 draft requests in ONE batched generate, against the same 4 requests
   generated one after another (each its own generate call, each encoding its own image, as
   a naive implementation would), each draft exactly N new tokens, for each N of
   --draft-tokens. N=1 isolates what batching cannot share on a CPU (vision tower and prefill).
   The views are what `views.build_views` makes from the frames for the question, as the
   session calls it, in two scenes. "filmed": the clip's own frames. The camera creeps in on
   the flower, so the earliest frames of the question's window are a different view from the
   best frame (`vision.same_view`) and a moment is kept: 3 distinct images. "still": the same
   window as if the wearer had held still (every frame the best frame plus sensor-like noise),
   so no moment is kept and the best frame serves three views: 2 distinct images; that scene
   runs at --still-tokens.
2. The wall time of each mode for one question, through `modes.answer` as the session calls
   it, at fixed lengths: every generation runs to its cap (random weights never write
   'Answer:', so Thinking always pays for its forced final-answer pass).

Forward hooks on the vision tower count the images it encoded and the seconds it took in every
timed call (the JSON's `images` and `vision_s`). Compute does not depend on the weight values,
so random weights at the real sizes cost what the real model costs. Each figure is the median
of --repeats runs after one warm-up; on a shared machine each repeat first waits for other
processes to go quiet, and repeats during which others still used more than QUIET cores are
left out of the median and made up for, up to --max-repeats in all (all are in the JSON, with
the cores' worth of CPU others used during each). The model is built once (bf16 on disk) and cached under ~/.cache/glasses-assistant/;
--dtype is what it is loaded and run in (float32, the app's default, or bfloat16, which the
latency benchmark deploys on CPUs with AMX/AVX512-BF16). Results go to OUT/bench_modes.json
and to a table on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "media" / "video" / "mdn_flower_silent_audio.mp4"
QUESTION = ("What kind of flower is this?", 1.5, 3.0)  # text, speech start, speech end (clip seconds)
STILL_NOISE = 2.0  # grey levels (standard deviation) of the noise on the held-still frames
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
    from core.messages import VideoFrame
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


def timed(fn, meter: "VisionMeter | None" = None) -> dict:
    """Wall seconds, this process's CPU seconds, and the cores' worth of CPU that OTHER processes
    used meanwhile: on a shared 2-core machine the wall time is only meaningful when that is ~0.
    With a meter, also the images the vision tower encoded and its seconds."""
    if meter:
        meter.take()
    b0, t0, c0 = _busy_seconds(), time.perf_counter(), time.process_time()
    fn()
    wall, cpu, b1 = time.perf_counter() - t0, time.process_time() - c0, _busy_seconds()
    others = None if b0 is None else max(0.0, (b1 - b0 - cpu) / wall)
    return {"wall": wall, "cpu": cpu, "others": others, **(meter.take() if meter else {})}


class VisionMeter:
    """Images encoded by the vision tower and its seconds, from forward hooks (a few microseconds
    a call): what shows whether views that share a frame shared its encoding."""

    def __init__(self, model):
        tower = model.model.vision_model  # Idefics3 / SmolVLM
        self.images, self.seconds, self._t0 = 0, 0.0, 0.0
        self._handles = [tower.register_forward_pre_hook(self._pre, with_kwargs=True),
                         tower.register_forward_hook(self._post)]

    def _pre(self, module, args, kwargs) -> None:
        pixels = kwargs.get("pixel_values", args[0] if args else None)
        self.images += int(pixels.shape[0])  # (images, 3, H, W)
        self._t0 = time.perf_counter()

    def _post(self, module, args, output) -> None:
        self.seconds += time.perf_counter() - self._t0

    def take(self) -> dict:
        out = {"images": self.images, "vision_s": self.seconds}
        self.images, self.seconds = 0, 0.0
        return out

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def wait_quiet(limit: float, threshold: float = QUIET) -> None:
    """Wait (at most `limit` seconds) until other processes use less than `threshold` cores."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        b0 = _busy_seconds()
        time.sleep(1.0)
        if b0 is None or _busy_seconds() - b0 < threshold:
            return


def undisturbed(runs: list[dict]) -> int:
    return sum(r["others"] is not None and r["others"] < QUIET for r in runs)


def clean(runs: list[dict], key: str = "wall") -> float:
    """Median over the repeats that ran undisturbed (others below QUIET cores); all when none did."""
    quiet = [r[key] for r in runs if r["others"] is not None and r["others"] < QUIET]
    return median(quiet or [r[key] for r in runs])


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.modes", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_modes")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="what the VLM is loaded and run in (default float32, the app's default; bfloat16 is "
                             "what the latency benchmark deploys on CPUs with AMX/AVX512-BF16)")
    parser.add_argument("--repeats", type=int, default=3, help="undisturbed repeats wanted per figure")
    parser.add_argument("--max-repeats", type=int, default=None,
                        help="repeats at most per figure, disturbed ones included (default twice --repeats)")
    parser.add_argument("--draft-tokens", type=int, nargs="+", default=[1, 64, 192])
    parser.add_argument("--still-tokens", type=int, nargs="*", default=[1, 64],
                        help="draft lengths for the held-still scene, whose views share the best frame (none: skip)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--wait-quiet", type=float, default=30.0,
                        help="before each repeat, wait up to this many seconds for other processes to go quiet")
    args = parser.parse_args(argv)
    args.max_repeats = max(args.repeats, args.max_repeats or 2 * args.repeats)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from pipelines import modes
    from pipelines.vlm import cpu_has_bf16
    from core.messages import VLMRequest
    from pipelines.modes import ModeContext
    from pipelines.views import build_views
    from pipelines.vision import fit_for_model, pick_frame
    from pipelines.vlm import HFVLM, SYSTEM_PROMPT, VLMConfig

    if args.dtype == "bfloat16" and not cpu_has_bf16():
        print("warning: this CPU has neither AVX512-BF16 nor AMX: bf16 is emulated, and slow", file=sys.stderr)
    t_start = time.perf_counter()
    load_before = os.getloadavg()  # other work on the machine shows here, and in the spread of the repeats
    path = model_dir()
    vlm = HFVLM(VLMConfig(model=str(path), dtype=args.dtype, threads=args.threads, fixed_length=True))
    vlm.setup()
    meter = VisionMeter(vlm.model)
    with tempfile.TemporaryDirectory() as tmp:
        clip, frames = load_frames(Path(tmp))
    question, start, end = QUESTION

    # The views, as Contemplating builds them: pick_frame and build_views on the ring for the question's window.
    scenes = {}
    for scene, ring in (("filmed", frames), ("still", held_still(frames, pick_frame(frames, start, end)))):
        best = pick_frame(ring, start, end)
        image = fit_for_model(best.image, 512)
        t0 = time.perf_counter()
        views = build_views(K, image=image, best=best, frames=ring, start=start, end=end)
        scenes[scene] = {"ring": ring, "best": best, "image": image, "views": views,
                         "build_views_s": time.perf_counter() - t0,
                         "distinct_images": len({id(v.image) for v in views if v.image is not None})}
    best, image = scenes["filmed"]["best"], scenes["filmed"]["image"]

    def context(said: list, scene: str = "filmed") -> ModeContext:
        sc = scenes[scene]
        request = VLMRequest(question, sc["image"], (), SYSTEM_PROMPT, 60)
        t0 = time.perf_counter()
        return ModeContext(vlm, request, threading.Event(), said.append, frames=sc["ring"], best=sc["best"],
                           start=start, end=end, image_side=512, agents=K, elapsed=lambda: time.perf_counter() - t0)

    cancel = threading.Event()
    print(f"model {path} (random weights, {args.dtype}, {args.threads} threads); clip {clip}", flush=True)
    for scene, sc in scenes.items():
        print(f"  {scene}: question at {start:.1f}-{end:.1f} s, best frame t={sc['best'].t:.2f}, "
              f"image {sc['image'].shape[1]}x{sc['image'].shape[0]}; views: {', '.join(_named(sc['views']))} "
              f"({sc['distinct_images']} distinct images; build_views {1000 * sc['build_views_s']:.0f} ms)", flush=True)

    # warm-up: the first generate of each batch shape allocates and initialises
    warm = modes.draft_requests(context([]), scenes["filmed"]["views"], 2)
    vlm.generate_batch(warm[:1], cancel)
    vlm.generate_batch(warm, cancel)

    ratio_rows = []
    plan = [("filmed", n) for n in args.draft_tokens] + [("still", n) for n in args.still_tokens]
    for scene, n in plan:
        requests = modes.draft_requests(context([], scene), scenes[scene]["views"], n)
        prompt_tokens = vlm.batch_inputs(requests)["attention_mask"].sum(dim=1).tolist()
        batched, sequential = [], []
        for _ in range(args.max_repeats):  # interleaved, so drift in the machine affects both alike
            if undisturbed(batched) < args.repeats:
                wait_quiet(args.wait_quiet)
                batched.append(timed(lambda: vlm.generate_batch(requests, cancel, n, n), meter))
            if undisturbed(sequential) < args.repeats:
                wait_quiet(args.wait_quiet)
                # the naive way: one generate call per draft, each encoding its own image
                sequential.append(timed(lambda: [vlm.generate_batch([r], cancel, n, n) for r in requests], meter))
        row = {"scene": scene, "views": [v.name for v in scenes[scene]["views"]], "draft_tokens": n,
               "prompt_tokens": prompt_tokens, "images_batched": batched[0]["images"],
               "images_sequential": sequential[0]["images"], "batched_runs": batched, "sequential_runs": sequential,
               "batched": clean(batched), "sequential": clean(sequential),
               "batched_cpu": clean(batched, "cpu"), "sequential_cpu": clean(sequential, "cpu"),
               "batched_vision_s": clean(batched, "vision_s"), "sequential_vision_s": clean(sequential, "vision_s")}
        row["ratio"], row["ratio_cpu"] = row["batched"] / row["sequential"], row["batched_cpu"] / row["sequential_cpu"]
        ratio_rows.append(row)
        print(f"{scene}, K={K} drafts of {n} tokens: batched {row['batched']:.2f} s ({row['images_batched']} images, "
              f"vision {row['batched_vision_s']:.2f} s), sequential {row['sequential']:.2f} s "
              f"({row['images_sequential']} images, vision {row['sequential_vision_s']:.2f} s), "
              f"ratio {row['ratio']:.2f} (CPU time {row['ratio_cpu']:.2f}); repeats (wall s, others' cores) "
              f"{_show(batched)} / {_show(sequential)}", flush=True)

    mode_rows = []
    for mode in modes.MODES:
        runs = []
        for _ in range(args.max_repeats):
            if undisturbed(runs) == args.repeats:
                break
            wait_quiet(args.wait_quiet)  # first: the question "ends" when the context is made
            said: list[str] = []
            ctx = context(said)
            first_said = []
            ctx.speak = lambda text, t0=time.perf_counter(): (first_said or first_said.append(time.perf_counter() - t0),
                                                               said.append(text))
            out = {}
            run = timed(lambda: out.update(result=modes.answer(mode, ctx)), meter)
            result = out["result"]
            runs.append({**run, "first_token": result.first_token, "first_spoken": first_said[0] if first_said else None,
                         "cue_t": (result.extra.get("cue") or {}).get("t"),
                         "draft_latency": result.extra.get("draft_latency"),
                         "aggregate_latency": result.extra.get("aggregate_latency"),
                         "answer_forced": result.extra.get("answer_forced"),
                         "draft_views": [d["view"] for d in result.extra.get("drafts", [])] or None,
                         "aggregation_prompt_tokens": _tokens(vlm, result.extra.get("aggregation_prompt"))})
        row = {"mode": mode, "runs": runs, "wall": clean(runs), "cpu": clean(runs, "cpu"),
               "first_spoken": clean(runs, "first_spoken"), "images": runs[0]["images"],
               "vision_s": clean(runs, "vision_s")}
        for key in ("draft_latency", "aggregate_latency"):
            if runs[0][key] is not None:
                row[key] = clean(runs, key)
        mode_rows.append(row)
        print(f"{mode}: wall {row['wall']:.2f} s, first text to speech {row['first_spoken']:.2f} s, "
              f"{row['images']} images encoded; repeats (wall s, others' cores) {_show(runs)}", flush=True)
    meter.close()

    # What a step costs: from the filmed scene's N=1 row (vision + prefill) and its longest row (plus N-1 decode steps).
    filmed = [r for r in ratio_rows if r["scene"] == "filmed"]
    short, long_ = filmed[0], filmed[-1]
    steps = long_["draft_tokens"] - short["draft_tokens"]
    costs = {"vision_per_image_s": short["sequential_vision_s"] / short["images_sequential"]}
    if steps > 0:
        costs.update({"prefill_batch1_s": short["sequential"] / K, "prefill_batch4_s": short["batched"],
                      "decode_step_batch1_s": (long_["sequential"] - short["sequential"]) / K / steps,
                      "decode_step_batch4_s": (long_["batched"] - short["batched"]) / steps})

    result = {
        "command": "python -m benchmarks.modes " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "threads": args.threads, "bf16_instructions": cpu_has_bf16()},
        "model": f"SmolVLM-256M-sized Idefics3, random weights (pipelines.tiny), {args.dtype}", "dtype": args.dtype,
        "clip": clip, "frame_time": best.t, "image": list(image.shape), "question": question, "agents": K,
        "window": [start, end], "still_noise": STILL_NOISE,
        "scenes": {name: {"frame_time": sc["best"].t, "views": [v.name for v in sc["views"]],
                          "view_frame_times": [v.frame_time for v in sc["views"]], "build_views_s": sc["build_views_s"],
                          "distinct_images": sc["distinct_images"]} for name, sc in scenes.items()},
        "views": [v.name for v in scenes["filmed"]["views"]], "distinct_images": scenes["filmed"]["distinct_images"],
        "repeats": args.repeats, "max_repeats": args.max_repeats,
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


def held_still(frames: list, best) -> list:
    """The ring as if the wearer had held still: every frame the best frame plus sensor-like noise
    (STILL_NOISE grey levels), rescored, at the same times; the best frame itself is kept as is."""
    import numpy as np

    from core.messages import VideoFrame
    from pipelines.vision import score

    rng = np.random.default_rng(0)
    ring = []
    for f in frames:
        if f is best:
            ring.append(f)
            continue
        noisy = np.clip(best.image + rng.normal(0, STILL_NOISE, best.image.shape), 0, 255).astype(np.uint8)
        ring.append(score(VideoFrame(f.t, noisy)))
    return ring


def _named(views, times=None) -> list[str]:
    """View names, with the time of the frame for another moment ("another moment (t=1.37 s)")."""
    times = times or [v.frame_time for v in views]
    names = [v if isinstance(v, str) else v.name for v in views]
    return [f"{n} (t={t:.2f} s)" if n.startswith("another moment") and t is not None else n for n, t in zip(names, times)]


def _tokens(vlm, prompt: str | None) -> int | None:
    """Prompt length in tokens of a text-only request (the aggregator's), None without one."""
    from core.messages import VLMRequest
    from pipelines.vlm import SYSTEM_PROMPT

    if not prompt:
        return None
    return int(vlm.batch_inputs([VLMRequest(prompt, None, (), SYSTEM_PROMPT)])["input_ids"].shape[1])


def _show(runs: list[dict]) -> str:
    return ", ".join(f"{r['wall']:.2f} ({r['others']:.2f})" if r["others"] is not None else f"{r['wall']:.2f}"
                     for r in runs)


def table(result: dict) -> str:
    """The tables of BENCHMARKS.md: the views, batched against sequential, the modes."""
    rows = [f"Views (K={result['agents']}, from `views.build_views` on each scene's ring):", ""]
    for name, sc in result["scenes"].items():
        rows.append(f"- {name}: {', '.join(_named(sc['views'], sc['view_frame_times']))}: "
                    f"{sc['distinct_images']} distinct images")
    rows += ["", "| scene | draft tokens (each) | prompt tokens | images encoded (batched / sequential) | "
             "K=4 batched s | 4 sequential s | batched / sequential | same, CPU time |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in result["batched_vs_sequential"]:
        rows.append(f"| {r['scene']} | {r['draft_tokens']} | {min(r['prompt_tokens'])}-{max(r['prompt_tokens'])} | "
                    f"{r['images_batched']} / {r['images_sequential']} | {r['batched']:.2f} | {r['sequential']:.2f} | "
                    f"**{r['ratio']:.2f}** | {r['ratio_cpu']:.2f} |")
    rows += ["", "| mode | wall s (one question) | CPU s | images encoded | first text to speech s | drafts s | "
             "aggregation s |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["modes"]:
        drafts = f"{r['draft_latency']:.2f}" if "draft_latency" in r else "-"
        agg = f"{r['aggregate_latency']:.2f}" if "aggregate_latency" in r else "-"
        rows.append(f"| {r['mode']} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['images']} | {r['first_spoken']:.2f} | "
                    f"{drafts} | {agg} |")
    c = result.get("step_costs")
    if c and "prefill_batch1_s" in c:
        rows += ["", f"Vision tower: {c['vision_per_image_s']:.2f} s per image. Vision + prefill: "
                     f"{c['prefill_batch1_s']:.2f} s per prompt alone, {c['prefill_batch4_s']:.2f} s for the batch of 4 "
                     f"(filmed scene). Decode step: {1000 * c['decode_step_batch1_s']:.0f} ms at batch 1, "
                     f"{1000 * c['decode_step_batch4_s']:.0f} ms at batch 4."]
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())

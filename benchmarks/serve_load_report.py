"""The load benchmark's pure parts: who asks what when, the figures of one run, and the table.

Nothing here starts a process: `benchmarks/serve_load.py` runs the server and the wearers and
hands their session records to `summarize`; the tests check this module on its own.
"""
from __future__ import annotations

import json
import os
import platform
import random
from pathlib import Path

from benchmarks.soak_report import percentile

__all__ = ["percentile", "schedule", "summarize", "table", "markdown", "machine", "versions"]

# Questions for the VLM: none of them a skill's (reading, prices, timers, photos, memory), so each
# one loads the server; tests/test_bench_serve_load.py routes them through the app's own skills.
QUESTIONS = (
    "What is this?", "What colour is the square?", "What is in front of me?", "Is the ball moving?",
    "What shape is in the middle?", "Is there anything red here?", "Is it safe to cross the street now?",
    "What colour is the mug?", "Is there a plant on the table?", "Is the light green?",
    "What is on the wall?", "Is anyone looking at me?",
)


def schedule(wearers: int, duration: float, period: float = 12.0, first: float = 3.0, tail: float = 12.0,
             jitter: float = 2.0, seed: int = 0) -> list[list[tuple[float, str]]]:
    """Each wearer's typed questions, [(media seconds, question)], one list per wearer.

    Every wearer asks once per `period` on average, so the load offered to the server grows
    with the number of wearers and nothing else. Wearer i starts i * period / wearers later
    than wearer 0: the N wearers' questions interleave evenly instead of arriving together.
    Each time moves by up to +-`jitter` (seeded: the same call gives the same schedule), and
    no question comes after `duration - tail`, so the last answer has time to be spoken
    before the clip ends. ValueError (one line) when nothing fits."""
    if wearers < 1:
        raise ValueError(f"wearers must be at least 1, got {wearers}")
    if period <= 2 * jitter:
        raise ValueError(f"period ({period:g} s) must exceed twice the jitter ({jitter:g} s): questions would swap")
    last = duration - tail
    if last < first:
        raise ValueError(f"a {duration:g} s clip leaves no time for a question: it needs at least "
                         f"{first + tail:g} s ({first:g} s lead, {tail:g} s for the last answer)")
    rng = random.Random(seed)
    plans, k = [], 0
    for i in range(wearers):
        asks, t = [], first + jitter + i * period / wearers
        while t <= last - jitter:
            asks.append((round(t + rng.uniform(-jitter, jitter), 2), QUESTIONS[k % len(QUESTIONS)]))
            t += period
            k += 1
        plans.append(asks)
    if not plans[0]:
        raise ValueError(f"a {duration:g} s clip with {period:g} s between questions leaves none to ask")
    return plans


def turn_figures(records: list[dict]) -> dict:
    """What one wearer's session.jsonl says. Its VLM turns (a skill's turn puts no load on the
    server and is only counted) are sorted into: heard (the answer's voice reached the wearer,
    whether or not their next question cut it later), cut before a word (cancelled in the queue or
    before its first audio: their next question, or the clip's end, came first) and failed (no
    answer: the server timed out or refused, and the turn apologised). Latencies are the heard
    turns'."""
    turns = [r for r in records if r.get("type") == "turn"]
    vlm = [t for t in turns if t.get("route", "vlm") != "skill"]
    heard = [t for t in vlm if t.get("answer") and (t.get("latency") or {}).get("voice_to_voice") is not None]
    lat = [t["latency"] for t in heard]
    return {
        "turns": len(turns), "skill": len(turns) - len(vlm), "heard": len(heard),
        "cut": sum(1 for t in vlm if t.get("cancelled") and t not in heard),
        "failed": sum(1 for t in vlm if not t.get("answer") and not t.get("cancelled")),
        "whole": sum(1 for t in heard if not t.get("cancelled")),
        "v2v": [x["voice_to_voice"] for x in lat],
        "ttft": [x["vlm_first_token"] for x in lat if x.get("vlm_first_token") is not None],
        "vlm_total": [x["vlm_total"] for x in lat if x.get("vlm_total")],
        "errors": [r.get("message", "") for r in records if r.get("type") == "error"],
    }


def summarize(wearers: int, sessions: list[list[dict]], asked: int, window: float, cpu: dict,
              tokens: dict | None = None) -> dict:
    """One row of the table: `sessions` holds each wearer's records, `asked` the questions
    scheduled, `window` the clip's seconds (the time over which answers are counted), `cpu`
    the monitor's figures, `tokens` the probe's usage (prompt/completion tokens)."""
    per = [turn_figures(r) for r in sessions]
    pool = {k: [v for p in per for v in p[k]] for k in ("v2v", "ttft", "vlm_total", "errors")}
    count = {k: sum(p[k] for p in per) for k in ("turns", "skill", "heard", "cut", "failed", "whole")}
    return {
        "wearers": wearers, "asked": asked, **count,
        "v2v_p50": percentile(pool["v2v"], 0.5), "v2v_p95": percentile(pool["v2v"], 0.95),
        "v2v_max": max(pool["v2v"], default=None), "ttft_p50": percentile(pool["ttft"], 0.5),
        "ttft_p95": percentile(pool["ttft"], 0.95), "vlm_total_p50": percentile(pool["vlm_total"], 0.5),
        "answers_per_min": round(count["heard"] / (window / 60.0), 2) if window > 0 else None,
        "gen_tokens": (tokens or {}).get("completion_tokens"), "prompt_tokens": (tokens or {}).get("prompt_tokens"),
        "errors": sorted(set(pool["errors"]))[:5], "n_errors": len(pool["errors"]), **cpu,
    }


def _num(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


COLUMNS = ("wearers", "answers heard / asked", "cut before a word / failed", "voice to voice p50 s", "p95 s",
           "first token p50 s", "p95 s", "answers heard / min", "server CPU cores (% of machine)",
           "clients CPU cores", "others CPU cores", "generated tokens / answer")


def table(rows: list[dict]) -> str:
    """The markdown table, one row per number of wearers."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---:|" * len(COLUMNS)]
    for r in rows:
        cells = [str(r["wearers"]), f"{r['heard']} / {r['asked']}", f"{r['cut']} / {r['failed']}",
                 _num(r["v2v_p50"]), _num(r["v2v_p95"]), _num(r["ttft_p50"]), _num(r["ttft_p95"]),
                 _num(r["answers_per_min"], 1),
                 f"{_num(r.get('server_cores'))} ({_num(r.get('server_pct'), 0)} %)",
                 _num(r.get("clients_cores")), _num(r.get("others_cores")),
                 "-" if r.get("gen_tokens") is None else str(r["gen_tokens"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bend(rows: list[dict]) -> str:
    """One line on where the curve bends: the first step up in wearers after which answers per
    minute fell below 3/4 of what the extra questions would give (the server saturated), or
    the voice-to-voice p50 more than doubled (the queue grew)."""
    for prev, row in zip(rows, rows[1:]):
        if None in (prev["answers_per_min"], row["answers_per_min"], prev["v2v_p50"], row["v2v_p50"]):
            continue
        expected = prev["answers_per_min"] * row["asked"] / max(prev["asked"], 1)
        if row["answers_per_min"] < 0.75 * expected or row["v2v_p50"] > 2 * prev["v2v_p50"]:
            return (f"The curve bends between {prev['wearers']} and {row['wearers']} wearers: answers per minute "
                    f"{prev['answers_per_min']:.1f} -> {row['answers_per_min']:.1f} (linear would be "
                    f"{expected:.1f}), voice to voice p50 {prev['v2v_p50']:.2f} -> {row['v2v_p50']:.2f} s.")
    return "No bend within the wearers measured: answers per minute grew with the questions asked."


def markdown(meta: dict, rows: list[dict]) -> str:
    """The report: what ran, on what, the table, and the line on the bend."""
    lines = [f"# Many wearers on one server ({meta['date']})", "",
             f"Command: `{meta['command']}`",
             f"Machine: {meta['machine']}. Versions: {meta['versions']}.",
             f"Server: {meta['server']}", f"Wearers: {meta['wearers_note']}", "",
             table(rows), "", bend(rows)]
    for note in meta.get("notes", []):
        lines += ["", note]
    return "\n".join(lines) + "\n"


# --- what ran, on what ---------------------------------------------------------------------
def machine() -> str:
    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
    import psutil

    return (f"{platform.machine()} {cpu}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in ("torch", "transformers", "fastapi", "uvicorn", "openai"):
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            out.append(f"{name} missing")
    return ", ".join(out)


def server_args(model_dir: Path, dtype: str, batching: bool, splitting: bool) -> list[str]:
    """transformers serve's options: the dtype, continuous batching, and images processed as the
    app does locally (one tile, no splitting) unless `splitting`."""
    args = ["--dtype", dtype, "--continuous-batching" if batching else "--no-continuous-batching"]
    if not splitting:
        config = json.loads((model_dir / "processor_config.json").read_text())["image_processor"]
        tile = config["max_image_size"]["longest_edge"]
        kwargs = {"processor_kwargs": {"do_image_splitting": False, "size": {"longest_edge": tile}}}
        args += ["--chat-template-kwargs", json.dumps(kwargs)]
    return args


def server_line(size: str, dtype: str, device: str, batching: str, splitting: bool) -> str:
    images = "split as the processor defaults" if splitting else "one tile, no splitting (as the app does locally)"
    return (f"`transformers serve`, a {size}-sized Idefics3 with random weights, {dtype}, {device}; "
            f"continuous batching: {batching}; images: {images}")


def wearers_line(duration: float, period: float, cores: int) -> str:
    return (f"`demo.py replay --pace realtime` each, a {duration:g} s silent clip, one typed question every "
            f"~{period:g} s per wearer (staggered, +-2 s; a wearer's next question cuts their previous answer, as "
            f"the app does), tiny random Whisper; the server and the wearers share the same {cores} cores")


def batching_used(text: str) -> str:
    """What the server did with --continuous-batching, from its log's text."""
    if "does not support continuous batching" in text:
        return "asked for, not used: this model falls back to sequential generation (one request at a time)"
    if "CB: True" in text:
        return "used"
    return "not asked for" if "CB: False" in text else "unknown (no request logged)"


def history_of(sessions: list[list[dict]]) -> tuple:
    """Three answered turns of one wearer: what a later question carries as its history."""
    for records in sessions:
        turns = [(t["question"], t["answer"]) for t in records if t.get("type") == "turn" and t.get("answer")]
        if len(turns) >= 3:
            return tuple(turns[:3])
    return ()


def notes(meta: dict, rows: list[dict]) -> list[str]:
    p, h = meta.get("probe", {}), meta.get("probe_with_history", {})
    notes = [f"One answer alone (probe, no other load from this benchmark): first token {p.get('ttft')} s, "
             f"{p.get('completion_tokens')} tokens in {p.get('total')} s (finish: {p.get('finish_reason')}); "
             f"prompt {p.get('prompt_tokens')} tokens"
             + (f", {h.get('prompt_tokens')} with 3 turns of history" if h else "") + "."]
    if p.get("total"):
        notes.append(f"Why it bends: the server generates one answer at a time, and alone one answer keeps it busy "
                     f"{p['total']:.1f} s, so it cannot give more than about {60 / p['total']:.0f} answers a minute "
                     "however many wearers ask; past that, questions wait in its queue, and a wearer's next "
                     "question cancels the one still waiting (the app's own rule), so answers are cut before a "
                     "word. On this machine the wearers' own processes (decoding, VAD, speech) take cores from "
                     "the server too (the clients column); glasses would run them on their own hardware.")
    skill = sum(r.get("skill", 0) for r in rows)
    if skill:
        notes.append(f"{skill} question(s) went to a skill, not the server: not counted as answers.")
    bad = [f"{r['wearers']}: {r['exit_codes']}" for r in rows if any(c not in (0, None) for c in r["exit_codes"])]
    if bad:
        notes.append("Wearers that did not exit 0 (wearers: codes): " + "; ".join(bad) + ".")
    return notes


# --- what the wearers left ------------------------------------------------------------------
def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def grep_line(path: Path, words: str) -> str:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return next((x.strip() for x in reversed(lines) if words in x), "")


def last_line(path: Path) -> str:
    lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()] if path.exists() else []
    return lines[-1][:200] if lines else "(no output)"

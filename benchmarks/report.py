"""The latency benchmark's figures, as pure functions of the recorded times.

A turn's timeline (built by bench.timelines) holds session times in seconds: the true
speech window from the scenario, when the endpointer decided, the ASR call, the VLM call and
each forward pass, each piece sent to TTS and when its audio was ready, each clip handed to
the speaker. Every figure below is a difference of those times, so the figures add up:

    voice_to_voice = wait + asr_wait + spec_wait + vlm_on_path + tts + overhead
    overhead       = to_asr + to_vlm + to_tts + to_speaker   (queues, threads, copies)

`wait` is the policy part, silence waited for: the endpointing wait, except when an answer
begun on the early transcript (`path` "early answer") finished its first chunk after the
endpointer decided: then the answer's own chain is the critical path, and its wait is the
silence before early ASR started. When that answer was ready before the decision (`path`
"endpointer"), the path is the endpointing wait, the confirmation and TTS.

`asr_wait` is the part of the ASR after the endpointer's decision: all of it without early
ASR, what is left of it (often nothing) when it started at the pause. Speculative vision
runs before the question ends (`spec_vision`); reused, it leaves no vision on the path, but
a turn whose prepare() is still running waits for it (`spec_wait`: model compute on the path).

`vlm_to_chunk` runs from the VLM call to the end of the forward pass that produced the last
token the first speech chunk needed (the streamer releases a word when the next token
arrives, so that is one token past the chunk's last word). The endpointing wait is a policy
(how much silence ends a turn), not overhead, so it is taken out of the overhead too.
"""
from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

# (key, label, meaning): the per-stage figures, in the order of the table.
STAGES = (
    ("endpoint_wait", "endpointing wait", "true end of speech -> the endpointer ends the turn"),
    ("asr", "ASR", "Whisper on the utterance (encoder on 30 s + capped decode)"),
    ("asr_wait", "ASR on the critical path", "endpointer's decision -> transcript (0: early ASR was done first)"),
    ("spec_vision", "speculative vision (off the path)", "prepare(): frame encoding + prefix prefill while speaking"),
    ("spec_ready", "speculative vision ready", "when prepare() finished, seconds after the true end of speech"),
    ("spec_wait", "waiting for speculative vision", "transcript ready -> prepare() done, when the turn had to wait"),
    ("preprocess", "VLM preprocess", "VLM call -> first forward (chat template, image resize, tokens)"),
    ("vision", "vision encoding", "vision tower + connector on one 512 px frame, after the question (0: reused)"),
    ("prefill", "prefill", "first forward pass of the answer minus the vision encoding"),
    ("first_token", "first token", "VLM call -> first token's text out of the streamer"),
    ("first_chunk", "first speech chunk", "VLM call -> first chunk handed to TTS"),
    ("tts", "TTS", "synthesis of the first chunk (pyttsx3 + espeak-ng)"),
    ("first_audio", "first audio", "first chunk handed to TTS -> its audio handed to the speaker"),
    ("voice_to_voice", "voice to voice", "true end of speech -> first answer sample handed to the speaker"),
    ("overhead", "pipeline overhead", "voice to voice minus the wait and the critical-path compute"),
)
EXTRA = ("wait", "vlm_on_path", "vad_end_error", "decode_to_chunk", "vlm_to_chunk", "to_asr", "to_vlm", "to_tts", "to_speaker",
         "session_voice_to_voice", "others_cores")
NAIVE = ("endpoint_wait", "asr", "vision", "prefill", "vlm", "tts", "voice_to_voice")
TARGETS = (  # (figure, comparison, bound, unit): issue 5's CPU targets
    ("voice_to_voice.p50", "<=", 1.0, "s"),
    ("naive_ratio", ">=", 3.0, "x"),
    ("overhead.p95", "<=", 0.030, "s"),
    ("idle_cpu_pct", "<", 5.0, "% of one core"),
)
REQUIRED = ("voice_to_voice.p50", "voice_to_voice.p95", "overhead.p95", "naive_ratio", "naive.voice_to_voice.p50",
            "peak_rss_mb", "cpu.session_s", "idle_cpu_pct", "primary", "machine", "date", "command", "targets",
            *(f"stages.{k}.{p}" for k, _, _ in STAGES for p in ("p50", "p95") if not k.startswith("spec_")))


def summarize(values) -> dict:
    """p50 and p95 (linear interpolation between ranks, numpy's default), mean, extremes, n."""
    v = [float(x) for x in values if x is not None]
    if not v:
        return {"p50": None, "p95": None, "mean": None, "min": None, "max": None, "n": 0}
    return {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95)), "mean": statistics.fmean(v),
            "min": min(v), "max": max(v), "n": len(v)}


def turn_figures(tl: dict) -> dict:
    """Every figure of one turn, in seconds, from its timeline."""
    s_end = tl["speech"][1]
    fwd = tl["forwards"]
    call, detected = tl["vlm_call"], tl["detected"]
    asr0, asr1 = tl["asr"]
    _, submit, done = tl["tts"][0]
    hand = tl["plays"][0][1]
    need = min(tl["need_tokens"], len(fwd))
    # The forward that produced the token the first chunk waited for; if the turn stopped early,
    # the last one that ended before the chunk went out.
    k = need - 1 if need else max((i for i, (_, b) in enumerate(fwd) if b <= submit), default=None)
    chunk_ready = fwd[k][1] if k is not None else call
    vis = tl.get("vision")
    vision = (vis[1] - vis[0]) if vis else 0.0
    preps = tl.get("prepares") or []
    # transformers runs the vision tower either inside the first forward or just before it
    inside = bool(vis and fwd and vis[0] >= fwd[0][0])
    ready = max(detected, asr1)  # the question is known: the answer could start
    reused = (tl.get("speculation") or {}).get("vision") == "reused"
    spec_wait = max(0.0, min(preps[-1][1], call) - ready) if preps and reused else 0.0
    f = {
        "endpoint_wait": detected - s_end,
        "vad_end_error": tl["vad_speech"][1] - s_end,
        "asr": asr1 - asr0,
        "asr_wait": max(0.0, asr1 - max(detected, asr0)),
        "spec_vision": (preps[-1][1] - preps[-1][0]) if preps else None,
        "spec_ready": (preps[-1][1] - s_end) if preps else None,
        "spec_wait": spec_wait,
        "preprocess": (min(fwd[0][0], vis[0] if vis else fwd[0][0]) - call) if fwd else None,
        "vision": vision,
        "prefill": (fwd[0][1] - fwd[0][0] - (vision if inside else 0.0)) if fwd else None,
        "first_token": (tl["first_piece"] - call) if tl.get("first_piece") is not None else None,
        "first_chunk": submit - call,
        "decode_to_chunk": (chunk_ready - fwd[0][1]) if fwd else None,
        "vlm_to_chunk": chunk_ready - call,
        "tts": done - submit,
        "first_audio": hand - submit,
        "voice_to_voice": hand - s_end,
        "to_asr": max(0.0, asr0 - detected),
        "to_vlm": call - ready - spec_wait,
        "to_tts": submit - chunk_ready,
        "to_speaker": hand - done,
    }
    f["path"], f["wait"], f["vlm_on_path"] = "after decision", f["endpoint_wait"], f["vlm_to_chunk"]
    if call < detected:  # the answer was begun on the early transcript, before the endpointer decided
        f["to_asr"] = 0.0
        if chunk_ready >= detected:  # ... and its first chunk came after the decision: its chain was critical
            spec_wait = max(0.0, min(preps[-1][1], call) - asr1) if preps and reused else 0.0
            f.update(path="early answer", wait=asr0 - s_end, asr_wait=asr1 - asr0, spec_wait=spec_wait,
                     to_vlm=call - asr1 - spec_wait)
        else:  # ... and its first chunk waited for the decision: only the confirmation and TTS follow it
            f.update(path="endpointer", asr_wait=0.0, spec_wait=0.0, vlm_on_path=0.0, to_vlm=0.0,
                     to_tts=submit - detected)
    f["overhead"] = f["voice_to_voice"] - f["wait"] - f["asr_wait"] - f["spec_wait"] - f["vlm_on_path"] - f["tts"]
    v2v = tl.get("session_latency", {}).get("voice_to_voice")
    f["session_voice_to_voice"] = v2v  # the session's own figure (from the VAD's end, not the true end)
    f["others_cores"] = tl.get("others_cores")  # other processes' CPU while this turn was answered
    return f


def _get(d: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def missing_keys(report: dict) -> list[str]:
    """The REQUIRED fields that are absent or None (a smoke test checks there are none)."""
    return [k for k in REQUIRED if _get(report, k) is None]


def config_summary(raw: dict) -> dict:
    """One configuration's figures from the raw result of bench.run_config."""
    figs = [turn_figures(t) for t in raw["turns"]]
    stages = {k: summarize(f[k] for f in figs) for k in [s for s, _, _ in STAGES] + list(EXTRA)}
    naive = {k: summarize(r[k] for r in raw["naive"]) for k in NAIVE}
    ours, theirs = stages["voice_to_voice"]["p50"], naive["voice_to_voice"]["p50"]
    typical = None
    if figs:  # the turn whose voice-to-voice is nearest the median: the waterfall draws it
        typical = min(range(len(figs)), key=lambda i: abs(figs[i]["voice_to_voice"] - ours))
    q = raw["turns"][typical]["question"] if typical is not None else None
    return {
        "dtype": raw["dtype"], "attempt": raw.get("attempt", 1),
        "voice_to_voice": {k: stages["voice_to_voice"][k] for k in ("p50", "p95")},
        "overhead": {k: stages["overhead"][k] for k in ("p50", "p95")},
        "naive": naive,
        "naive_ratio": (theirs / ours) if ours and theirs else None,
        "stages": stages,
        "questions": len(raw["scenario"]["questions"]), "turns_answered": len(figs),
        "peak_rss_mb": raw["peak_rss_mb"],
        "cpu": {"session_s": raw["session"]["cpu_s"], "session_wall_s": raw["session"]["wall_s"],
                "device_sim_s": raw["session"].get("device_cpu_s"),
                "session_cores": raw["session"]["cpu_s"] / raw["session"]["wall_s"],
                "naive_s": raw["naive_run"]["cpu_s"], "naive_wall_s": raw["naive_run"]["wall_s"],
                # CPU other processes took from the same cores while we measured: should be ~0
                "other_processes_cores": raw["session"].get("other_processes_cores"),
                "other_processes_cores_naive": raw["naive_run"].get("other_processes_cores")},
        "idle_cpu_pct": raw["idle"]["cpu_pct_of_one_core"], "idle": raw["idle"],
        "load_s": raw["load_s"], "warmup_s": raw["warmup_s"], "silence": raw["silence"],
        "prompt_tokens": raw["prompt_tokens"], "answer_tokens": raw["answer_tokens"],
        "first_chunk_tokens": raw["first_chunk_tokens"], "first_chunk_text": raw["first_chunk_text"],
        "session_records": raw["session"]["records"], "models": {"vlm": raw["vlm_dir"], "asr": raw["asr_dir"]},
        "speculation": speculation_counts(raw["turns"]),
        "turns": figs, "typical_turn": typical,
        "timeline": raw["turns"][typical] if typical is not None else None,
        "naive_typical": next((r for r in raw["naive"] if r["question"] == q), None),
    }


def speculation_counts(timelines: list[dict]) -> dict:
    """How often speculative vision and early ASR were reused or redone, over the answered turns."""
    out: dict = {"vision": {}, "asr": {}, "vision_redone_while_speaking": 0}
    for tl in timelines:
        spec = tl.get("speculation") or {}
        for kind in ("vision", "asr"):
            value = spec.get(kind, "none")
            out[kind][value] = out[kind].get(value, 0) + 1
        out["vision_redone_while_speaking"] += spec.get("redone_while_speaking", 0)
    return out


def check_targets(summary: dict) -> dict:
    """Each of issue 5's targets: the value, whether it is met, and by how much it is missed."""
    compare = {"<=": lambda v, b: v <= b, ">=": lambda v, b: v >= b, "<": lambda v, b: v < b}
    out = {}
    for key, op, bound, unit in TARGETS:
        value = _get(summary, key)
        met = None if value is None else compare[op](value, bound)
        miss = None
        if met is False:
            miss = value - bound if op in ("<=", "<") else bound - value
        out[key] = {"target": f"{op} {bound:g} {unit}", "value": value, "met": met, "miss_by": miss}
    return out


def build(results: list[dict], meta: dict) -> dict:
    """The report: every configuration, and at the top the primary one (bf16 where it ran:
    what one would deploy on this CPU) with the issue's fields and the targets."""
    configs = {r["dtype"]: config_summary(r) for r in results}
    primary = "bfloat16" if "bfloat16" in configs else next(iter(configs), None)
    top = configs.get(primary, {})
    report = {**meta, "primary": primary, "definitions": {k: what for k, _, what in STAGES}}
    for key in ("voice_to_voice", "overhead", "naive_ratio", "naive", "stages", "peak_rss_mb", "cpu", "idle_cpu_pct"):
        report[key] = top.get(key)
    report["targets"] = check_targets(top) if top else {}
    report["configs"] = configs
    return report


def _s(x) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) else "-"


def table(report: dict) -> str:
    """One markdown table: p50 / p95 seconds per stage and configuration, then the naive cascade."""
    names = list(report["configs"])
    head = "| stage | " + " | ".join(f"{n} p50 | {n} p95" for n in names) + " |"
    rows = [head, "|---|" + "---:|" * (2 * len(names))]
    for key, label, _ in STAGES:
        cells = [c for n in names for c in (_s(report["configs"][n]["stages"][key]["p50"]),
                                            _s(report["configs"][n]["stages"][key]["p95"]))]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    for key in NAIVE:
        cells = [c for n in names for c in (_s(report["configs"][n]["naive"][key]["p50"]),
                                            _s(report["configs"][n]["naive"][key]["p95"]))]
        label = {"vlm": "whole answer (VLM)", "tts": "TTS of the whole answer"}.get(key, key.replace("_", " "))
        rows.append(f"| naive: {label} | " + " | ".join(cells) + " |")
    rows.append("| other processes during a turn, cores | " + " | ".join(
        f"{_s(report['configs'][n]['stages']['others_cores']['p50'])} | "
        f"{_s(report['configs'][n]['stages']['others_cores']['p95'])}" for n in names) + " |")
    rows.append("| turns on each critical path: after the decision / early answer / endpointer | " + " | ".join(
        f"{_paths(report['configs'][n])} | " for n in names) + " |")
    for kind in ("vision", "asr"):
        rows.append(f"| speculative {'vision' if kind == 'vision' else 'early ASR'}: turns reused / redone / other | " +
                    " | ".join(f"{_counts(report['configs'][n].get('speculation', {}).get(kind, {}))} | "
                               for n in names) + " |")
    rows.append("| naive / ours (p50) | " +
                " | ".join(f"{_x(report['configs'][n]['naive_ratio'])} | " for n in names) + " |")
    rows.append("| peak RSS, MB | " + " | ".join(f"{report['configs'][n]['peak_rss_mb']:.0f} | " for n in names) + " |")
    rows.append("| CPU, cores busy in the session | " +
                " | ".join(f"{report['configs'][n]['cpu']['session_cores']:.2f} | " for n in names) + " |")
    rows.append("| idle session CPU, % of one core | " +
                " | ".join(f"{report['configs'][n]['idle_cpu_pct']:.1f} | " for n in names) + " |")
    return "\n".join(rows)


def _paths(config: dict) -> str:
    paths = [t.get("path") for t in config.get("turns", [])]
    return " / ".join(str(paths.count(p)) for p in ("after decision", "early answer", "endpointer"))


def _counts(c: dict) -> str:
    other = sum(v for k, v in c.items() if k not in ("reused", "redone"))
    return f"{c.get('reused', 0)} / {c.get('redone', 0)} / {other}"


def _x(v) -> str:
    return f"{v:.2f}x" if v is not None else "-"


def waterfall(report: dict, path: Path) -> Path | None:
    """PNG of the primary configuration's typical turn: each stage as a bar on one time axis
    (0 = true end of speech), so what overlaps shows; the naive cascade below for the same question."""
    top = report["configs"].get(report.get("primary"))
    if not top or not top.get("timeline"):
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    tl, naive, fig_v = top["timeline"], top["naive_typical"], top["turns"][top["typical_turn"]]
    z = tl["speech"][1]
    fwd = tl["forwards"]
    v2v = fig_v["voice_to_voice"]
    right = max(v2v, naive["voice_to_voice"] if naive else 0, fwd[-1][1] - z if fwd else 0) + 0.6
    left = min([tl["speech"][0]] + [a for a, _ in tl.get("prepares") or []]) - z - 0.2
    # (label, [(start, end)], colour): one row each, top to bottom
    rows: list[tuple[str, list[tuple[float, float]], str]] = [
        ("question (speech)", [(tl["speech"][0] - z, 0.0)], "0.55"),
        ("hearing: VAD every 32 ms", [(left, right)], "0.92"),
        ("endpointing wait", [(0.0, tl["detected"] - z)], "0.75"),
        ("ASR" + (" (early, from the pause)" if tl.get("asr_early") else ""),
         [(tl["asr"][0] - z, tl["asr"][1] - z)], "tab:blue"),
    ]
    if tl.get("prepares"):
        rows.append(("speculative vision + prefix", [(a - z, b - z) for a, b in tl["prepares"]], "tab:brown"))
    if fwd:
        vis = tl.get("vision")
        rows.append(("VLM preprocess", [(tl["vlm_call"] - z, min(fwd[0][0], vis[0] if vis else fwd[0][0]) - z)],
                     "tab:cyan"))
        if vis:
            rows.append(("vision encoding", [(vis[0] - z, vis[1] - z)], "tab:orange"))
        rows.append(("prefill", [(max(fwd[0][0], vis[1] if vis else 0.0) - z, fwd[0][1] - z)], "tab:red"))
        rows.append((f"decode ({len(fwd) - 1} tokens)", [(a - z, b - z) for a, b in fwd[1:]], "tab:purple"))
    rows.append(("TTS (each chunk)", [(s - z, d - z) for _, s, d in tl["tts"]], "tab:green"))
    rows.append(("playback (each chunk)", [(s - z, e - z) for _, _, s, e in tl["plays"]], "tab:olive"))
    fig, ax = plt.subplots(figsize=(11, 0.42 * (len(rows) + 1) + 1.6))
    for y, (label, spans, colour) in enumerate(rows):
        edge = "white" if len(spans) > 8 else "black"  # many thin decode steps: dark edges would hide them
        for a, b in spans:
            ax.barh(y, max(b - a, 0.02), left=a, height=0.6, color=colour, edgecolor=edge, linewidth=0.3)
    labels = [r[0] for r in rows]
    if naive:  # the naive cascade for the same question: each step after the one before
        t, y = naive["endpoint_wait"], len(rows)
        ax.barh(y, t, left=0.0, height=0.6, color="0.75", edgecolor="black", linewidth=0.3)
        for key, colour in (("asr", "tab:blue"), ("vlm", "tab:purple"), ("tts", "tab:green")):
            ax.barh(y, max(naive[key], 0.02), left=t, height=0.6, color=colour, alpha=0.45, edgecolor="black",
                    linewidth=0.3)
            t += naive[key]
        labels.append("naive: ASR, whole answer, TTS")
        ax.axvline(naive["voice_to_voice"], color="0.3", lw=1.2, ls="--", zorder=0)
        ax.text(naive["voice_to_voice"], 2, f" naive first audio {naive['voice_to_voice']:.2f} s",
                color="0.3", va="center")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=1, zorder=0)
    ax.axvline(v2v, color="tab:green", lw=1.5, ls="--", zorder=0)
    ax.text(v2v, 0, f" first audio {v2v:.2f} s", color="tab:green", va="center")
    ax.set_xlim(left, right)
    ax.set_xlabel("seconds from the true end of the question")
    ax.set_title(f"One typical turn ({report['primary']}, \"{tl['question']}\"): every stage on one clock; "
                 f"pipeline overhead {fig_v['overhead'] * 1000:.0f} ms", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)

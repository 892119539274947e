"""The latency benchmark's figures, as pure functions of the recorded times.

A turn's timeline (built by bench.timelines) holds session times in seconds: the true
speech window from the scenario, when the endpointer decided, the ASR call, the VLM call and
each forward pass, each piece sent to TTS and when its audio was ready, each clip handed to
the speaker. Every figure below is a difference of those times, so the figures add up:

    voice_to_voice = wait + asr_wait + spec_wait + vlm_on_path + tts + overhead
    overhead       = to_asr + to_vlm + to_tts + to_speaker + to_device   (queues, threads, copies)

Voice to voice ends when the output device's callback sends the answer's first sample
(`device`); a timeline without it (older runs, tests) ends at the hand-over to the speaker.
The device's own output latency comes after that and is reported apart.

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

import numpy as np

from benchmarks.report_chart import waterfall  # noqa: F401 - the chart of one typical turn, used from here

# (key, label, meaning): the per-stage figures, in the order of the table.
STAGES = (
    ("endpoint_wait", "endpointing wait", "true end of speech -> the endpointer ends the turn"),
    ("asr", "ASR", "Whisper on the utterance (encoder on a 15 s window + capped decode)"),
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
    ("to_device", "speaker to device", "audio handed to the speaker -> its first sample sent by the device callback"),
    ("voice_to_voice", "voice to voice", "true end of speech -> first answer sample sent to the output device"),
    ("overhead", "pipeline overhead", "voice to voice minus the wait and the critical-path compute"),
)
EXTRA = ("wait", "vlm_on_path", "vad_end_error", "decode_to_chunk", "vlm_to_chunk", "to_asr", "to_vlm", "to_tts", "to_speaker",
         "session_voice_to_voice", "others_cores")
NAIVE = ("endpoint_wait", "asr", "vision", "prefill", "vlm", "tts", "voice_to_voice")
TARGETS = (  # (figure, comparison, bound, unit): the best case's goals on a 2-core CPU (issue 10)
    ("voice_to_voice.p50", "<=", 0.7, "s"),
    ("naive_ratio", ">=", 4.0, "x"),
    ("overhead.p95", "<=", 0.030, "s"),
    ("idle_cpu_pct", "<", 5.0, "% of one core"),
)
REALISTIC_TARGETS = (  # the realistic scenario's goals (issue 10)
    ("voice_to_voice.p50", "<=", 0.9, "s"),
    ("voice_to_voice.p95", "<=", 1.4, "s"),
    ("naive_ratio", ">=", 3.0, "x"),
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
    device = tl.get("device") if tl.get("device") is not None else hand
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
        "to_device": device - hand,
        "voice_to_voice": device - s_end,
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
    """One configuration's figures from the raw result of bench.run_config. A turn that was cut
    short (answered at a pause inside its question) has no voice to voice: it is counted apart."""
    timelines = [t for t in raw["turns"] if not t.get("cut_short")]
    figs = [turn_figures(t) for t in timelines]
    stages = {k: summarize(f[k] for f in figs) for k in [s for s, _, _ in STAGES] + list(EXTRA)}
    naive = {k: summarize(r[k] for r in raw["naive"]) for k in NAIVE}
    ours, theirs = stages["voice_to_voice"]["p50"], naive["voice_to_voice"]["p50"]
    typical = None
    if figs:  # the turn whose voice-to-voice is nearest the median: the waterfall draws it
        typical = min(range(len(figs)), key=lambda i: abs(figs[i]["voice_to_voice"] - ours))
    q = timelines[typical]["question"] if typical is not None else None
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
        "speculation": speculation_counts(timelines, raw["session"]["records"]),
        "turns_cut_short": len(raw["turns"]) - len(timelines),
        "ended_early": raw.get("ended_early", []), "unanswered": raw.get("unanswered", []),
        "others_heard": raw.get("others_heard", []),
        "others_answered": sum(o["answered"] for o in raw.get("others_heard", [])),
        "output_device": raw.get("output_device"), "session_config": raw.get("session_config"),
        "scenario": {k: v for k, v in raw["scenario"].items() if k != "questions"},
        "turns": figs, "typical_turn": typical,
        "timeline": timelines[typical] if typical is not None else None,
        "naive_typical": next((r for r in raw["naive"] if r["question"] == q), None),
    }


def speculation_counts(timelines: list[dict], records: dict | None = None) -> dict:
    """How often speculative vision and early ASR were reused or redone, and answers begun on the
    early transcript, over the answered turns; `records` (the session log's count of each record
    type) adds the speculative answers that were discarded (speech went on after a pause)."""
    out: dict = {"vision": {}, "asr": {}, "answer": {}, "vision_redone_while_speaking": 0}
    for tl in timelines:
        spec = tl.get("speculation") or {}
        for kind in ("vision", "asr", "answer"):
            value = spec.get(kind, "none")
            out[kind][value] = out[kind].get(value, 0) + 1
        out["vision_redone_while_speaking"] += spec.get("redone_while_speaking", 0)
    out["answers_discarded"] = (records or {}).get("speculative_answer", 0)
    return out


def check_targets(summary: dict, targets=TARGETS) -> dict:
    """Each target: the value, whether it is met, and by how much it is missed."""
    compare = {"<=": lambda v, b: v <= b, ">=": lambda v, b: v >= b, "<": lambda v, b: v < b}
    out = {}
    for key, op, bound, unit in targets:
        value = _get(summary, key)
        met = None if value is None else compare[op](value, bound)
        miss = None
        if met is False:
            miss = value - bound if op in ("<=", "<") else bound - value
        out[key] = {"target": f"{op} {bound:g} {unit}", "value": value, "met": met, "miss_by": miss}
    return out


def build(results: list[dict], meta: dict, targets=TARGETS) -> dict:
    """The report: every configuration, and at the top the primary one (bf16 where it ran:
    what one would deploy on this CPU) with the issue's fields and the targets."""
    configs = {r["dtype"]: config_summary(r) for r in results}
    primary = "bfloat16" if "bfloat16" in configs else next(iter(configs), None)
    top = configs.get(primary, {})
    report = {**meta, "primary": primary, "definitions": {k: what for k, _, what in STAGES}}
    for key in ("voice_to_voice", "overhead", "naive_ratio", "naive", "stages", "peak_rss_mb", "cpu", "idle_cpu_pct",
                "speculation", "output_device", "scenario"):
        report[key] = top.get(key)
    report["targets"] = check_targets(top, targets) if top else {}
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
    rows.append("| speculative vision prepared again while the question was spoken (head turns) | " + " | ".join(
        f"{report['configs'][n].get('speculation', {}).get('vision_redone_while_speaking', 0)} | " for n in names) + " |")
    rows.append("| speculative answer: begun early / after the decision / discarded | " + " | ".join(
        f"{_answers(report['configs'][n].get('speculation', {}))} | " for n in names) + " |")
    rows.append("| turns timed / questions unanswered / turns ended at a pause inside the question (heard) | " +
                " | ".join(f"{report['configs'][n]['turns_answered']} / {len(report['configs'][n].get('unanswered', []))}"
                           f" / {_early(report['configs'][n])} | " for n in names) + " |")
    if any(report["configs"][n].get("others_heard") for n in names):
        rows.append("| someone else's speech: answered / heard | " + " | ".join(
            f"{report['configs'][n]['others_answered']} / {len(report['configs'][n]['others_heard'])} | "
            for n in names) + " |")
    rows.append("| output device: latency it reports, s (after voice to voice) | " + " | ".join(
        f"{_s((report['configs'][n].get('output_device') or {}).get('latency_s'))} | " for n in names) + " |")
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


def _early(config: dict) -> str:
    early = config.get("ended_early", [])
    return f"{len(early)} ({sum(e['spoke'] for e in early)})"


def _answers(spec: dict) -> str:
    a = spec.get("answer", {})
    return f"{a.get('begun on the early transcript', 0)} / {a.get('after the decision', 0)} / {spec.get('answers_discarded', 0)}"


def _x(v) -> str:
    return f"{v:.2f}x" if v is not None else "-"

"""The chaos soak's verdict: its ledger matched against the session's log, the checks, and a table.

Pure functions of plain data (the script's ledger, session.jsonl's records, what the doubles
counted), so a report can be rebuilt from a saved soak.json.
"""
from __future__ import annotations

import re
from collections import Counter

FIRST_AUDIO_LIMIT = 10.0  # s from the end of a question to its first audio (the issue-9 bug: 120 s, then nothing)
TIME_TOLERANCE = 0.15  # s between where the session says an utterance began and where the script spoke it


def caps() -> dict[str, int | None]:
    """The most each per-session collection may hold in a live session, read from the code.

    None: the code sets no cap (the check fails). camera_fps's cap is the deque in
    pipelines/app/live.py (_LiveRun.camera_fps), which has no named constant to import.
    `answers` are the answers in flight (pipelines/control.py): each leaves when it has
    finished, so once the session is over none may be left."""
    from pipelines import session as session_module
    from pipelines.session import SessionConfig

    keep = getattr(session_module, "LIVE_KEEP", None)  # display changes and log records kept in memory
    return {"display_changes": keep, "log_records": keep, "frames": SessionConfig.ring_frames,
            "history": SessionConfig.history_turns, "camera_fps": 600, "answers": 0}


def _number(text: str) -> int | None:
    m = re.search(r"question (\d+)", text or "", re.IGNORECASE)
    return int(m.group(1)) if m else None


def questions(asked: list[dict], records: list[dict], first_play: dict[int, float]) -> list[dict]:
    """Each scripted question with what became of it: answered, cut (by the script) or silent."""
    turns = {}
    for r in records:
        if r["type"] == "turn" and _number(r.get("question", "")) is not None:
            turns.setdefault(_number(r["question"]), r)
    heard = {_number(r.get("text", "")): r for r in records if r["type"] == "heard" and r.get("action") == "ask"}
    out = []
    for q in asked:
        turn, played = turns.get(q["n"]), first_play.get(q["n"])
        spoken = bool(turn and turn.get("spoken"))
        if spoken and played is not None:
            status = "answered"
        elif turn is None and q["n"] not in heard:
            status = "not heard"
        elif q["interrupted_at"] is not None and (played is None or played > q["interrupted_at"]):
            status = "cut before audio"  # the script spoke over it (or stopped it) first
        else:
            status = "silent"
        out.append({**q, "status": status, "first_audio": played, "turn": turn is not None,
                    "wait": None if played is None else played - q["end"],
                    "frame": None if turn is None else turn.get("frame_time") is not None})
    return out


def phase_of(p: dict) -> str:
    if p["rendering"] and p["playing"]:
        return "rendering+playing"
    if p["rendering"]:
        return "rendering"
    if p["playing"]:
        return "playing"
    if p["generating"] or p.get("queued"):
        return "generating"
    return "idle"


def cancellations(records: list[dict], phases: list[dict], ptt_presses: list[float]) -> dict:
    """barge_in and stop records, each matched to the speaker clear it caused and the phase then."""
    unused = sorted(phases, key=lambda p: p["t"])
    table: dict[str, Counter] = {}
    for r in records:
        if r["type"] not in ("barge_in", "stop"):
            continue
        kind = r["type"]
        if kind == "barge_in":
            kind = "barge_in (push-to-talk)" if any(abs(r["t"] - t) < 0.01 for t in ptt_presses) else "barge_in (voice)"
        hit = next((p for p in unused if r["t"] - 0.05 <= p["t"] <= r["t"] + 0.6), None)
        if hit is not None:
            unused.remove(hit)
        table.setdefault(kind, Counter())[phase_of(hit) if hit else "no clear"] += 1
    for p in unused:  # clears no record explains: a newer question overtaking the answer in flight
        table.setdefault("new question", Counter())[phase_of(p)] += 1
    out = {k: dict(v) for k, v in table.items()}
    every = Counter()
    for v in table.values():
        every.update(v)
    out["all"] = dict(every)
    out["landed_while_rendering"] = every["rendering"] + every["rendering+playing"]
    out["landed_while_playing"] = every["playing"] + every["rendering+playing"]
    return out


def utterance_times(heard: list[tuple], bursts: list[dict]) -> dict:
    """Where the session placed each utterance it transcribed, against where the script spoke it."""
    drifts, toneless = [], 0
    for start, end, slot in heard:
        if slot is None:
            toneless += 1  # cut from audio that holds no scripted speech
            continue
        same = [b for b in bursts if b["slot"] == slot]
        if same:
            b = min(same, key=lambda b: abs(b["start"] - start))
            drifts.append(start - b["start"])
    worst = max(drifts, key=abs, default=0.0)
    return {"utterances": len(heard), "without_speech": toneless, "worst_start_error_s": round(worst, 3),
            "late_or_early": sum(abs(d) > TIME_TOLERANCE for d in drifts)}


def build(raw: dict) -> dict:
    """The report (soak.json) from what the soak collected: plain data in, plain data out."""
    records, ledger, tts = raw["records"], raw["ledger"], raw["tts"]
    end = next((r for r in reversed(records) if r["type"] == "end"), {})
    each = questions(ledger["asked"], records, {int(k): v for k, v in raw["first_play"].items()})
    first_cancel = min([r["t"] for r in records if r["type"] in ("barge_in", "stop")], default=None)
    after = [q for q in each if first_cancel is not None and q["start"] > first_cancel]
    waits = [q["wait"] for q in each if q["status"] == "answered"]
    statuses = Counter(q["status"] for q in each)
    overflow = min([s["start"] for s in ledger["stalls"]], default=float("inf"))
    split = {"before_first_mic_overflow": dict(Counter(q["status"] for q in each if q["start"] < overflow)),
             "after_first_mic_overflow": dict(Counter(q["status"] for q in each if q["start"] >= overflow))}
    report = {
        **{k: raw[k] for k in ("command", "machine", "date", "wall_s", "load_before", "load_after")},
        "events": ledger["events"], "events_total": sum(ledger["events"].values()),
        "questions": {"asked": len(each), **{k: statuses.get(k, 0) for k in
                                               ("answered", "cut before audio", "silent", "not heard")},
                      "after_cancellation": len(after),
                      "after_cancellation_answered": sum(q["status"] == "answered" for q in after),
                      "wait_p50": percentile(waits, 0.5), "wait_p95": percentile(waits, 0.95),
                      "wait_max": round(max(waits), 3) if waits else None, **split, "each": each},
        "cancellations": cancellations(records, raw["phases"], ledger["ptt_presses"]),
        "aimed_at": ledger["targets"],
        "tts": {"alive_at_end": tts["alive_at_end"], "rendered": tts["submitted"] - tts["skipped"] - tts["failed"],
                "skipped": tts["skipped"], "failed": tts["failed"],
                "cancelled_while_rendering": tts["cancelled_while_rendering"],
                "render_ms_p50": _ms(percentile(tts["render_s"], 0.5)),
                "render_ms_max": _ms(max(tts["render_s"], default=None))},
        "threads": raw["threads"], "rss_mb": raw["rss_mb"],
        "sizes": end.get("sizes", {}), "caps": caps(), "end": {k: v for k, v in end.items() if k != "sizes"},
        "end_is_last": bool(records) and records[-1]["type"] == "end",
        "errors": [r for r in records if r["type"] == "error"],
        "utterance_times": utterance_times(raw["heard"], ledger["bursts"]),
        "camera": {"outages": len(ledger["outages"]), "frames": end.get("camera_frames")},
        "phases": raw["phases"], "renders": tts["renders"], "ledger": ledger,
        "failures": raw["failures"], "reason": raw["reason"],
    }
    report["checks"] = checks(report)
    return report


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(1000 * seconds, 1)


def percentile(values: list[float], q: float) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    k = (len(values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return round(values[lo] + (values[hi] - values[lo]) * (k - lo), 3)


def check(ok: bool, detail) -> dict:
    return {"ok": bool(ok), "detail": detail}


def checks(r: dict) -> dict:
    """Every check the soak makes, each {ok, detail}; `r` is the report without its checks."""
    qs = r["questions"]["each"]
    bad = [f"{q['n']} ({q['kind']}): {q['status']}" for q in qs if q["status"] in ("silent", "not heard")]
    slow = [f"{q['n']}: {q['wait']:.1f} s" for q in qs if q["wait"] is not None and q["wait"] > FIRST_AUDIO_LIMIT]
    errors = [e for e in r["errors"] if e.get("stage") != "camera"]
    sizes, limits = r["sizes"], r["caps"]
    unbounded = {k: v for k, v in sizes.items() if limits.get(k) is None or v > limits[k]}
    recovered = []
    for o in r["ledger"]["outages"]:
        later = [q for q in qs if q["start"] >= o["end"] + 1.0 and q["turn"]]
        if later:
            recovered.append(bool(later[0]["frame"]))
    stalls = r["ledger"]["stalls"]
    phantom_voice = r["cancellations"].get("barge_in (voice)", {}).get("idle", 0)
    phantom_ptt = r["cancellations"].get("barge_in (push-to-talk)", {}).get("idle", 0)
    return {
        "every_question_answered": check(not bad, bad or f"{r['questions']['answered']} answered, "
                                                   f"{r['questions']['cut before audio']} cut by the script first"),
        "first_audio_in_time": check(not slow, slow or f"all within {FIRST_AUDIO_LIMIT:.0f} s"),
        "no_stage_died": check(not errors and r["tts"]["failed"] == 0,
                               errors or f"no error records but the camera's ({len(r['errors'])})"),
        "tts_thread_alive_until_close": check(r["tts"]["alive_at_end"], r["tts"]),
        "no_threads_left": check(not r["threads"]["left_behind"], r["threads"]["left_behind"] or "none"),
        "clean_end": check(r["end"].get("reason") == "quit" and r["end_is_last"], r["end"].get("reason")),
        "collections_bounded": check(not unbounded, {k: f"{v} (cap {limits.get(k)})" for k, v in unbounded.items()}
                                     or "all within their caps"),
        "no_phantom_barge_in": check(not (phantom_voice or phantom_ptt),
                                     "barge-ins when nothing was generating, rendering or playing: "
                                     f"{phantom_voice} by voice, {phantom_ptt} by push-to-talk"),
        "backchannels_ignored": check(not any(b["interrupted"] for b in r["ledger"]["backchannels"]),
                                      f"{len(r['ledger']['backchannels'])} backchannels"),
        "stop_silences": check(all(s["silent_after"] for s in r["ledger"]["stops"]),
                               [s for s in r["ledger"]["stops"] if not s["silent_after"]] or "every stop"),
        "cancellations_landed_while_rendering": check(r["cancellations"]["landed_while_rendering"] > 0,
                                                      r["cancellations"]["landed_while_rendering"]),
        "utterances_where_spoken": check(r["utterance_times"]["late_or_early"] == 0
                                         and r["utterance_times"]["without_speech"] == 0, r["utterance_times"]),
        "camera_recovers": check(all(recovered), f"{sum(recovered)} of {len(recovered)} outages followed by "
                                                 "a question answered with a frame"),
        "mic_overflow_counted": check(not stalls or r["end"].get("mic_dropped_chunks", 0) > 0,
                                      f"{len(stalls)} stalls, {r['end'].get('mic_dropped_chunks')} chunks dropped"),
    }


def table(r: dict) -> str:
    q, c = r["questions"], r["cancellations"]
    rows = [
        f"soak: {r['command']} | {r['machine']} | {r['date']} | {r['wall_s']:.0f} s | load {r['load_before']} -> "
        f"{r['load_after']}",
        "events: " + ", ".join(f"{k} {v}" for k, v in sorted(r["events"].items())) + f" (total {r['events_total']})",
        f"questions: asked {q['asked']}, answered with audio {q['answered']}, cut by the script before audio "
        f"{q['cut before audio']}, silent {q['silent']}, not heard {q['not heard']}; after a cancellation: "
        f"{q['after_cancellation_answered']} of {q['after_cancellation']} answered",
        *([f"  before the first mic overflow: {q['before_first_mic_overflow']}; after: {q['after_first_mic_overflow']}"]
          if r["ledger"]["stalls"] else []),
        f"first audio after the question: p50 {q['wait_p50']} s, p95 {q['wait_p95']} s, max {q['wait_max']} s",
        "cancellations: " + "; ".join(f"{k}: " + ", ".join(f"{p} {n}" for p, n in sorted(v.items()))
                                      for k, v in c.items() if isinstance(v, dict) and k != "all"),
        f"  landed while rendering {c['landed_while_rendering']}, while playing {c['landed_while_playing']}; "
        f"cancels that reached a piece pyttsx3 was rendering: {r['tts']['cancelled_while_rendering']}",
        f"tts: rendered {r['tts']['rendered']}, skipped {r['tts']['skipped']}, failed {r['tts']['failed']}, "
        f"render p50 {r['tts']['render_ms_p50']} ms, max {r['tts']['render_ms_max']} ms",
        f"threads: start {r['threads']['start']}, during {r['threads']['during']}, end {r['threads']['end']}, "
        f"left behind {r['threads']['left_behind']}",
        f"RSS MB: start {r['rss_mb']['start']} (before the session), {r['rss_mb']['in_session']} (2 s in), "
        f"end {r['rss_mb']['end']}, max {r['rss_mb']['max']}",
        "sizes at the end: " + ", ".join(f"{k} {v} (cap {r['caps'].get(k)})" for k, v in r["sizes"].items()),
        f"mic dropped {r['end'].get('mic_dropped_chunks')} chunks, session dropped "
        f"{r['end'].get('dropped_audio_chunks')}; utterance start error worst "
        f"{r['utterance_times']['worst_start_error_s']} s",
        "checks:",
    ]
    for name, v in r["checks"].items():
        rows.append(f"  {'ok  ' if v['ok'] else 'FAIL'} {name}: {v['detail']}")
    return "\n".join(rows)

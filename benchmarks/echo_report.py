"""The echo benchmark's table, from the report dict benchmarks/echo.py writes to echo.json."""
from __future__ import annotations


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}% ({part}/{whole})" if whole else "-"


def _s(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def _erle(db: float) -> str:
    return "all zeroed" if db >= 100 else f"{db:.1f}"  # the gate replaces echo with silence


def table(report: dict) -> str:
    modes = list(report["modes"])
    lines = [f"command: {report['command']}", f"machine: {report['machine']}", f"date:    {report['date']}",
             f"devices: speaker {report['devices']['speaker_rate']} Hz, reported output latency "
             f"{1000 * report['devices']['out_latency']:.0f} ms, echo {1000 * report['devices']['error']:.0f} ms "
             f"later than stamped; {report['answers']} rendered answers, {report['barge_in_pieces']} barge-in pieces, "
             f"{report['backchannel_snippets']} backchannel snippets", ""]
    rows: list[tuple[str, list[str]]] = []

    def row(name, fn):
        rows.append((name, [fn(report["modes"][m]) for m in modes]))

    row("ERLE, converged (dB)", lambda r: _erle(r["alignment"][0]["erle_db"]))
    row("ERLE, first 5 s (dB)", lambda r: _erle(r["alignment"][0]["erle_first_5s_db"]))
    for key, label in (("pure_echo_normal", "normal volume"), ("pure_echo_loud", "loud, clipping")):
        row(f"false self-interruptions /min, {label}",
            lambda r, k=key: f"{r[k]['false_per_min']:.2f} ({r[k]['false_barge_ins']} in {r[k]['answer_minutes']:.1f} min)")
        row(f"false pauses /min, {label}",
            lambda r, k=key: f"{r[k]['false_pauses_per_min']:.2f} ({r[k]['false_pauses']} in {r[k]['answer_minutes']:.1f} min)")
        row(f"echo heard as an utterance /min, {label}", lambda r, k=key: f"{r[k]['echo_utterances_per_min']:.2f}")
    row("false self-interruptions, cold starts",
        lambda r: f"{r['cold_starts']['false_barge_ins']} in {r['cold_starts']['sessions']} x {r['cold_starts']['seconds_each']:.0f} s")
    row("false pauses, cold starts", lambda r: f"{r['cold_starts']['false_pauses']}")
    for i, level in enumerate(b["level_db"] for b in report["modes"][modes[0]]["barge_ins"]):
        row(f"barge-in {level:+d} dB: paused within 0.5 s",
            lambda r, i=i: _pct(r["barge_ins"][i]["paused"]["within_0.5s"], r["barge_ins"][i]["trials"]))
        row(f"barge-in {level:+d} dB: paused, delay median / p95 (s)",
            lambda r, i=i: f"{_s(r['barge_ins'][i]['paused']['delay_median_s'])} / {_s(r['barge_ins'][i]['paused']['delay_p95_s'])}")
        row(f"barge-in {level:+d} dB: cancelled within 0.5 s",
            lambda r, i=i: _pct(r["barge_ins"][i]["within_0.5s"], r["barge_ins"][i]["trials"]))
        row(f"barge-in {level:+d} dB: cancelled within 1.5 s",
            lambda r, i=i: _pct(r["barge_ins"][i]["detected"], r["barge_ins"][i]["trials"]))
        row(f"barge-in {level:+d} dB: cancelled, delay median / p95 (s)",
            lambda r, i=i: f"{_s(r['barge_ins'][i]['delay_median_s'])} / {_s(r['barge_ins'][i]['delay_p95_s'])}")
    row("barge-in, headphones (no echo): paused within 0.5 s",
        lambda r: _pct(r["clean"]["paused"]["within_0.5s"], r["clean"]["trials"]))
    row("barge-in, headphones (no echo): paused, delay median (s)", lambda r: _s(r["clean"]["paused"]["delay_median_s"]))
    row("barge-in, headphones (no echo): cancelled within 0.5 s", lambda r: _pct(r["clean"]["within_0.5s"], r["clean"]["trials"]))
    row("barge-in, headphones (no echo): cancelled within 1.5 s", lambda r: _pct(r["clean"]["detected"], r["clean"]["trials"]))
    row("barge-in, headphones (no echo): cancelled, delay median (s)", lambda r: _s(r["clean"]["delay_median_s"]))
    row("backchannels that interrupted", lambda r: _pct(r["backchannels"]["interrupted"], r["backchannels"]["snippets"]))
    row("backchannels that paused the answer / went on after",
        lambda r: f"{r['backchannels']['paused']} / {r['backchannels']['went_on']}, median pause "
                  f"{_s(r['backchannels']['pause_median_s'])} s")
    row("filter CPU (% of real time)", lambda r: f"{r['pure_echo_normal']['cpu_pct']:.2f}")
    width = max(len(name) for name, _ in rows) + 2
    cols = [max(len(m), *(len(v[i]) for _, v in rows)) + 2 for i, m in enumerate(modes)]
    lines.append("".ljust(width) + "".join(m.ljust(c) for m, c in zip(modes, cols)))
    lines += [name.ljust(width) + "".join(v.ljust(c) for v, c in zip(values, cols)) for name, values in rows]
    aec = report["modes"].get("aec")
    if aec and len(aec["alignment"]) > 1:
        lines += ["", "aec alignment (no noise floor, 2 min each): echo vs stamp -> ERLE converged / first 5 s, false /min"]
        lines += [f"  {str(a['echo_vs_stamp_s']):>18}: {a['erle_db']:5.1f} / {a['erle_first_5s_db']:5.1f} dB, "
                  f"{a['false_per_min']:.2f}" for a in aec["alignment"]]
    return "\n".join(lines)

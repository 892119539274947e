"""Choosing the hint's operating point: how soon an answer pauses for the wearer, against how
often it pauses for its own echo.

    python -m benchmarks.echo_hints [--out DIR] [--minutes 6]

The echo benchmark's simulation (benchmarks/echo_sim.py) with `aec`: pure echo at normal and
loud volume, barge-ins at -10 to +10 dB and with headphones, backchannels, and 20 cold starts.
Silero scores the canceller's output once per scenario; then each setting of the session's own
`pipelines.vad.Hints` runs over those scores. A hint is taken to reach the session 48 ms after
its window ends (the canceller's 22 ms, the input's 10 ms, half a 32 ms chunk on average);
benchmarks/echo.py measures the chosen setting through the whole pipeline.

Hints count only once the canceller has settled (5 s of the speaker's sound, glasses/echo.py),
except in the cold starts, which show why it waits: there every hint is false, and the far-end
seconds it came after are reported. Writes OUT/echo_hints.json and prints a table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.echo import LEVELS, NORMAL, LOUD, answer_minutes, delay_stats, matched, over_answers, program, run
from benchmarks.echo_room import NO_SPEECH, Room, render_answers, wearer
from benchmarks.echo_sim import Devices
from benchmarks.machine import machine
from pipelines.vad import WINDOW, HintConfig, Hints, SileroVAD

W = WINDOW / 16000
LAG = 0.048  # window end -> the session, on average (see the module doc)
SETTLE = 6.0  # session seconds before hints count in the long runs: answers start at 1 s, settled ~5 s later
SETTINGS = [(0.5, 2, 3), (0.35, 2, 3), (0.25, 2, 3), (0.15, 2, 3), (0.15, 3, 4), (0.1, 2, 3)]


def scores(prog, room: Room) -> tuple[np.ndarray, list]:
    """Silero's score for every window of the canceller's output, and the wearer's (onset, end)s."""
    heard, _, spans = run(prog, "aec", room, Devices())
    return np.array(SileroVAD()(heard.output)), spans


def hints(probs: np.ndarray, config: HintConfig, armed_from: float = SETTLE) -> list[tuple[float, float]]:
    machine_ = Hints(config)
    out = []
    for i, p in enumerate(probs):
        if machine_.update(float(p), i * W, armed=i * W >= armed_from) == "hint":
            out.append((machine_.since, (i + 1) * W + LAG))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--minutes", type=float, default=6.0, help="answer audio per scenario")
    args = parser.parse_args(argv)
    speech = wearer()
    if speech is None:
        print(f"benchmarks.echo_hints: {NO_SPEECH}", file=sys.stderr)
        return 2
    pieces, snippets = speech
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-echo-hints-"))
    out.mkdir(parents=True, exist_ok=True)
    answers = render_answers()
    runs = {"normal": (program(answers, args.minutes, 1), NORMAL), "loud": (program(answers, args.minutes, 2), LOUD)}
    for i, level in enumerate(LEVELS):
        runs[f"{level:+d} dB"] = (over_answers(program(answers, args.minutes, 10 + i), pieces, level, 10 + i), NORMAL)
    runs["headphones"] = (over_answers(program(answers, args.minutes, 10), pieces, 0, 10), Room(gain=0.0))
    runs["backchannels"] = (over_answers(program(answers, args.minutes, 30), snippets, 0, 30, min_answer=2.0), NORMAL)
    print("... scoring", ", ".join(runs), flush=True)
    scored = {name: (scores(prog, room), answer_minutes(prog)) for name, (prog, room) in runs.items()}
    cold = [scores(program(answers, 8 / 60, seed=100 + i, start=0.5), NORMAL)[0] for i in range(20)]
    rows = []
    for threshold, needed, of in SETTINGS:
        config = HintConfig(threshold, needed, of)
        row = {"threshold": threshold, "needed": needed, "of": of}
        for name in ("normal", "loud"):
            (probs, _), minutes = scored[name]
            row[f"false_pauses_per_min_{name}"] = round(len(hints(probs, config)) / minutes, 2)
        for name in [f"{lv:+d} dB" for lv in LEVELS] + ["headphones"]:
            (probs, spans), _ = scored[name]
            spans = [s for s in spans if s[0] >= SETTLE]
            row[name] = delay_stats(matched(spans, hints(probs, config))[0], len(spans))["rate_0.5s"]
        (probs, spans), _ = scored["backchannels"]
        spans = [s for s in spans if s[0] >= SETTLE]
        row["backchannels_paused"] = round(len(matched(spans, hints(probs, config))[0]) / len(spans), 2)
        cold_hints = [h for p in cold for h in hints(p, config, armed_from=0.0)]
        row["cold_false_pauses"] = len(cold_hints)
        row["cold_latest_s"] = round(max((at - 0.5 for _, at in cold_hints), default=0.0), 2)  # after the answer began
        rows.append(row)
    report = {"command": "python -m benchmarks.echo_hints " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine(), "date": dt.date.today().isoformat(), "rows": rows}
    (out / "echo_hints.json").write_text(json.dumps(report, indent=2))
    names = [f"{lv:+d} dB" for lv in LEVELS] + ["headphones"]
    print(f"command: {report['command']}\nmachine: {report['machine']}\ndate:    {report['date']}\n")
    print("setting (threshold, needed/of) | false pauses /min normal, loud | paused within 0.5 s: "
          + ", ".join(names) + " | backchannels paused | cold starts: false pauses (latest, s into the answer)")
    for r in rows:
        print(f"{r['threshold']:.2f}, {r['needed']}/{r['of']} | {r['false_pauses_per_min_normal']:.2f}, "
              f"{r['false_pauses_per_min_loud']:.2f} | " + ", ".join(f"{100 * r[n]:.0f}%" for n in names)
              + f" | {100 * r['backchannels_paused']:.0f}% | {r['cold_false_pauses']} ({r['cold_latest_s']})")
    print(f"written: {out / 'echo_hints.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

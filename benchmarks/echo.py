"""Benchmark: does the assistant hear itself? Echo cancellation (aec) against the gate and off.

    python -m benchmarks.echo [--out DIR] [--minutes 10] [--barge-minutes 6] [--quick]

The assistant's own answers (pyttsx3 / espeak-ng) are played by the real SoundDeviceSpeaker
and reach the microphone through a simulated laptop room (benchmarks/echo_room.py); the
wearer's real speech (../shared/media) is mixed over them. The microphone runs through each
self-hearing filter and then the session's own hearing: Silero VAD, the endpointer and the
barge-in rule (voiced >= 0.4 s). All in simulated time (benchmarks/echo_sim.py): the
figures do not depend on how busy this machine is, except the CPU cost.

Scenarios:
- pure echo, normal volume (echo -6 dB re what is played, mild clipping) and loud (0 dB,
  hard clipping): false self-interruptions (and false pauses) per minute of answer audio,
  and echo heard as an utterance (which a follow-up window would answer);
- cold starts: the first 8 s of 20 sessions (the canceller has not converged yet);
- barge-ins: 1.3 s of real speech over an answer at -10 to +10 dB signal-to-echo (the wearer
  against the echo at the microphone; a quieter speaker means a higher figure). The answer
  pauses at the first hint of speech (`paused`: within 0.5 s of the onset, and the delay);
  the barge-in that cancels it (0.4 s of voiced speech: detected within 1.5 s, within 0.5 s,
  the delay) is then heard in a second pass in which each answer falls silent where it
  paused, as it does in a session (closing the loop; a pause that would have resumed
  before the barge-in is not modelled);
- backchannels: 0.3 s real speech snippets at 0 dB: they must not interrupt (they may pause
  the answer, which then goes on: how many, and for how long);
- headphones: the same barge-ins while the answer plays but the microphone hears none of it
  (`off` gives the rule's own delay: 0.4 s voiced, plus the VAD's);
- alignment: pure echo, no noise floor, the echo arriving from -30 to +200 ms off its
  stamps, and a 44.1 kHz speaker: ERLE (echo return loss enhancement) and false barge-ins.
Writes OUT/echo.json and prints a table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.echo_room import NO_SPEECH, Room, render_answers, wearer
from benchmarks.echo_sim import Devices, Program, hear, microphone, play

MODES = ("aec", "gate", "off")
NORMAL, LOUD = Room(gain=0.5, drive=1.5), Room(gain=1.0, drive=3.0, seed=1)
LEVELS = (-10, -5, 0, 5, 10)  # the wearer over the echo at the microphone, dB


def program(answers, minutes: float, seed: int, gap: float = 1.5, start: float = 1.0) -> Program:
    """Answers one after another, `gap` s apart (the wearer's turn), `minutes` of answer audio."""
    rng = np.random.default_rng(seed)
    placed, t, total = [], start, 0.0
    while total < minutes * 60:
        audio = answers[int(rng.integers(len(answers)))]
        seconds = len(audio.samples) / audio.rate
        placed.append((t, audio))
        t, total = t + seconds + gap, total + seconds
    return Program(placed, seconds=t + 1.0)


def over_answers(prog: Program, pieces, level: float, seed: int, min_answer: float = 2.6) -> Program:
    """One piece of the wearer's speech over each answer long enough, its onset 0.5 s or more in."""
    rng = np.random.default_rng(seed)
    for i, (start, audio) in enumerate(prog.answers):
        seconds = len(audio.samples) / audio.rate
        if seconds >= min_answer:
            piece = pieces[i % len(pieces)]
            onset = start + rng.uniform(0.5, seconds - 1.4)
            prog.near.append((onset - piece.onset, piece, level))
    return prog


def answer_minutes(prog: Program) -> float:
    return sum(len(a.samples) / a.rate for _, a in prog.answers) / 60


def erle(echo: np.ndarray, out: np.ndarray, skip: float = 0.0) -> float:
    """Echo power over residual power, over the 10 ms frames where the echo is within 40 dB of its loudest."""
    n = len(echo) // 160 * 160
    e, o = echo[:n].reshape(-1, 160), out[:n].reshape(-1, 160)
    power = np.mean(e**2, axis=1)
    active = power > power.max() * 1e-4
    active[: int(skip * 100)] = False
    return round(float(10 * np.log10(np.sum(e[active] ** 2) / max(np.sum(o[active] ** 2), 1e-12))), 1)


def pure_echo(answers, mode: str, room: Room, minutes: float, seed: int, devices=Devices()) -> dict:
    prog = program(answers, minutes, seed)
    heard, _, _ = run(prog, mode, room, devices)
    mins = answer_minutes(prog)
    return {"answer_minutes": round(mins, 2), "false_barge_ins": len(heard.starts),
            "false_per_min": round(len(heard.starts) / mins, 2), "false_pauses": len(heard.hints),
            "false_pauses_per_min": round(len(heard.hints) / mins, 2), "echo_utterances_per_min": round(len(heard.utterances) / mins, 2),
            "cpu_pct": round(100 * heard.filter_s / prog.seconds, 2), "filter": heard.stats}


def run(prog: Program, mode: str, room: Room, devices: Devices, noise_db: float | None = -55.0):
    playback = play(prog, devices)
    mic, echo, spans = microphone(prog, playback, room, devices, noise_db)
    return hear(mode, mic, playback, devices), echo, spans


def matched(spans, events, window: float = 1.5) -> tuple[list[float], set]:
    """For each stretch of the wearer's speech, the first event (start, arrival) that belongs to
    it: the delays from its onset, and the events used."""
    delays, used = [], set()
    for onset, end in spans:
        hits = [(ss, at) for ss, at in events if onset - 0.25 <= ss <= end and at <= onset + window]
        if hits:
            delays.append(hits[0][1] - onset)
            used.add(hits[0])
    return delays, used


def delay_stats(delays: list[float], trials: int) -> dict:
    d = np.array(delays)
    return {"detected": len(delays), "within_0.5s": int(np.sum(d <= 0.5)),
            "rate_0.5s": round(float(np.sum(d <= 0.5)) / trials, 3) if trials else None,
            "delay_median_s": round(float(np.median(d)), 3) if delays else None,
            "delay_p95_s": round(float(np.percentile(d, 95)), 3) if delays else None}


def paused_at(prog: Program, pauses: list[float], devices: Devices = Devices()) -> Program:
    """The program with each answer silent from its first pause on (session times the speaker paused)."""
    from dataclasses import replace

    answers = []
    for start, audio in prog.answers:
        end = start + len(audio.samples) / audio.rate
        cut = min((t for t in pauses if start <= t < end), default=None)
        if cut is not None:
            audio = replace(audio, samples=audio.samples[: int((cut + devices.out_latency - start) * audio.rate)])
        answers.append((start, audio))
    return Program(answers, prog.near, prog.seconds)


def barge_ins(answers, pieces, mode: str, level: float, minutes: float, seed: int, room: Room = NORMAL) -> dict:
    prog = over_answers(program(answers, minutes, seed), pieces, level, seed)
    first, _, spans = run(prog, mode, room, Devices())
    paused, used = matched(spans, first.hints)
    heard = first
    if used:  # close the loop: the answer falls silent where it paused, and the barge-in is heard on that
        heard, _, spans = run(paused_at(prog, sorted(at for _, at in used)), mode, room, Devices())
    delays, matched_starts = matched(spans, heard.starts)
    mins = answer_minutes(prog)
    return {"level_db": level, "trials": len(spans), **delay_stats(delays, len(spans)),
            "false_per_min": round(len([s for s in heard.starts if s not in matched_starts]) / mins, 2),
            "paused": delay_stats(paused, len(spans)),
            "false_pauses_per_min": round((len(first.hints) - len(used)) / mins, 2)}


def backchannels(answers, snippets, mode: str, minutes: float, seed: int, level: float = 0.0) -> dict:
    prog = over_answers(program(answers, minutes, seed), snippets, level, seed, min_answer=2.0)
    heard, _, spans = run(prog, mode, NORMAL, Devices())
    interrupted = sum(any(onset - 0.25 <= ss <= end + 0.3 for ss, _ in heard.starts) for onset, end in spans)
    pauses = []  # (paused, went on) for the hints that belong to a snippet
    for onset, end in spans:
        hint = next(((ss, at) for ss, at in heard.hints if onset - 0.25 <= ss <= end + 0.3), None)
        if hint is not None:
            pauses.append(next((e - hint[1] for e in heard.hint_ends if e > hint[1]), None))
    lengths = [p for p in pauses if p is not None]
    return {"level_db": level, "snippets": len(spans), "interrupted": interrupted,
            "false_per_min_elsewhere": round((len(heard.starts) - interrupted) / answer_minutes(prog), 2),
            "paused": len(pauses), "went_on": len(lengths),
            "pause_median_s": round(float(np.median(lengths)), 3) if lengths else None}


def cold_starts(answers, mode: str, sessions: int, seconds: float = 8.0) -> dict:
    false = pauses = 0
    for i in range(sessions):
        prog = program(answers, seconds / 60, seed=100 + i, start=0.5)
        heard, _, _ = run(prog, mode, NORMAL, Devices())
        false += sum(ss < seconds + 0.5 for ss, _ in heard.starts)
        pauses += sum(ss < seconds + 0.5 for ss, _ in heard.hints)
    return {"sessions": sessions, "seconds_each": seconds, "false_barge_ins": false, "false_pauses": pauses}


def alignment(answers, mode: str, minutes: float, errors=(Devices.error, -0.03, -0.01, 0.0, 0.03, 0.1, 0.2),
              cd_rate: bool = True) -> list[dict]:
    rows = []
    cases = [(e, Devices(error=e)) for e in errors] + ([("44.1 kHz speaker", Devices(speaker_rate=44100))] if cd_rate else [])
    for label, devices in cases:
        prog = program(answers, minutes, seed=7)
        heard, echo, _ = run(prog, mode, NORMAL, devices, noise_db=None)
        rows.append({"echo_vs_stamp_s": label, "erle_db": erle(echo, heard.output, skip=5.0),
                     "erle_first_5s_db": erle(echo[: 6 * 16000], heard.output[: 6 * 16000]),
                     "false_per_min": round(len(heard.starts) / answer_minutes(prog), 2)})
    return rows


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--minutes", type=float, default=10.0, help="answer audio per pure-echo run")
    parser.add_argument("--barge-minutes", type=float, default=6.0, help="answer audio per barge-in level")
    parser.add_argument("--quick", action="store_true", help="a smoke run: a minute each")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes = args.barge_minutes = 1.0
    speech = wearer()
    if speech is None:
        print(f"benchmarks.echo: {NO_SPEECH}", file=sys.stderr)
        return 2
    pieces, snippets = speech
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-echo-"))
    out.mkdir(parents=True, exist_ok=True)
    answers = render_answers()
    report = {"command": "python -m benchmarks.echo " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine(), "date": dt.date.today().isoformat(), "devices": Devices().__dict__,
              "rooms": {"normal": NORMAL.__dict__, "loud": LOUD.__dict__},
              "answers": len(answers), "barge_in_pieces": len(pieces), "backchannel_snippets": len(snippets), "modes": {}}
    for mode in MODES:
        print(f"... {mode}", flush=True)
        report["modes"][mode] = {
            "pure_echo_normal": pure_echo(answers, mode, NORMAL, args.minutes, seed=1),
            "pure_echo_loud": pure_echo(answers, mode, LOUD, args.minutes, seed=2),
            "cold_starts": cold_starts(answers, mode, 5 if args.quick else 20),
            "barge_ins": [barge_ins(answers, pieces, mode, lv, args.barge_minutes, seed=10 + i) for i, lv in enumerate(LEVELS)],
            "backchannels": backchannels(answers, snippets, mode, args.barge_minutes, seed=30),
            "alignment": alignment(answers, mode, 1.0 if args.quick else 2.0, **({} if mode == "aec" else
                                                                                  {"errors": (Devices.error,), "cd_rate": False})),
            "clean": barge_ins(answers, pieces, mode, 0, args.barge_minutes, seed=10, room=Room(gain=0.0)),
        }
    (out / "echo.json").write_text(json.dumps(report, indent=2, default=str))
    from benchmarks.echo_report import table

    print(table(report))
    print(f"written: {out / 'echo.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

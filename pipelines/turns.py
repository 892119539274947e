"""Turn-taking: a pure state machine from what was heard to what to do.

`TurnTaking.handle(event, now)` takes one event (speech onset, pause, resumption, speech
long enough to interrupt, an early or a final transcript, a typed question, a mode switch,
an answer that finished) and returns the actions for it, in order. It has no threads, no
queues and no clock of its own: the session's control thread feeds it and carries the
actions out, and tests feed it events and read the actions.

The actions:
- `Speculate(start, end, latest)`: prepare the frame for a question that may end at `end`
  (`latest`: the speech goes on, so look at the newest frames rather than at the question's end);
- `StartAnswer(plan)`: answer a question (a tentative one stays silent until confirmed);
- `Confirm(turn, ...)`: the endpointer ended the utterance a tentative answer was begun on;
- `Cancel(turn, t, reason)`: stop an answer; with `t`, silence the speaker from then on;
- `Pause(t)` / `Resume(t)`: the wearer may be speaking over the answer: it pauses at the first
  hint (within ~0.2 s of their onset), and goes on where it stopped if the hint never became
  speech long enough to interrupt (a "mm-hmm", a cough); if it did, the barge-in cancels it;
- `Record(kind, fields)`: a line for session.jsonl;
- `Show(t, fields)`: a display change at session time t.

"Busy" means an answer is running or its audio is still playing: only then does "stop"
have something to stop, does speech over it interrupt, and is a short "mm-hmm" ignored.
No speculative prefill is asked for while an answer is generating on the shared model,
unless the wearer has spoken over it (a confirmed barge-in cancels that answer).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Callable

from core.messages import (Announcement, AnswerFinished, ModeSwitch, SpeechContinues, SpeechHint, SpeechHintEnded,
                           SpeechOnset, SpeechPaused, SpeechResumed, SpeechStarted, Transcript, TypedQuestion)
from pipelines.modes import MODES
from pipelines.router import Route
from pipelines.wake import decide

TRANSLATE = "translate"  # the translation skill's name: its standing mode changes what speech means


@dataclass(frozen=True)
class TurnConfig:
    wake_phrase: str = "hey glasses"
    follow_up: float = 6.0  # seconds after an answer in which no wake phrase is needed
    mode: str = "instant"  # the standing mode at the start
    barge_in: bool = True
    barge_in_after: float = 0.4  # speech shorter than this over an answer is a backchannel
    speculate: bool = True  # ask for speculative vision at all
    answer_early: bool = False  # begin Instant answers on early transcripts (real time only)
    skill: str = ""  # the standing skill at the start (--skill shopping), "" for none
    yield_floor: bool = True  # pause the answer at the first hint of speech over it (needs barge_in)


@dataclass(frozen=True)
class Plan:
    """One answer to give: what was asked, when, and who answers it."""

    id: int
    question: str
    start: float  # the question's speech window, session seconds
    end: float
    detected: tuple[float, float]  # (session time, perf_counter) when the end was decided
    route: Route
    asr_s: float = 0.0
    early_asr: str = ""
    tentative: bool = False  # begun on an early transcript: silent until confirmed
    heard: str = ""  # the transcript a tentative answer was begun on


@dataclass(frozen=True)
class Speculate:
    start: float
    end: float
    latest: bool = False  # the wearer is still speaking: what they look at now, not 0.3 s ago


@dataclass(frozen=True)
class StartAnswer:
    plan: Plan


@dataclass(frozen=True)
class Confirm:
    turn: int
    detected: tuple[float, float]
    asr_s: float


@dataclass(frozen=True)
class Cancel:
    turn: int | None  # None: no answer to stop, only the speaker
    t: float | None  # silence the speaker from this session time (None: leave it)
    reason: str


@dataclass(frozen=True)
class Pause:
    t: float


@dataclass(frozen=True)
class Resume:
    t: float


@dataclass(frozen=True)
class Record:
    kind: str
    fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Show:
    t: float
    fields: dict = field(default_factory=dict)


class TurnTaking:
    def __init__(self, config: TurnConfig, route: Callable[..., Route], look: Callable[[], frozenset] | None = None):
        """`route(question, mode, active=, look=)`: pipelines/router.py's route with the session's skills;
        `look()`: what the camera sees now (the router asks it only when a skill's words fit)."""
        self.config, self.route = config, route
        self.look = look or frozenset
        self.mode = config.mode
        self.active = config.skill  # the standing skill: "shopping", "translate", or ""
        self.follow_up_until = -1.0
        self.follow_up_from = -1.0  # only speech that starts after this counts as a follow-up
        self.current: Plan | None = None  # the answer running, or the last one started
        self.answering = False  # the current answer's thread has not finished
        self.speaking_until = 0.0  # when the finished answers' audio stops
        self.barged = False  # the wearer spoke over the current answer (it is cancelled)
        self.paused_at: float | None = None  # the answer is paused for the wearer since
        self.awaiting_words = False  # paused until the words of a short utterance are known
        self._ids = itertools.count(1)

    def busy(self, t: float) -> bool:
        """An answer is running or sounding (a tentative one is neither: nothing of it was heard)."""
        return (self.answering and self._tentative() is None) or self.speaking_until > t or self.paused_at is not None

    def handle(self, ev, now: float = 0.0) -> list:
        """The actions for one event; `now` is the session time of its handling."""
        if isinstance(ev, SpeechStarted):
            return self._speech_started(ev)
        if isinstance(ev, SpeechHint):
            return self._hint(ev)
        if isinstance(ev, SpeechHintEnded):
            return self._hint_ended(ev.t, ev.words)
        if isinstance(ev, SpeechOnset):
            return [] if self.busy(ev.t) else self._speculate(ev.start, ev.t)  # over an answer: maybe "mm-hmm"
        if isinstance(ev, SpeechContinues):
            return [] if self.busy(ev.t) else self._speculate(ev.start, ev.t, latest=True)
        if isinstance(ev, SpeechPaused):
            return self._speculate(ev.start, ev.end)
        if isinstance(ev, SpeechResumed):
            pending = self._tentative()
            return self._discard(pending, "speech resumed", ev.t) if pending and pending.start == ev.start else []
        if isinstance(ev, Transcript):
            if ev.early_asr == "early":
                return self._early(ev)
            out = self._heard(ev, now)
            # the words the paused answer waited for are known: unless they stopped it, it goes on
            return out + (self._resume(now) if self.awaiting_words and self.paused_at is not None else [])
        if isinstance(ev, TypedQuestion):
            plan = self._plan(ev.text, ev.t, ev.t, (ev.t, ev.detected_perf))
            return [Record("ask", {"t": ev.t, "text": ev.text}), *self._start(plan)]
        if isinstance(ev, Announcement):  # a timer or reminder that is due: said like an answer
            route = Route("skill", "announce", ev.text, f"{ev.source}: due")
            plan = Plan(next(self._ids), ev.text, ev.t, ev.t, (ev.t, ev.detected_perf), route)
            return [Record("announce", {"t": ev.t, "text": ev.text, "source": ev.source}), *self._start(plan)]
        if isinstance(ev, ModeSwitch):
            return self._set_mode(ev.mode, ev.t)
        if isinstance(ev, AnswerFinished):
            return self._finished(ev)
        return []

    # --- events -------------------------------------------------------------------------
    def _speech_started(self, ev: SpeechStarted) -> list:
        pending = self._tentative()
        out: list = self._discard(pending, "speech went on", ev.detected_at) if pending else []
        if self.config.barge_in and self.busy(ev.detected_at) and self.active != TRANSLATE:
            self.paused_at, self.awaiting_words = None, False  # the cancel clears the paused speaker
            out.append(Record("barge_in", {"t": ev.detected_at, "speech_start": ev.t, "turn": self._cut()}))
            self.follow_up_until = max(self.follow_up_until, ev.detected_at + self.config.follow_up)  # hear the question
            out.append(Cancel(self.current.id if self.answering and self.current else None, ev.detected_at, "barge-in"))
            self.speaking_until = min(self.speaking_until, ev.detected_at)
            self.barged = self.answering
        out.append(Show(ev.t, {"status": "listening"}))
        return out + self._speculate(ev.t, max(ev.detected_at, ev.t))

    def _hint(self, ev: SpeechHint) -> list:
        """Speech may have begun over the answer: pause it until it is known (see the module doc)."""
        if (not (self.config.yield_floor and self.config.barge_in) or self.paused_at is not None
                or self.active == TRANSLATE or not self.busy(ev.t)):
            return []
        self.paused_at, self.awaiting_words = ev.t, False
        return [Record("yield", {"t": ev.t, "speech_start": ev.start, "turn": self._cut()}), Pause(ev.t),
                Show(ev.t, {"status": "listening"})]

    def _hint_ended(self, t: float, words: bool = False) -> list:
        """No speech long enough to interrupt: the paused answer goes on, or, if words were said,
        waits for them ("stop" stops it; "mm-hmm" lets it go on)."""
        if self.paused_at is None or self.awaiting_words:  # words already on their way: wait for them
            return []
        if words:
            self.awaiting_words = True
            return []
        return self._resume(t)

    def _resume(self, t: float) -> list:
        """The paused answer goes on from where it stopped, its end that much later."""
        self.awaiting_words = False
        paused, self.paused_at = t - self.paused_at, None
        if self.speaking_until > t - paused:
            self.speaking_until += paused
        return [Record("resume", {"t": t, "paused_s": round(paused, 3)}), Resume(t), Show(t, {"status": "speaking"})]

    def _early(self, tr: Transcript) -> list:
        """Begin an Instant answer on the transcript of a pause that may end the question."""
        if not self.config.answer_early or tr.dropped or self.busy(tr.end):
            return []  # barge-in and backchannels need the final decision
        d = decide(tr.text, tr.end, phrase=self.config.wake_phrase, follow_up_until=self._window(tr.start), busy=False)
        if d.action != "ask":
            return []
        plan = self._plan(d.question, tr.start, tr.end, (tr.detected_at, tr.detected_perf), tr.asr_s, "reused")
        if plan.route.switch or (plan.route.target, plan.route.name) != ("vlm", "instant"):
            return []  # the slower modes show their reasoning at once, and skills are quick: they wait
        return self._start(replace(plan, tentative=True, heard=tr.text))

    def _heard(self, tr: Transcript, now: float) -> list:
        heard = {"start": tr.start, "end": tr.end, "text": tr.text, "asr": tr.asr_s, "no_speech_prob": tr.no_speech_prob}
        out: list = []
        pending = self._tentative()
        if pending is not None:
            if not tr.dropped and (tr.start, tr.end, tr.text) == (pending.start, pending.end, pending.heard):
                self.current = replace(pending, tentative=False, detected=(tr.detected_at, tr.detected_perf),
                                       asr_s=tr.asr_s)
                return [Record("heard", {**heard, "action": "ask", "reason": "answer begun on the early transcript"}),
                        Confirm(pending.id, (tr.detected_at, tr.detected_perf), tr.asr_s),
                        Show(pending.start, {"light": True}),
                        Show(pending.end, {"status": "thinking", "caption": pending.question, "answer": "",
                                           "evidence": None, "by": ""})]
            out += self._discard(pending, "the final transcript differs", tr.detected_at)
        if tr.dropped:
            return out + [Record("heard", {**heard, "action": "drop", "reason": tr.dropped}),
                          Show(tr.detected_at, {"status": "idle"})]
        # Translating, the other speaker's turns come and go: no follow-up window, or their next
        # sentence would go to the model as a question.
        window = -1.0 if self.active == TRANSLATE else self._window(tr.start)
        d = decide(tr.text, tr.end, phrase=self.config.wake_phrase, follow_up_until=window,
                   busy=self.busy(tr.end), push_to_talk=tr.push_to_talk)
        if d.action == "ignore" and self.active == TRANSLATE and not d.reason.startswith(("empty", "stop word")):
            # Translating: what the other person says (no wake phrase) is translated, not ignored; a
            # skill switch ("stop translating") needs no wake phrase either.
            route = self.route(tr.text, self.mode, active=self.active)
            if not (route.switch and route.target == "skill"):
                route = Route("skill", TRANSLATE, tr.text.strip(), "translating: the other speaker")
            plan = Plan(next(self._ids), route.question, tr.start, tr.end, (tr.detected_at, tr.detected_perf), route,
                        tr.asr_s, tr.early_asr)
            return out + [Record("heard", {**heard, "action": "translate", "reason": "translation mode"}),
                          *self._start(plan)]
        if (d.action == "ask" and not tr.push_to_talk and tr.end - tr.start < self.config.barge_in_after
                and self.busy(tr.end)):
            d = replace(d, action="ignore", question="", reason="backchannel while answering")  # "mm-hmm", "ok"
        out.append(Record("heard", {**heard, "action": d.action, "reason": d.reason}))
        if d.action == "ask":
            return out + self._start(self._plan(d.question, tr.start, tr.end, (tr.detected_at, tr.detected_perf),
                                                tr.asr_s, tr.early_asr))
        if d.action == "wake":
            self.follow_up_until, self.follow_up_from = tr.end + self.config.follow_up, tr.end
            return out + [Show(tr.start, {"light": True}),
                          Show(tr.end, {"status": "listening", "caption": tr.text, "answer": "", "evidence": None})]
        if d.action == "stop":
            self.follow_up_until, self.paused_at, self.awaiting_words = -1.0, None, False
            self.speaking_until = min(self.speaking_until, now)
            return out + [Record("stop", {"t": now, "text": tr.text, "turn": self._cut()}),
                          Cancel(self.current.id if self.answering and self.current else None, now, "stop"),
                          Show(now, {"status": "idle", "light": False, "caption": tr.text})]
        # ignored over an answer ("mm-hmm"): the answer still speaks, and the display says so
        return out + ([] if self.busy(tr.detected_at) else [Show(tr.detected_at, {"status": "idle"})])

    def _finished(self, ev: AnswerFinished) -> list:
        if self.current is None or ev.turn != self.current.id or not self.answering:
            return []  # an answer that was cancelled, discarded or overtaken: nothing waits for it
        self.answering, self.barged = False, False
        if not ev.cancelled:  # a cancelled answer's planned end was cleared from the speaker already
            self.speaking_until = max(self.speaking_until, ev.end)
            self.follow_up_until, self.follow_up_from = ev.end + self.config.follow_up, self.current.end
        return []

    # --- decisions ----------------------------------------------------------------------
    def _window(self, speech_start: float) -> float:
        # Speech already under way when the window opened (say, before a typed question) is no follow-up.
        return self.follow_up_until if speech_start >= self.follow_up_from else -1.0

    def _cut(self) -> int | None:
        """The answer a stop or barge-in cuts (its turn record has the same id), if any."""
        return self.current.id if self.current is not None else None

    def _tentative(self) -> Plan | None:
        return self.current if self.current is not None and self.current.tentative and self.answering else None

    def _plan(self, question: str, start: float, end: float, detected: tuple[float, float], asr_s: float = 0.0,
              early_asr: str = "") -> Plan:
        routed = self.route(question, self.mode, active=self.active, look=self.look)
        return Plan(next(self._ids), routed.question, start, end, detected, routed, asr_s, early_asr)

    def _start(self, plan: Plan) -> list:
        if plan.route.switch:  # a switch said alone ("think harder."): the question may follow without the phrase
            self.follow_up_until, self.follow_up_from = plan.end + self.config.follow_up, plan.end
            if plan.route.target == "skill":  # entered or left: the wearer hears which
                said = plan.route.said
                heard = replace(plan, question=said, route=Route("skill", "announce", said, plan.route.reason))
                return self._set_skill("" if plan.route.leave else plan.route.name, plan.end) + self._start(heard)
            return self._set_mode(plan.route.name, plan.end)
        out: list = []
        pending = self._tentative()
        if pending is not None:
            out += self._discard(pending, "another question", plan.detected[0])
        elif self.answering and self.current is not None:
            out.append(Cancel(self.current.id, plan.detected[0], "new question"))  # the newer question overtakes
        if self.paused_at is not None and not plan.tentative:  # what was paused does not go on under it
            if not out or not isinstance(out[-1], Cancel) or out[-1].t is None:
                out.append(Cancel(None, plan.detected[0], "new question"))
            self.paused_at, self.awaiting_words = None, False
            self.speaking_until = min(self.speaking_until, plan.detected[0])
        self.current, self.answering, self.barged = plan, True, False
        if not plan.tentative:
            said = plan.route.name == "announce"  # nothing was heard: the glasses speak up on their own
            out += [Show(plan.start, {"light": True}),
                    Show(plan.end, {"status": "thinking", "caption": "" if said else plan.question, "answer": "",
                                    "evidence": None, "by": plan.route.name if plan.route.target == "skill" else ""})]
        return out + [StartAnswer(plan)]

    def _discard(self, plan: Plan, why: str, t: float) -> list:
        """An answer begun on an early transcript that did not hold: it leaves no trace but a record."""
        if self.current is plan:
            self.current, self.answering = None, False
        return [Cancel(plan.id, None, "discard"),
                Record("speculative_answer", {"action": "discard", "why": why, "start": plan.start, "end": plan.end,
                                              "t": t, "text": plan.heard})]

    def _speculate(self, start: float, end: float, latest: bool = False) -> list:
        if not self.config.speculate:
            return []
        if self.answering and not self.barged:
            return []  # the answer has the model (and the cores) until the wearer speaks over it
        if self.busy(end) and not self.config.barge_in:
            return []  # an answer still playing would lose its CPU to a guess
        return [Speculate(start, end, latest)]

    def _set_skill(self, skill: str, t: float) -> list:
        """Enter or leave a skill's standing mode ("shopping mode", "stop translating")."""
        self.active = skill
        return [Record("skill_mode", {"t": t, "skill": skill}), Show(t, {"skill": skill})]

    def _set_mode(self, mode: str, t: float) -> list:
        """Switch the standing mode ("next" cycles); an answer in flight keeps the mode it started with."""
        if mode == "next":
            mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)] if self.mode in MODES else MODES[0]
        if mode not in MODES:
            return [Record("error", {"stage": "control", "message": f"unknown mode {mode!r}", "t": t})]
        self.mode = mode
        return [Record("mode", {"t": t, "mode": mode}), Show(t, {"mode": mode})]

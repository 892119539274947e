"""The control thread's work: turn-taking decides, `Control` carries the actions out.

Every event that reaches the control queue (speech events, transcripts, typed questions,
mode switches, finished answers) goes to `TurnTaking.handle`, and each action it returns
is done here, in order: display changes and log records, speculative vision, starting,
confirming, pausing, resuming and cancelling answers. Control overtakes data: a cancel reaches the answer's
token and the speaker in one step (`Playback.cancel`), whatever the answer is doing.

`Control` also keeps what the answers share: the recent turns (the prompt's history) and
the answers still running (the current one, and cancelled ones until their threads end).
"""
from __future__ import annotations

import ctypes
import threading
import time
from collections import deque
from typing import Callable

from core.clock import since
from core.messages import AnswerFinished, Transcript
from pipelines.answer import Answer, AnswerParts, pick
from pipelines.turns import Cancel, Confirm, Pause, Plan, Record, Resume, Show, Speculate, StartAnswer, TurnTaking


def _trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


_MALLOC_TRIM = _trim()


def release_memory() -> None:
    """Give the heap that an answer freed back to the system. Each answer runs in new threads (its
    own, the generator's), and glibc keeps what each thread's arena freed: without this, a long
    session grows by about a megabyte an answer (measured with 200 answers in one replay)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class Control:
    def __init__(self, turns: TurnTaking, parts: AnswerParts, *, history_turns: int, stale_frame: float,
                 realtime: bool, post: Callable[[AnswerFinished], None]):
        self.turns, self.parts = turns, parts
        self.stale_frame, self.realtime, self.post = stale_frame, realtime, post
        self.history: deque[tuple[str, str]] = deque(maxlen=history_turns)
        self.answers: dict[int, Answer] = {}  # running: the current one, and cancelled ones still stopping

    def handle(self, ev, clock) -> None:
        """One event from the control queue."""
        if isinstance(ev, AnswerFinished):
            self.answers.pop(ev.turn, None)
            if not ev.discarded:
                self.history.append((ev.question, ev.answer))
            release_memory()
        now = since((ev.detected_at, ev.detected_perf)) if isinstance(ev, Transcript) else clock.now()
        for action in self.turns.handle(ev, now):
            self.do(action)

    def do(self, action) -> None:
        parts = self.parts
        if isinstance(action, Show):
            parts.show(action.t, **action.fields)
        elif isinstance(action, Record):
            parts.log.write(action.kind, **action.fields)
        elif isinstance(action, Speculate):
            frames = [f for f in parts.frames() if action.start <= f.t <= action.end]  # the question's own
            # While the wearer still speaks, the newest sharp frame: a head turned now is prepared now
            frame = pick(frames, action.start, action.end, self.stale_frame, lead=0.0 if action.latest else 0.3)
            parts.speculator.start(action.start, frame, (parts.config.system_prompt, tuple(self.history)))
        elif isinstance(action, Cancel):
            answer = self.answers.get(action.turn) if action.turn is not None else None
            if answer is not None and action.reason == "discard":
                answer.discarded = True
                # the question goes on: its prepared frame still holds (the answer ran on a copy of its cache)
                parts.speculator.give_back(answer.spec)
            parts.playback.cancel(answer, action.t)
        elif isinstance(action, Pause):
            parts.playback.pause(action.t)
        elif isinstance(action, Resume):
            parts.playback.resume(action.t)
        elif isinstance(action, Confirm) and action.turn in self.answers:
            self.answers[action.turn].confirm(action.detected, action.asr_s)
        elif isinstance(action, StartAnswer):
            self.start(action.plan)

    def start(self, plan: Plan) -> None:
        answer = Answer(plan, self.parts, tuple(self.history), self.parts.speculator.take())
        self.answers[plan.id] = answer
        answer.thread = threading.Thread(target=lambda: self.post(answer.run()), name="turn", daemon=True)
        answer.thread.start()
        if not self.realtime:
            answer.thread.join()  # fast pace: the media timeline waits for the answer (see pipelines/session.py)

    def cancel_all(self) -> None:
        for answer in list(self.answers.values()):
            self.parts.playback.cancel(answer, None)

    def join(self, timeout: float) -> bool:
        """Wait (at most `timeout` s in all) for the answers' threads; True when none is left."""
        deadline = time.perf_counter() + timeout
        for answer in list(self.answers.values()):
            if answer.thread is not None:
                answer.thread.join(max(0.0, deadline - time.perf_counter()))
        return not self.running()

    def running(self) -> bool:
        return any(a.thread is not None and a.thread.is_alive() for a in list(self.answers.values()))

    def forget_ended(self) -> None:
        """Answers whose threads ended without a word (the session was stopping) wait for nothing."""
        for turn, answer in list(self.answers.items()):
            if answer.thread is not None and not answer.thread.is_alive():
                self.answers.pop(turn, None)

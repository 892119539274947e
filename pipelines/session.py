"""The one module that knows the runtime wiring: every queue and thread is made here.

    source ─AudioChunk─▶ [audio_q] ─▶ hearing ─Utterance─▶ [asr_q] ─▶ asr ─Transcript─┐
       │                                 │ speech events, typed questions             │
       └─VideoFrame─▶ FrameRing          └──────────────▶ [control_q] ◀───────────────┘
                                                               │ turn-taking: actions
                   Speculate ─▶ Speculator (prepare thread)    │
                   StartAnswer ─▶ Answer (its thread): answerer ─▶ TTS ─▶ Playback ─▶ speaker
                   Cancel ─▶ Playback.cancel (control overtakes data)

The parts, each in its own module: `Hearing` (pipelines/hearing.py) turns audio into speech
events and utterances; `EarlyASR` transcribes them; `TurnTaking` (pipelines/turns.py) is the
pure state machine that decides; the router (pipelines/router.py) picks the answerer;
`Answer` (pipelines/answer.py) gives one answer; `Speculator` (pipelines/speculate.py)
prepares the frame while the wearer speaks; `Timeline` records the display.

Pacing. Live and `--pace realtime` run every thread freely against the wall clock. In
`--pace fast` the hearing thread hands each utterance and typed question to control and
waits until control has answered it (lock-step), so a replay gives the same turns however
fast the machine is; each answer is placed at the moment it was heard plus its latency.

Memory (`memory`, a pipelines/memory/describe.py `Describer`, optional). Live and
`--pace realtime`: a `keyframes` thread offers the ring's frames to the keyframe picker and a
`describe` thread describes the waiting keyframe while the session is idle; anything the
wearer does (speech, a typed question, a button) interrupts a description in flight. `--pace
fast`: the hearing thread does both after each audio chunk, at the media time it has reached
(and waits for the description), so the media clock stands still while a keyframe is described. Describing then costs no media
time, never overlaps an answer (which runs in lock-step too), and a replay keeps the same
keyframes and describes the same ones however fast the machine is; answers' latencies are
what they are without memory. Live, the `describe` thread shows what really keeps up.

Ports (source, speaker, display) are passed in; this module never imports `glasses/`.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable

from core.clock import Lockstep
from core.messages import (SAMPLE_RATE, Announcement, AnswerFinished, AudioChunk, DisplayState, EndOfStream, PushToTalk,
                           StageError, Transcript, TypedQuestion, Utterance, VideoFrame)
from pipelines.answer import NO_IMAGE_NOTE, AnswerConfig, AnswerParts, Playback  # noqa: F401 - tests use the note
from pipelines.asr import EarlyASR
from pipelines.control import Control
from pipelines.hearing import Hearing, HearingConfig
from pipelines.memory.work import MemoryWork
from pipelines.router import route
from pipelines.skills.work import Announcer, SkillWork
from pipelines.speculate import Speculator
from pipelines.timeline import Timeline
from pipelines.turn_model import shared_smart_turn
from pipelines.turns import TRANSLATE, TurnConfig, TurnTaking
from pipelines.vad import EndpointConfig
from pipelines.vision import FrameRing
from pipelines.vlm import SYSTEM_PROMPT

log = logging.getLogger("session")

LIVE_KEEP = 2000  # display changes and log records a live session keeps in memory (the file has all)


@dataclass(frozen=True)
class SessionConfig:
    wake_phrase: str = "hey glasses"
    follow_up: float = 6.0  # seconds after an answer in which no wake phrase is needed
    mode: str = "instant"
    agents: int = 4  # contemplating: drafts generated in one batch
    history_turns: int = 3
    max_new_tokens: int = 60
    system_prompt: str = SYSTEM_PROMPT
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    image_side: int = 512
    ring_frames: int = 150
    asks: tuple[tuple[float, str], ...] = ()
    # The first piece is spoken at a clause end or after this many words (0: sentences). Each word is a
    # decode step the wearer waits for (about 45 ms on 2 CPU cores): 6 words, not 10, took 4 steps off
    # voice to voice (BENCHMARKS.md, issue 10); the pieces after it are whole sentences.
    first_chunk_words: int = 6
    barge_in: bool = True
    barge_in_after: float = 0.4  # speech shorter than this ("mm-hmm") does not interrupt
    stale_frame: float = 2.0  # a frame older than this at question time is "can't see right now"
    audio_queue: int = 64  # chunks of 32 ms: ~2 s of slack before the live source drops audio
    speculative_vision: bool = True  # encode the frame while the question is spoken (pipelines/speculate.py)
    # ... and look at the view again this often while it is spoken: a head turned mid-question is
    # prepared again then, not at the pause, where the answer would wait for it (BENCHMARKS.md, issue 10)
    look_every: float = 0.2
    early_asr: bool = True  # transcribe when the silence begins, not when the endpointer decides
    speculative_answer: bool = True  # real time only: start an Instant answer on the early transcript
    utterance_tail: float = 0.1  # audio kept after the end of speech; early ASR starts once it exists
    turn: str = "silence"  # "smart": Smart Turn judges each pause (pipelines/turn_model.py); the app defaults to it
    models: dict = field(default_factory=dict)  # logged with every turn
    skill: str = ""  # the standing skill at the start (--skill shopping)


def put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Blocking put that gives up when the session stops (never a hang on shutdown)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def get(q: queue.Queue, stop: threading.Event, now: Callable[[], float]):
    """Blocking get that wakes when the session stops: stop() must not leave a thread waiting."""
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return EndOfStream(now())


class Session:
    def __init__(self, config: SessionConfig, *, source, vad, asr, vlm, tts, speaker, clock, log_,
                 display=None, on_progress: Callable[[float], None] | None = None, skills=(), turn_model=None,
                 memory=None, notes: Callable[[str], str] | None = None):
        c = config
        self.config, self.source, self.clock, self.log, self.on_progress = c, source, clock, log_, on_progress
        self.speaker = speaker
        live = clock.realtime
        self.ring = FrameRing(c.ring_frames)
        self.audio_q: queue.Queue = queue.Queue(maxsize=c.audio_queue)
        self.asr_q: queue.Queue = queue.Queue(maxsize=8)
        self.control_q: queue.Queue = queue.Queue(maxsize=256)
        self.lockstep = Lockstep(not live)
        self.stop_event = threading.Event()
        self.screen = Timeline(DisplayState(mode=c.mode, skill=c.skill), display, keep=LIVE_KEEP if live else None)
        if turn_model is None and c.turn == "smart":
            turn_model = shared_smart_turn()  # loaded once per process; None (one warning) without it
        self.hearing = Hearing(HearingConfig(c.endpoint, c.early_asr, c.utterance_tail, c.barge_in_after, c.asks,
                                             c.turn, look_every=c.look_every if c.speculative_vision else 0.0),
                               vad, clock, turn_model)
        self.early = EarlyASR(asr)
        skills = {s.name: s for s in (*skills, Announcer())}
        self.turns = TurnTaking(TurnConfig(c.wake_phrase, c.follow_up, c.mode, c.barge_in, c.barge_in_after,
                                           c.speculative_vision, c.speculative_answer and c.early_asr and live,
                                           skill=c.skill),
                                partial(route, skills=tuple(skills.values())), look=lambda: self._skills.look())
        # Timers' announcements, video recording, what skills see (pipelines/skills/work.py)
        self._skills = SkillWork(skills.values(), lambda now: self.turns.busy(now) or bool(self.control.answers),
                                 self.show, self.ring.detailed)
        self.speculator = Speculator(vlm, enabled=c.speculative_vision, image_side=c.image_side,
                                     max_new_tokens=c.max_new_tokens)
        self.playback = Playback(speaker)
        answer_config = AnswerConfig(c.system_prompt, c.max_new_tokens, c.image_side, c.first_chunk_words, c.agents,
                                     c.stale_frame, c.models, c.speculative_vision)
        parts = AnswerParts(answer_config, vlm, tts, self.playback, self.speculator, skills, self.ring.snapshot,
                            self.show, log_, self.stop_event, c.early_asr, notes, self.ring.detailed)
        self.control = Control(self.turns, parts, history_turns=c.history_turns, stale_frame=c.stale_frame,
                               realtime=live, post=partial(self._put, self.control_q))
        self.dropped_audio = 0
        self.memory = memory  # describes keyframes while idle (see the module doc), or None
        self._memory = MemoryWork(self, memory) if memory is not None else None
        self._transcribing = False  # the ASR thread is on a final utterance (memory waits for it)

    # --- the outside: commands, display, figures ----------------------------------------
    @property
    def mode(self) -> str:
        return self.turns.mode

    def show(self, t: float, **fields) -> None:
        """Record a display change at session time t (replay renders them; live shows them now)."""
        self.screen.show(t, **fields)

    def timeline(self):
        return self.screen.states()

    def sizes(self) -> dict[str, int]:
        """How many items each per-session collection holds now (live sessions keep them bounded)."""
        return {"display_changes": len(self.screen), "log_records": len(self.log.records),
                "frames": len(self.ring.snapshot()), "history": len(self.control.history),
                "answers": len(self.control.answers),
                **({"memory_backlog": self.memory.backlog()} if self.memory is not None else {})}

    def end_fields(self) -> dict:
        """What the `end` record says besides why: dropped audio, and what memory kept."""
        return {"dropped_audio_chunks": self.dropped_audio,
                **({"memory": self.memory.figures()} if self.memory is not None else {})}

    def idle(self) -> bool:
        """Nothing heard is waiting to be answered, and nothing is being answered or said."""
        now = self.clock.now()
        return (not self.control.answers and not self.turns.busy(now) and self.speaker.busy_until() <= now
                and not self.hearing.endpointer.in_speech
                and self.audio_q.empty() and self.asr_q.empty() and self.control_q.empty())

    def submit(self, event) -> None:
        """Control from outside the media (buttons, typed questions, mode keys); never blocks.
        Push-to-talk travels with the audio: the hearing thread applies it at the button's time."""
        if isinstance(event, TypedQuestion) and not event.detected_perf:
            event = replace(event, detected_perf=time.perf_counter())  # latencies run from here
        target = self.audio_q if isinstance(event, PushToTalk) else self.control_q
        self._wearer_acts()
        try:
            target.put_nowait(event)
        except queue.Full:
            log.warning("control queue full: dropped %s", type(event).__name__)

    # --- threads ----------------------------------------------------------------------------
    def run(self) -> list[dict]:
        threads = [threading.Thread(target=self._guard, args=(name, loop), name=name, daemon=True)
                   for name, loop in (("source", self._source_loop), ("hearing", self._hearing_loop),
                                      ("asr", self._asr_loop),
                                      *(self._memory.loops() if self._memory is not None else []))]
        for th in threads:
            th.start()
        interrupted = ""
        try:
            self._control_loop()
        except KeyboardInterrupt as err:  # Ctrl+C or SIGTERM in a replay: the log says so, then it ends
            interrupted = "terminated (SIGTERM)" if type(err).__name__ == "Terminated" else "interrupted (Ctrl+C)"
            raise
        finally:
            self.stop()
            for th in threads:
                th.join(timeout=2.0)
            self.join(2.0)
            if interrupted:  # last: a cancelled answer still writes its record while it stops
                self.log.write("end", t=self.clock.now(), reason=interrupted, **self.end_fields())
        return self.log.turns()

    def stop(self) -> None:
        self.stop_event.set()
        self.lockstep.stop()
        self.control.cancel_all()
        self.speculator.close()
        self._wearer_acts()  # a description in flight stops at its next layer or token

    def join(self, timeout: float) -> bool:
        """Wait (at most `timeout` s) for the answers' threads to end; True when none is left."""
        return self.control.join(timeout)

    def _guard(self, name: str, loop: Callable[[], None]) -> None:
        """A thread that dies says so: control hears a StageError instead of waiting forever."""
        try:
            loop()
        except Exception as err:  # noqa: BLE001 - reported, then the session ends cleanly
            log.exception("%s stopped", name)
            self._put(self.control_q, StageError(name, f"{type(err).__name__}: {err}", self.clock.now()))

    def _put(self, q: queue.Queue, item) -> bool:
        return put(q, item, self.stop_event)

    def _get(self, q: queue.Queue):
        return get(q, self.stop_event, self.clock.now)

    def _source_loop(self) -> None:
        t_end = 0.0
        for ev in self.source.events():
            if self.stop_event.is_set():
                break
            self.clock.wait_until(ev.t, self.stop_event)
            if isinstance(ev, VideoFrame):
                self.ring.add(ev)
                self._skills.offer(ev)
            elif isinstance(ev, AudioChunk):
                t_end = ev.t + len(ev.samples) / SAMPLE_RATE
                if not self.clock.realtime:
                    if not self._put(self.audio_q, ev):
                        return
                    continue
                try:  # a live source must never block: drop and count instead
                    self.audio_q.put_nowait(ev)
                except queue.Full:
                    self.dropped_audio += 1
        self._put(self.audio_q, EndOfStream(t_end))

    def _hearing_loop(self) -> None:
        while True:
            item = self._get(self.audio_q)
            if isinstance(item, PushToTalk):
                self.hearing.press(item)
            elif isinstance(item, EndOfStream):
                for out in self.hearing.finish(item.t):
                    self._route(out)
                self._put(self.asr_q, item)
                return
            else:
                for out in self.hearing.feed(item):
                    self._route(out)
                if not self.clock.realtime:  # fast pace: timers at the media time reached (live: control loop)
                    for announcement in self._skills.due(item.t):
                        self._route(announcement)
                if self._memory is not None and not self.clock.realtime:
                    self._memory.remember()  # fast pace: here, at the media time reached (see the module doc)
                if self.on_progress:
                    self.on_progress(item.t)

    def _route(self, message) -> None:
        """Where hearing's messages go; in fast pace the media waits until questions are answered."""
        self._wearer_acts()
        if isinstance(message, Utterance) and message.early:
            try:
                self.asr_q.put_nowait(message)  # a guess: if ASR is behind, the final cut is transcribed as usual
            except queue.Full:
                pass
            return
        final = isinstance(message, (Utterance, TypedQuestion, Announcement))
        if final:
            self.lockstep.hand_over()
        self._put(self.asr_q if isinstance(message, Utterance) else self.control_q, message)
        if final:
            self.lockstep.wait()

    def _asr_loop(self) -> None:
        while True:
            item = self._get(self.asr_q)
            if isinstance(item, EndOfStream):
                self._put(self.control_q, item)
                return
            self._transcribing = not item.early
            if hasattr(self.early.stage, "translating"):  # "translate what they say": Whisper's translate task
                self.early.stage.translating = self.turns.active == TRANSLATE
            try:
                transcript = self.early.process(item)
            except Exception as err:  # noqa: BLE001 - one bad utterance must not end the session
                log.exception("asr failed")
                if item.early:
                    continue  # the final cut will be tried again
                transcript = Transcript(item.start, item.end, item.detected_at, "", 0.0, 1.0, f"asr error: {err}",
                                        item.detected_perf, item.push_to_talk)
            if transcript is not None:  # None: an early cut, kept until the endpointer decides
                self._put(self.control_q, transcript)
            elif item.early and self.turns.config.answer_early and self.early.kept is not None:
                self._put(self.control_q, replace(self.early.kept, early_asr="early"))
            self._transcribing = False  # its transcript waits in the control queue: busy all the same

    # --- control: turn-taking decides, Control carries its actions out ------------------------
    def _control_loop(self) -> None:
        while True:
            if self.clock.realtime:  # timers on the wall clock, with or without a microphone
                for announcement in self._skills.due(self.clock.now()):
                    self.control.handle(announcement, self.clock)
            try:
                ev = self.control_q.get(timeout=0.2)
            except queue.Empty:
                if self.stop_event.is_set():
                    return
                continue
            if isinstance(ev, (EndOfStream, StageError)):
                if isinstance(ev, StageError):
                    self.log.write("error", stage=ev.stage, message=ev.message, t=ev.t)
                self._let_answers_finish()
                self.log.write("end", t=ev.t, **self.end_fields())
                return
            question = ((isinstance(ev, Transcript) and ev.early_asr != "early")
                        or isinstance(ev, (TypedQuestion, Announcement)))
            if question:
                self._wearer_acts()  # an answer may start now: a description in flight stops first
            self.control.handle(ev, self.clock)
            if question:
                self.lockstep.done()

    def _let_answers_finish(self) -> None:
        """The media ended: the last answer still speaks to its end (its AnswerFinished is taken here)."""
        while self.control.answers and not self.stop_event.is_set():
            try:
                ev = self.control_q.get(timeout=0.1)
            except queue.Empty:
                self.control.forget_ended()
                continue
            if isinstance(ev, AnswerFinished):
                self.control.handle(ev, self.clock)

    def _wearer_acts(self) -> None:
        """Speech, a question, a button: a description in flight yields the cores at once."""
        if self._memory is not None:
            self._memory.interrupt()

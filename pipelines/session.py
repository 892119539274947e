"""The one module that knows the runtime wiring: every queue and thread is made here.

    source ──AudioChunk──▶ [audio_q] ──▶ hearing (VAD + endpointer) ──Utterance──▶ [asr_q] ──▶ asr
       │                                     │ SpeechStarted, TypedQuestion              │ Transcript
       └──VideoFrame──▶ FrameRing            └────────────────────▶ [control_q] ◀────────┘
                                                                        │
                                 control (this thread): decide ─▶ turn: VLM stream ─▶ sentences ─▶ TTS ─▶ speaker

Speculation (live and replay alike; `speculative_vision` and `early_asr` turn it off). Once speech
has gone on for a moment (the endpointer's 0.25 s onset; 0.4 s over an answer), control picks
the frame and a "prepare" thread has the VLM encode it and pre-fill the prompt up to the
question (pipelines/speculate.py); the pause that may end the question re-checks the pick. Once that pause has lasted `utterance_tail`, the hearing
thread sends the utterance to ASR early (EarlyASR); if the endpointer then ends the same
utterance, its transcript is already there. Both are checked when used and redone when
the frame or the speech changed, so answers are the same with or without them. Live and at
`--pace realtime` (`speculative_answer`), an Instant answer even starts on that early
transcript: it generates while the endpointer is still waiting, but nothing is shown or
spoken until the endpointer ends the same utterance with the same words; if speech resumes
or the words differ, it is discarded and leaves no trace but a `speculative_answer` record.

Control overtakes data: a stop or a barge-in sets the turn's cancel event (generation
stops at the next token, queued speech is skipped) and clears the speaker at once.

Pacing. Live and `--pace realtime` run every thread freely against the wall clock. In
`--pace fast` the hearing thread hands each finished utterance to control and waits
until control has answered it (lock-step), so events are handled in media-time order
and a replay gives the same turns however fast the machine is; each answer is placed on
the media timeline at the moment it was heard plus its measured latency.

Ports (source, speaker, display) are passed in; this module never imports `glasses/`.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from pipelines.asr import EarlyASR
from core.audio import AudioHistory
from core.clock import since
from pipelines import modes
from core.messages import (
    SAMPLE_RATE, AudioChunk, DisplayState, EndOfStream, FrameSnapshot, ModeSwitch, PushToTalk, SpeechOnset,
    SpeechPaused, SpeechResumed, SpeechStarted, StageError, Transcript, TypedQuestion, Utterance, VideoFrame, VLMRequest,
)
from pipelines.modes import ModeContext
from pipelines.speculate import Speculation, judge
from pipelines.text import clean_for_speech, first_piece, split_ready
from pipelines.vad import WINDOW, EndpointConfig, Endpointer, SpeechEvent
from pipelines.vision import FrameRing, fit_for_model, pick_frame
from pipelines.vlm import SYSTEM_PROMPT
from pipelines.wake import decide

log = logging.getLogger("session")

NO_IMAGE_NOTE = (
    " There is no camera image right now: if the question needs one, say that you can't see anything right now."
)


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
    first_chunk_words: int = 10  # the first piece is spoken at a clause end or after this many words (0: sentences)
    barge_in: bool = True
    barge_in_after: float = 0.4  # speech shorter than this ("mm-hmm") does not interrupt
    stale_frame: float = 2.0  # a frame older than this at question time is "can't see right now"
    audio_queue: int = 64  # chunks of 32 ms: ~2 s of slack before the live source drops audio
    speculative_vision: bool = True  # encode the frame while the question is spoken (see the module doc)
    early_asr: bool = True  # transcribe when the silence begins, not when the endpointer decides
    speculative_answer: bool = True  # real time only: start an Instant answer on the early transcript
    utterance_tail: float = 0.1  # audio kept after the end of speech; early ASR starts once it exists
    models: dict = field(default_factory=dict)  # logged with every turn


class Lockstep:
    """Fast pace: the hearing thread waits until control has handled what it handed over."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._pending = 0
        self._cond = threading.Condition()
        self.stopping = False

    def hand_over(self) -> None:
        if self.enabled:
            with self._cond:
                self._pending += 1

    def done(self) -> None:
        if self.enabled:
            with self._cond:
                self._pending -= 1
                self._cond.notify_all()

    def wait(self) -> None:
        if self.enabled:
            with self._cond:
                self._cond.wait_for(lambda: self._pending <= 0 or self.stopping)

    def stop(self) -> None:
        with self._cond:
            self.stopping = True
            self._cond.notify_all()


@dataclass
class Turn:
    question: str
    start: float
    end: float  # end of the user's speech (or the --ask time)
    detected: tuple[float, float]  # (session time, perf_counter) when the end was decided
    asr_s: float = 0.0
    early_asr: str = ""
    spec: Speculation | None = None  # speculative vision made for this question, if any
    tentative: bool = False  # begun on an early transcript: silent until the endpointer confirms
    heard: str = ""  # the transcript it was begun on
    confirmed: threading.Event = field(default_factory=threading.Event)
    discarded: bool = False
    mode: str = "instant"
    mode_reason: str = ""
    cancel: threading.Event = field(default_factory=threading.Event)
    futures: list = field(default_factory=list)
    thread: threading.Thread | None = None


class Session:
    def __init__(self, config: SessionConfig, *, source, vad, asr, vlm, tts, speaker, clock, log_,
                 display=None, on_progress: Callable[[float], None] | None = None):
        self.config = config
        self.source, self.vad, self.asr, self.vlm, self.tts = source, vad, asr, vlm, tts
        self.speaker, self.clock, self.log, self.display = speaker, clock, log_, display
        self.on_progress = on_progress
        self.ring = FrameRing(config.ring_frames)
        self.audio_q: queue.Queue = queue.Queue(maxsize=config.audio_queue)
        self.asr_q: queue.Queue = queue.Queue(maxsize=8)
        self.control_q: queue.Queue = queue.Queue(maxsize=256)
        self.lockstep = Lockstep(not clock.realtime)
        self.stop_event = threading.Event()
        self.history: deque[tuple[str, str]] = deque(maxlen=config.history_turns)
        self.follow_up_until = -1.0
        self.follow_up_from = -1.0  # only speech that starts after this opened the window counts as a follow-up
        self.mode = config.mode
        self.turn: Turn | None = None
        self.dropped_audio = 0
        self.state = DisplayState(mode=config.mode)
        self.changes: list[tuple[float, int, dict]] = []
        self._seq = 0
        self._show_lock = threading.Lock()
        self.early = EarlyASR(asr)
        self.spec: Speculation | None = None  # control thread only
        self.prep = ThreadPoolExecutor(1, thread_name_prefix="prepare")

    # --- display ------------------------------------------------------------------------
    def show(self, t: float, **fields) -> None:
        """Record a display change at session time t (replay renders them; live shows them now)."""
        with self._show_lock:
            self._seq += 1
            self.changes.append((t, self._seq, fields))
            self.state = replace(self.state, **fields)
            if self.display is not None:
                self.display.show(self.state)

    def timeline(self) -> list[tuple[float, DisplayState]]:
        """The display's states in session-time order (a pure fold of the recorded changes)."""
        state = DisplayState(mode=self.config.mode)
        out = []
        for t, _, fields in sorted(self.changes):
            state = replace(state, **fields)
            out.append((t, state))
        return out

    # --- threads ------------------------------------------------------------------------
    def run(self) -> list[dict]:
        threads = [
            threading.Thread(target=self._guard, args=("source", self._source_loop), name="source", daemon=True),
            threading.Thread(target=self._guard, args=("hearing", self._hearing_loop), name="hearing", daemon=True),
            threading.Thread(target=self._guard, args=("asr", self._asr_loop), name="asr", daemon=True),
        ]
        for th in threads:
            th.start()
        try:
            self._control_loop()
        finally:
            self.stop()
            for th in threads:
                th.join(timeout=2.0)
            self.prep.shutdown(wait=False, cancel_futures=True)
        return self.log.turns()

    def submit(self, event) -> None:
        """Control from outside the media (buttons, typed questions, mode keys); never blocks.

        Push-to-talk travels with the audio (the hearing thread cuts the utterance at the
        button's times); everything else goes straight to control.
        """
        if isinstance(event, TypedQuestion) and not event.detected_perf:
            event = replace(event, detected_perf=time.perf_counter())
        target = self.audio_q if isinstance(event, PushToTalk) else self.control_q
        try:
            target.put_nowait(event)
        except queue.Full:
            log.warning("control queue full: dropped %s", type(event).__name__)

    def stop(self) -> None:
        self.stop_event.set()
        self.lockstep.stop()
        if self.turn:
            self._interrupt(self.turn, None, "shutdown")

    def _guard(self, name: str, loop: Callable[[], None]) -> None:
        """A thread that dies says so: control hears a StageError instead of waiting forever."""
        try:
            loop()
        except Exception as err:  # noqa: BLE001 - reported, then the session ends cleanly
            log.exception("%s stopped", name)
            self._put(self.control_q, StageError(name, f"{type(err).__name__}: {err}", self.clock.now()))

    def _put(self, q: queue.Queue, item) -> bool:
        """Blocking put that gives up when the session stops (never a hang on shutdown)."""
        while not self.stop_event.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: queue.Queue):
        """Blocking get that wakes when the session stops: stop() must not leave a thread waiting."""
        while True:
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                if self.stop_event.is_set():
                    return EndOfStream(self.clock.now())

    def _source_loop(self) -> None:
        t_end = 0.0
        for ev in self.source.events():
            if self.stop_event.is_set():
                break
            self.clock.wait_until(ev.t, self.stop_event)
            if isinstance(ev, VideoFrame):
                self.ring.add(ev)
            elif isinstance(ev, AudioChunk):
                t_end = ev.t + len(ev.samples) / SAMPLE_RATE
                if self.clock.realtime:
                    try:  # a live source must never block: drop and count instead
                        self.audio_q.put_nowait(ev)
                    except queue.Full:
                        self.dropped_audio += 1
                elif not self._put(self.audio_q, ev):
                    return
        self._put(self.audio_q, EndOfStream(t_end))

    def _hearing_loop(self) -> None:
        endpointer = Endpointer(self.config.endpoint)
        asks = sorted(self.config.asks)
        origin: float | None = None
        consumed = 0  # samples turned into VAD windows
        history = AudioHistory(self.config.endpoint.max_utterance + 2.0)  # recent audio, to cut utterances from
        barge_sent = False
        paused_at: float | None = None  # end of speech of a pause not yet sent to early ASR
        early_for: float | None = None  # speech start of the utterance an early cut was sent for
        ptt_start: float | None = None  # push-to-talk held since
        presses: list[PushToTalk] = []
        while True:
            item = self._get(self.audio_q)
            if isinstance(item, PushToTalk):
                presses.append(item)  # applied when the audio reaches its time: order follows the media
                presses.sort(key=lambda p: p.t)
                continue
            if isinstance(item, EndOfStream):
                for ev in endpointer.flush(item.t):
                    self._hand_utterance(ev, history)
                for t, text in asks:
                    self._hand_question(TypedQuestion(t, text))
                self._put(self.asr_q, item)
                return
            if origin is None:
                origin = item.t
            while asks and asks[0][0] <= item.t:
                self.clock.advance(asks[0][0])
                self._hand_question(TypedQuestion(*asks.pop(0)))
            while presses and presses[0].t <= item.t:
                press = presses.pop(0)
                if press.pressed:
                    ptt_start = press.t
                    endpointer = Endpointer(self.config.endpoint)  # the button, not the VAD, bounds this question
                    self._put(self.control_q, SpeechStarted(press.t, press.t))
                elif ptt_start is not None:
                    self._hand_utterance(SpeechEvent("end", press.t, start=ptt_start, end=press.t), history,
                                         push_to_talk=True)
                    ptt_start = None
            history.append(item.t, item.samples)
            for prob in self.vad(item.samples):
                t = origin + consumed / SAMPLE_RATE
                consumed += WINDOW
                self.clock.advance(t + WINDOW / SAMPLE_RATE)
                for ev in ([] if ptt_start is not None else endpointer.update(prob, t)):
                    if ev.kind == "start":
                        barge_sent = False
                        self._put(self.control_q, SpeechOnset(ev.t, ev.detected_at))
                    elif ev.kind == "pause":
                        paused_at = ev.t
                        self._put(self.control_q, SpeechPaused(endpointer.speech_start, ev.t))
                    elif ev.kind == "resume":
                        paused_at = None
                        if early_for is not None:  # what was transcribed early is no longer the question
                            self._put(self.control_q, SpeechResumed(early_for, ev.t))
                            early_for = None
                    elif ev.kind == "end":
                        paused_at, early_for = None, None
                        self._hand_utterance(ev, history)
                if paused_at is not None and self.config.early_asr and \
                        t + WINDOW / SAMPLE_RATE >= paused_at + self.config.utterance_tail:
                    self._hand_early(endpointer.speech_start, paused_at, history)
                    paused_at, early_for = None, endpointer.speech_start
                # voiced time, not time since onset: a 0.3 s "mm-hmm" stays "in speech" through its trailing silence
                if endpointer.in_speech and not barge_sent and endpointer.voiced >= self.config.barge_in_after:
                    barge_sent = True
                    self._put(self.control_q, SpeechStarted(endpointer.speech_start, self.clock.now()))
            if self.on_progress:
                self.on_progress(item.t)

    def _cut(self, history: AudioHistory, start: float, end: float) -> np.ndarray:
        # A little context on both sides helps Whisper; early and final cuts of one utterance are equal.
        return history.between(start - 0.3, end + self.config.utterance_tail)

    def _hand_early(self, start: float, end: float, history: AudioHistory) -> None:
        """Early ASR: the utterance as it would be cut if this silence ends it (no lock-step: a guess)."""
        try:
            self.asr_q.put_nowait(Utterance(start, end, self.clock.now(), self._cut(history, start, end),
                                            time.perf_counter(), early=True))
        except queue.Full:
            pass  # ASR is behind: the final cut will be transcribed as usual

    def _hand_utterance(self, ev, history: AudioHistory, push_to_talk: bool = False) -> None:
        now = self.clock.now()
        audio = self._cut(history, ev.start, ev.end)
        utt = Utterance(ev.start, ev.end, now, audio, time.perf_counter(), push_to_talk)
        self.lockstep.hand_over()
        self._put(self.asr_q, utt)
        self.lockstep.wait()

    def _hand_question(self, q: TypedQuestion) -> None:
        self.lockstep.hand_over()
        self._put(self.control_q, replace(q, detected_perf=time.perf_counter()))
        self.lockstep.wait()

    def _asr_loop(self) -> None:
        while True:
            item = self._get(self.asr_q)
            if isinstance(item, EndOfStream):
                self._put(self.control_q, item)
                return
            try:
                transcript = self.early.process(item)
            except Exception as err:  # one bad utterance must not end the session
                log.exception("asr failed")
                if item.early:
                    continue  # the final cut will be tried again
                transcript = Transcript(item.start, item.end, item.detected_at, "", 0.0, 1.0,
                                        f"asr error: {err}", item.detected_perf)
            if transcript is not None:  # None: an early cut, kept until the endpointer decides
                self._put(self.control_q, transcript)
            elif item.early and self._answers_early() and self.early.kept is not None:
                self._put(self.control_q, replace(self.early.kept, early_asr="early"))

    # --- control ------------------------------------------------------------------------
    def _control_loop(self) -> None:
        while True:
            try:
                ev = self.control_q.get(timeout=0.2)
            except queue.Empty:
                if self.stop_event.is_set():
                    return
                continue
            if isinstance(ev, EndOfStream):
                self._finish_turn()
                self.log.write("end", t=ev.t, dropped_audio_chunks=self.dropped_audio)
                return
            if isinstance(ev, StageError):
                self.log.write("error", stage=ev.stage, message=ev.message, t=ev.t)
                self._finish_turn()
                return
            if isinstance(ev, SpeechStarted):
                self._on_speech_started(ev)
            elif isinstance(ev, SpeechOnset):
                if not self._busy(ev.t):  # over an answer it may be a backchannel: wait for barge-in's 0.4 s
                    self._speculate(ev.start, ev.t)
            elif isinstance(ev, SpeechPaused):
                self._speculate(ev.start, ev.end)
            elif isinstance(ev, Transcript) and ev.early_asr == "early":
                self._on_early_transcript(ev)  # not handed over in lock-step: no done()
            elif isinstance(ev, SpeechResumed):
                if self.turn is not None and self.turn.tentative and self.turn.start == ev.start:
                    self._discard(self.turn, "speech resumed", ev.t)
            elif isinstance(ev, Transcript):
                self._on_transcript(ev)
                self.lockstep.done()
            elif isinstance(ev, TypedQuestion):
                self.log.write("ask", t=ev.t, text=ev.text)
                self._start_turn(Turn(ev.text, ev.t, ev.t, (ev.t, ev.detected_perf)))
                self.lockstep.done()
            elif isinstance(ev, ModeSwitch):
                self.set_mode(ev.mode, ev.t)

    def set_mode(self, mode: str, t: float) -> None:
        """Switch the standing mode ("next" cycles); a turn in flight keeps the mode it started with."""
        if mode == "next":
            mode = modes.MODES[(modes.MODES.index(self.mode) + 1) % len(modes.MODES)] if self.mode in modes.MODES else modes.MODES[0]
        if mode not in modes.MODES:
            self.log.write("error", stage="control", message=f"unknown mode {mode!r}", t=t)
            return
        self.mode = mode
        self.log.write("mode", t=t, mode=mode)
        self.show(t, mode=mode)

    def _busy(self, t: float) -> bool:
        return (self.turn is not None and self.turn.thread is not None and self.turn.thread.is_alive()) or \
            self.speaker.busy_until() > t

    def _on_speech_started(self, ev: SpeechStarted) -> None:
        if self.config.barge_in and self._busy(ev.detected_at):
            self.log.write("barge_in", t=ev.detected_at, speech_start=ev.t)
            self.follow_up_until = max(self.follow_up_until, ev.detected_at + self.config.follow_up)  # hear the new question
            self._interrupt(self.turn, ev.detected_at, "barge-in")
        self.show(ev.t, status="listening")
        self._speculate(ev.t, max(ev.detected_at, ev.t))

    # --- speculative vision (control thread) ---------------------------------------------
    def _pick(self, frames: list[FrameSnapshot], start: float, end: float) -> FrameSnapshot | None:
        frame = pick_frame(frames, start, end)
        if frame is not None and end - frame.t > self.config.stale_frame:
            return None  # the camera stopped delivering: an old frame would answer about the past
        return frame

    def _context(self) -> tuple:
        return self.config.system_prompt, tuple(self.history)

    def _speculate(self, start: float, end: float) -> None:
        """Have the VLM prepare the frame it would answer about if the question ended at `end`."""
        cfg = self.config
        if not cfg.speculative_vision or not hasattr(self.vlm, "prepare") or (self._busy(end) and not cfg.barge_in):
            return  # (an answer still playing would lose its CPU to a guess)
        # Only frames from the question itself: not before it began (the pick at onset would take one
        # from before the question), and not after `end` (in a fast replay the camera may be ahead of the
        # hearing thread, and a pick that depended on how far ahead would differ run to run).
        frame = self._pick([f for f in self.ring.snapshot() if start <= f.t <= end], start, end)
        context = self._context()
        verdict, _ = judge(self.spec, start, frame, context)
        if verdict in ("keep", "none"):
            return
        redone = self.spec.redone + 1 if verdict == "redo" and self.spec is not None else 0
        if self.spec is not None:
            self.spec.future.cancel()  # not started yet: never runs
        image = fit_for_model(frame.image, cfg.image_side)
        request = VLMRequest("", image, context[1], context[0], cfg.max_new_tokens)
        self.spec = Speculation(start, frame, image, context, self.prep.submit(self._prepare, request), redone)

    def _prepare(self, request: VLMRequest):
        try:
            return self.vlm.prepare(request)
        except Exception:  # a failed guess costs nothing but the guess: the turn does the work itself
            log.warning("speculative vision failed", exc_info=True)
            return None

    # --- speculative answer (control thread) -----------------------------------------------
    def _answers_early(self) -> bool:
        return self.config.speculative_answer and self.config.early_asr and self.clock.realtime

    def _on_early_transcript(self, tr: Transcript) -> None:
        """Begin an Instant answer on the transcript of a pause that may end the question."""
        if tr.dropped or self._busy(tr.end):
            return  # barge-in and backchannels need the final decision
        window = self.follow_up_until if tr.start >= self.follow_up_from else -1.0
        d = decide(tr.text, tr.end, phrase=self.config.wake_phrase, follow_up_until=window, busy=False)
        if d.action != "ask":
            return
        mode, question, _ = modes.choose_mode(d.question, self.mode)
        if mode != "instant" or not question.strip():
            return  # the slower modes show their reasoning at once: they wait for the decision
        turn = Turn(d.question, tr.start, tr.end, (tr.detected_at, tr.detected_perf), tr.asr_s, "reused")
        turn.tentative, turn.heard = True, tr.text
        self._start_turn(turn)

    def _confirm(self, turn: Turn, tr: Transcript) -> None:
        """The endpointer ended the utterance the answer was begun on: it may be seen and heard now."""
        turn.detected, turn.asr_s = (tr.detected_at, tr.detected_perf), tr.asr_s
        turn.tentative = False
        self.show(turn.start, light=True)
        self.show(turn.end, status="thinking", caption=turn.question, answer="")
        turn.confirmed.set()  # after `detected`: the turn thread reads it once this is set

    def _discard(self, turn: Turn, why: str, t: float) -> None:
        turn.discarded = True
        self._interrupt(turn, None, "discard")
        self.log.write("speculative_answer", action="discard", why=why, start=turn.start, end=turn.end, t=t,
                       text=turn.heard)
        if self.turn is turn:
            self.turn = None  # never an answer: nothing is busy

    def _on_transcript(self, tr: Transcript) -> None:
        heard = {"start": tr.start, "end": tr.end, "text": tr.text, "asr": tr.asr_s, "no_speech_prob": tr.no_speech_prob}
        pending = self.turn if self.turn is not None and self.turn.tentative else None
        if pending is not None:
            if not tr.dropped and (tr.start, tr.end, tr.text) == (pending.start, pending.end, pending.heard):
                self.log.write("heard", **heard, action="ask", reason="answer begun on the early transcript")
                self._confirm(pending, tr)
                return
            self._discard(pending, "the final transcript differs", tr.detected_at)
        if tr.dropped:
            self.log.write("heard", **heard, action="drop", reason=tr.dropped)
            self.show(tr.detected_at, status="idle")
            return
        now = since((tr.detected_at, tr.detected_perf))
        # Speech already under way when the window opened (say, before a typed question) is no follow-up.
        window = self.follow_up_until if tr.start >= self.follow_up_from else -1.0
        d = decide(tr.text, tr.end, phrase=self.config.wake_phrase, follow_up_until=window,
                   busy=self._busy(tr.end), push_to_talk=tr.push_to_talk)
        if d.action == "ask" and not tr.push_to_talk and tr.end - tr.start < self.config.barge_in_after and self._busy(tr.end):
            d = replace(d, action="ignore", question="", reason="backchannel while answering")  # "mm-hmm", "ok"
        self.log.write("heard", **heard, action=d.action, reason=d.reason)
        if d.action == "ask":
            self._start_turn(Turn(d.question, tr.start, tr.end, (tr.detected_at, tr.detected_perf), tr.asr_s,
                                  tr.early_asr))
        elif d.action == "wake":
            self.follow_up_until, self.follow_up_from = tr.end + self.config.follow_up, tr.end
            self.show(tr.start, light=True)
            self.show(tr.end, status="listening", caption=tr.text, answer="")
        elif d.action == "stop":
            self.log.write("stop", t=now, text=tr.text)
            self._interrupt(self.turn, now, "stop")
            self.follow_up_until = -1.0
            self.show(now, status="idle", light=False, caption=tr.text)
        else:
            self.show(tr.detected_at, status="idle")

    def _interrupt(self, turn: Turn | None, t: float | None, reason: str) -> None:
        """Control overtakes data: cancel generation, skip queued speech, silence the speaker."""
        if turn is not None:
            turn.cancel.set()
            for f in turn.futures:
                f.cancel()
        if t is not None:
            self.speaker.clear(t)

    def _finish_turn(self) -> None:
        if self.turn and self.turn.thread:
            self.turn.thread.join()

    def _start_turn(self, turn: Turn) -> None:
        turn.mode, turn.question, turn.mode_reason = modes.choose_mode(turn.question, self.mode)
        if not turn.question.strip():  # a switch said alone ("think harder."): switch the standing mode
            self.set_mode(turn.mode, turn.end)
            self.follow_up_until = turn.end + self.config.follow_up  # the question may follow without the wake phrase
            self.follow_up_from = turn.end
            return
        if self.turn is not None and self.turn.tentative:
            self._discard(self.turn, "another question", turn.detected[0])
        if self.turn is not None and self.turn.thread is not None and self.turn.thread.is_alive():
            self._interrupt(self.turn, turn.detected[0], "new question")  # the newer question overtakes
        self.turn = turn
        turn.spec, self.spec = self.spec, None  # the turn consumes what was prepared (judged when it is used)
        if not turn.tentative:
            turn.confirmed.set()
            self.show(turn.start, light=True)
            self.show(turn.end, status="thinking", caption=turn.question, answer="")
        turn.thread = threading.Thread(target=self._answer, args=(turn,), name="turn", daemon=True)
        turn.thread.start()
        if not self.clock.realtime:
            turn.thread.join()  # fast pace: the media timeline waits for the answer (see module doc)

    def _answer(self, turn: Turn) -> None:
        try:
            self._answer_inner(turn)
        except Exception as err:  # a failed answer is reported, the session goes on
            log.exception("turn failed")
            self.log.write("error", stage="answer", message=f"{type(err).__name__}: {err}", t=turn.end)
            self.show(since(turn.detected), status="idle", light=False, answer="(sorry, that failed)")

    def _judge_speculation(self, turn: Turn, frame: FrameSnapshot | None) -> dict:
        """What became of the speculation for this question (logged with the turn)."""
        out = {"asr": (turn.early_asr or "none") if self.config.early_asr else "off",
               "answer": "begun on the early transcript" if turn.heard else "after the decision"}
        if not self.config.speculative_vision or not hasattr(self.vlm, "prepare"):
            return {"vision": "off", **out}
        verdict, why = judge(turn.spec, turn.start, frame, self._context())
        out.update(vision={"keep": "reused", "redo": "redone"}.get(verdict, "none"), why=why)
        if turn.spec is not None and verdict != "new":
            out["redone_while_speaking"] = turn.spec.redone
        return out

    def _wait(self, future: Future, cancel: threading.Event):
        """The prepared prefix, waiting for it if it is still being made; None if cancelled or failed."""
        while not cancel.is_set() and not self.stop_event.is_set():
            try:
                return future.result(timeout=0.05)
            except FutureTimeout:
                continue
            except Exception:  # cancelled
                return None
        return None

    def _answer_inner(self, turn: Turn) -> None:
        cfg = self.config
        frames = self.ring.snapshot()
        frame = self._pick(frames, turn.start, turn.end)
        image, prefix, speculation = None, None, self._judge_speculation(turn, frame)
        if speculation["vision"] == "reused":
            frame, image = turn.spec.frame, turn.spec.image  # the same view, already encoded
            prefix = self._wait(turn.spec.future, turn.cancel)
            if prefix is None:
                speculation["vision"] = "unavailable"
        if image is None and frame is not None:
            image = fit_for_model(frame.image, cfg.image_side)
        system = cfg.system_prompt + ("" if image is not None else NO_IMAGE_NOTE)
        request = VLMRequest(turn.question, image, tuple(self.history), system, cfg.max_new_tokens, prefix)
        spoken: list[dict] = []
        first = {}
        handled = threading.Condition()
        count = [0]

        def on_audio(future, text: str, submitted: float) -> None:
            # Runs in the TTS thread the moment a piece is rendered: hand it to the speaker now.
            try:
                if future.cancelled() or turn.cancel.is_set():
                    return
                if future.exception() is not None:
                    self.log.write("error", stage="tts", message=f"{text[:60]!r}: {future.exception()}", t=turn.end)
                    return
                at = since(turn.detected)
                start, end = self.speaker.play(future.result(), at)
                with handled:
                    if not first:
                        first.update(t=at, tts=time.perf_counter() - submitted)
                    spoken.append({"text": text, "start": start, "end": end})
                    words = " ".join(s["text"] for s in spoken)
                self.show(start, status="speaking", answer=words)
            finally:
                with handled:
                    count[0] += 1
                    handled.notify_all()

        def speak(text: str) -> None:
            text = clean_for_speech(text)
            while text and not turn.confirmed.wait(0.02):  # a speculative answer stays silent until confirmed
                if turn.cancel.is_set():
                    return
            if text and not turn.cancel.is_set():
                future = self.tts.submit(text)
                turn.futures.append(future)
                future.add_done_callback(lambda f, s=text, t0=time.perf_counter(): on_audio(f, s, t0))

        pending = [""]

        def stream_to_speech(piece: str) -> None:
            # Called by the mode with text to be spoken: each complete sentence goes to TTS now.
            pending[0] += piece
            ready = []
            if not turn.futures:  # nothing spoken yet: the wearer is waiting for this piece
                ready, pending[0] = first_piece(pending[0], cfg.first_chunk_words)
            more, pending[0] = split_ready(pending[0]) if turn.futures or ready else ([], pending[0])
            ready += more
            for sentence in ready:
                speak(sentence)

        ctx = ModeContext(self.vlm, request, turn.cancel, stream_to_speech,
                          show=lambda text: self.show(since(turn.detected), notes=(text[-120:],)),
                          cue=speak, frames=frames, best=frame, start=turn.start, end=turn.end,
                          image_side=cfg.image_side, agents=cfg.agents,
                          elapsed=lambda: since(turn.detected) - turn.end)
        result = modes.answer(turn.mode, ctx)
        if turn.discarded:
            return  # begun on an early transcript that did not hold: no record, no history, no display
        first_token, vlm_total, answer = result.first_token, result.vlm_total, result.answer
        speak(pending[0])
        with handled:  # every piece rendered (or skipped) and handed to the speaker
            handled.wait_for(lambda: count[0] >= len(turn.futures) or self.stop_event.is_set(), timeout=120)
        answer = answer.strip()
        self.history.append((turn.question, answer))
        with handled:
            end = max((s["end"] for s in spoken), default=since(turn.detected))
            v2v = first["t"] - turn.end if first else None
            record = {
                "question": turn.question, "answer": answer, "mode": turn.mode, "mode_reason": turn.mode_reason,
                "heard_at": turn.end,
                "speech_start": turn.start,
                "frame_time": frame.t if frame is not None else None,
                "frame_sharpness": frame.sharpness if frame is not None else None,
                "models": cfg.models,
                "latency": {
                    "vad": turn.detected[0] - turn.end, "asr": turn.asr_s, "vlm_first_token": first_token,
                    "vlm_total": vlm_total, "tts_first_audio": first.get("tts"), "voice_to_voice": v2v,
                },
                "speculation": speculation,
                "spoken": list(spoken), "cancelled": turn.cancel.is_set(), **result.extra,
            }
        self.log.write("turn", **record)
        if not turn.cancel.is_set():
            self.follow_up_until, self.follow_up_from = end + cfg.follow_up, turn.end
        self.show(end, status="idle", light=False, latency=v2v)

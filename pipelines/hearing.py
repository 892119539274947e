"""Hearing: audio chunks in, speech events and utterances out.

One `Hearing` per session, fed by the hearing thread. It owns the voice-activity model,
the endpointer, the recent audio the utterances are cut from, the push-to-talk button and
the typed questions due at media times (`--ask`). It holds no queue and starts no thread:
`feed` yields typed messages in media-time order, and the session's wiring decides where
each goes (control or ASR) and whether the media waits for it (fast pace).

What it yields, and when:
- `SpeechHint` at the first sign that speech may have begun (a few windows at a low threshold;
  over an answer the answer pauses), then `SpeechHintEnded` if it never lasted long enough
  to interrupt (the answer goes on, once its words are known if it had any); no hint while
  the audio is not `settled` (an echo canceller still converging);
- `SpeechOnset` once speech has lasted the endpointer's minimum (speculation may start);
- `SpeechStarted` once voiced speech has lasted `barge_in_after` (over an answer that is a
  barge-in), and when the button is pressed;
- `SpeechContinues` every `look_every` s while the speech goes on (speculative vision looks at
  the view again: a head turned while asking should not wait for the pause to be noticed);
- `SpeechPaused` when silence begins inside an utterance, and `SpeechResumed` when speech
  goes on after an early cut was made;
- an early `Utterance` once a pause has lasted `utterance_tail` (early ASR), and the final
  `Utterance` when the endpointer (or the button's release) ends it;
- `TypedQuestion` when the audio reaches an `--ask` time.

Turn detection (`turn="smart"` with a turn model, pipelines/turn_model.py): a pause first
holds the turn open for the long silence; once it has lasted the short one, the model hears
the utterance so far, that silence included (the more silence it hears, the more it leans to
"finished", so when it is asked is part of the operating point), and its verdict sets the
silence this pause needs: the endpointer then ends the turn at once, or after the long
silence. One call per pause, in this thread. Without a model, or after it fails, every
pause needs the endpointer's own silence.
"""
from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from core.audio import AudioHistory
from core.messages import (SAMPLE_RATE, AudioChunk, PushToTalk, SpeechContinues, SpeechHint, SpeechHintEnded,
                           SpeechOnset, SpeechPaused, SpeechResumed, SpeechStarted, TypedQuestion, Utterance)
from pipelines.turn_model import POLICIES, PRE_SPEECH, SmartTurnConfig, one_line
from pipelines.vad import WINDOW, EndpointConfig, Endpointer, HintConfig, Hints, SpeechEvent

log = logging.getLogger("hearing")


@dataclass(frozen=True)
class HearingConfig:
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    early_asr: bool = True  # cut the utterance when the silence begins, not when the endpointer decides
    utterance_tail: float = 0.1  # audio kept after the end of speech; the early cut waits for it
    barge_in_after: float = 0.4  # voiced seconds before speech counts as speaking up (not "mm-hmm")
    asks: tuple[tuple[float, str], ...] = ()  # typed questions at media seconds
    turn: str = "silence"  # "smart": a turn model judges each pause; "silence": the silence alone ends a turn
    smart: SmartTurnConfig = field(default_factory=SmartTurnConfig)
    look_every: float = 0.0  # seconds of speech between SpeechContinues (0: none)
    hint: HintConfig | None = field(default_factory=HintConfig)  # None: no SpeechHint


class Hearing:
    def __init__(self, config: HearingConfig, vad, clock, turn_model=None):
        """`turn_model(audio) -> probability the turn is complete`, used when `config.turn` is "smart"."""
        if config.turn not in POLICIES:
            raise ValueError(f"turn must be one of {', '.join(POLICIES)}, not {config.turn!r}")
        self.config, self.vad, self.clock = config, vad, clock
        self.turn_model = turn_model if config.turn == "smart" else None
        self.endpointer = Endpointer(config.endpoint)
        self.hints = Hints(config.hint) if config.hint is not None else None
        self._hint_words = False  # the hint under way became an utterance (a transcript will follow)
        self.history = AudioHistory(config.endpoint.max_utterance + 2.0)
        self._asks = sorted(config.asks)
        self._presses: list[tuple[float, bool]] = []  # (t, pressed), applied when the audio reaches t
        self._origin: float | None = None
        self._consumed = 0  # samples turned into VAD windows
        self._fed = 0  # samples given to the VAD (it keeps what does not fill a window for the next chunk)
        self._barge_sent = False
        self._paused_at: float | None = None  # end of speech of a pause not yet cut early
        self._early_for: float | None = None  # speech start of the utterance an early cut was made for
        self._ptt_start: float | None = None  # the button held since
        self._unjudged: float | None = None  # end of speech of a pause the turn model has not heard yet
        self._next_look: float | None = None  # when speech still going on is next reported
        self.last_verdict: tuple[float, float] | None = None  # (end of speech, probability finished)

    @property
    def active(self) -> bool:
        """The wearer is speaking or holding the button (background work such as memory waits)."""
        return self._ptt_start is not None or self.endpointer.in_speech

    def press(self, event: PushToTalk) -> None:
        """The button: applied when the audio reaches its time, so the order follows the media."""
        bisect.insort(self._presses, (event.t, event.pressed))

    def feed(self, chunk: AudioChunk) -> Iterator[object]:
        """Messages for one chunk, yielded lazily: in fast pace the consumer may wait on each."""
        if self._origin is None:
            self._origin = chunk.t
        gap = chunk.t - (self._origin + self._fed / SAMPLE_RATE)
        if abs(gap) > 0.5 * len(chunk.samples) / SAMPLE_RATE:
            # Audio was dropped (a full queue) or the source jumped: count windows from this chunk's own
            # time, or every later utterance would be cut from the wrong audio.
            self._origin += gap
        self._fed += len(chunk.samples)
        # strictly before: a frame shown at the ask's own time may come just after the chunk that starts then
        while self._asks and self._asks[0][0] < chunk.t:
            t, text = self._asks.pop(0)
            self.clock.advance(t)
            yield TypedQuestion(t, text, time.perf_counter())
        while self._presses and self._presses[0][0] <= chunk.t:
            yield from self._apply_press(*self._presses.pop(0))
        self.history.append(chunk.t, chunk.samples)
        for prob in self.vad(chunk.samples):
            t = self._origin + self._consumed / SAMPLE_RATE
            self._consumed += WINDOW
            self.clock.advance(t + WINDOW / SAMPLE_RATE)
            if self._ptt_start is None:  # while the button is held, it alone bounds the question
                yield from self._hint(prob, t, chunk.settled)
                for ev in self.endpointer.update(prob, t):
                    yield from self._on_event(ev)
            yield from self._after_window(t + WINDOW / SAMPLE_RATE)

    def finish(self, t: float) -> Iterator[object]:
        """The media ended: close an utterance still open, and ask what was never reached."""
        for ev in self.endpointer.flush(t):
            yield self._utterance(ev.start, ev.end)
        while self._asks:
            t_ask, text = self._asks.pop(0)
            yield TypedQuestion(t_ask, text, time.perf_counter())

    # --- internals ----------------------------------------------------------------------
    def _apply_press(self, t: float, pressed: bool) -> Iterator[object]:
        if pressed:
            if self.hints is not None:
                self.hints.confirm()  # the button is a barge-in of its own
            self._ptt_start = t
            self.endpointer = Endpointer(self.config.endpoint)  # speech already under way is part of it
            self._paused_at = self._unjudged = None  # a pause of the old endpointer is no pause of the question
            yield SpeechStarted(t, t)
        elif self._ptt_start is not None:
            start, self._ptt_start = self._ptt_start, None
            yield self._utterance(start, t, push_to_talk=True)

    def _on_event(self, ev: SpeechEvent) -> Iterator[object]:
        if ev.kind == "start":
            self._barge_sent = False
            self._hint_words = self.hints is not None and self.hints.since is not None  # an utterance: words follow
            self._next_look = ev.detected_at + self.config.look_every if self.config.look_every > 0 else None
            yield SpeechOnset(ev.t, ev.detected_at)
        elif ev.kind == "pause":
            self._paused_at = ev.t
            if self.turn_model is not None:  # hold the turn open until the model has heard the pause
                self._unjudged = ev.t
                self.endpointer.wait_for(self.config.smart.long)
            yield SpeechPaused(self.endpointer.speech_start, ev.t)
        elif ev.kind == "resume":
            self._paused_at = self._unjudged = None
            if self._early_for is not None:  # what was transcribed early is no longer the question
                yield SpeechResumed(self._early_for, ev.t)
                self._early_for = None
        elif ev.kind == "end":
            self._paused_at = self._early_for = self._unjudged = None
            if self.hints is not None and self.hints.since is not None:  # the utterance is over, so is its hint:
                self.hints.close()  # ended before the utterance, so its transcript comes after
                yield SpeechHintEnded(ev.detected_at, True)
            yield self._utterance(ev.start, ev.end)

    def _after_window(self, t_end: float) -> Iterator[object]:
        ep = self.endpointer
        if self._paused_at is not None and self.config.early_asr and t_end >= self._paused_at + self.config.utterance_tail:
            start, end = ep.speech_start, self._paused_at
            self._paused_at, self._early_for = None, start
            yield self._utterance(start, end, early=True)
        if self._unjudged is not None and t_end - self._unjudged >= self.config.smart.short - 1e-9:
            yield from self._judge(t_end)
        if self._next_look is not None and ep.in_speech and not ep.paused and t_end >= self._next_look - 1e-9:
            self._next_look = t_end + self.config.look_every
            yield SpeechContinues(ep.speech_start, t_end)
        # voiced time, not time since onset: a 0.3 s "mm-hmm" stays "in speech" through its trailing silence
        if ep.in_speech and not self._barge_sent and ep.voiced >= self.config.barge_in_after:
            self._barge_sent = True
            if self.hints is not None:
                self.hints.confirm()
            yield SpeechStarted(ep.speech_start, self.clock.now())

    def _hint(self, prob: float, t: float, settled: bool) -> Iterator[object]:
        if self.hints is None:
            return
        confirmed = self.endpointer.in_speech and self._barge_sent  # speech already long enough: nothing to hint
        kind = self.hints.update(prob, t, armed=settled and not confirmed)
        if kind == "hint":
            self._hint_words = False
            yield SpeechHint(self.hints.since, t + WINDOW / SAMPLE_RATE)
        elif kind == "ended":
            yield SpeechHintEnded(t + WINDOW / SAMPLE_RATE, self._hint_words or self.endpointer.in_speech)

    def _judge(self, t_end: float) -> Iterator[object]:
        """Ask the turn model about the utterance so far and tell the endpointer its verdict."""
        ep, pause = self.endpointer, self._unjudged
        self._unjudged = None
        t0 = time.perf_counter()
        try:
            p = self.turn_model(self.history.between(ep.speech_start - PRE_SPEECH, t_end))
        except Exception as err:  # noqa: BLE001 - a turn model is optional: fall back, never stop hearing
            log.warning("turn model failed (%s): turns end on silence alone from now on", one_line(err))
            self.turn_model, silence = None, self.config.endpoint.silence
        else:
            self.last_verdict, silence = (pause, p), self.config.smart.silence(p)
            log.info("turn model: %.2f finished at the pause from %.2f s (%.0f ms)", p, pause,
                     1000 * (time.perf_counter() - t0))
        for ev in ep.wait_for(silence):
            yield from self._on_event(ev)

    def _utterance(self, start: float, end: float, *, push_to_talk: bool = False, early: bool = False) -> Utterance:
        return Utterance(start, end, self.clock.now(), self.cut(start, end), time.perf_counter(), push_to_talk, early)

    def cut(self, start: float, end: float) -> np.ndarray:
        # A little context on both sides helps Whisper; the early and the final cut of one utterance are equal.
        return self.history.between(start - 0.3, end + self.config.utterance_tail)

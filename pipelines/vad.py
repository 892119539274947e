"""Streaming voice-activity detection and endpointing.

The probability model is the Silero VAD that faster-whisper ships (an ONNX file run by
onnxruntime), so it works offline. Unlike faster-whisper's own helper, which scores a
whole file at once, `SileroVAD` is fed chunk by chunk as audio arrives and carries the
model's recurrent state and 64-sample context between calls.

`Endpointer` turns per-window probabilities into speech start/end events. It is a pure
state machine (no I/O, no clock): its times come from the audio itself. A turn model may
judge a pause and tell it how much silence that pause needs (`wait_for`); without one, every
pause needs the configured silence.

`Hints` reads the same probabilities for a quicker, more sensitive sign that speech may have
begun (over an answer, the answer pauses; benchmarks/echo.py chose its operating point).
"""
from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass

import numpy as np

from core.messages import SAMPLE_RATE

WINDOW = 512  # samples per Silero decision at 16 kHz (32 ms)
_CONTEXT = 64


def silero_path() -> str:
    import faster_whisper

    return os.path.join(os.path.dirname(faster_whisper.__file__), "assets", "silero_vad_v6.onnx")


class SileroVAD:
    """Speech probability for each 512-sample window, fed incrementally."""

    def __init__(self, path: str | None = None):
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1  # one window is tiny: threads only add overhead
        opts.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(path or silero_path(), providers=["CPUExecutionProvider"], sess_options=opts)
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(_CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)

    def __call__(self, samples: np.ndarray) -> list[float]:
        """Probabilities for every complete window now available (leftover kept for next call)."""
        audio = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        n = len(audio) // WINDOW
        self._pending = audio[n * WINDOW :]
        probs = []
        for i in range(n):
            window = audio[i * WINDOW : (i + 1) * WINDOW]
            x = np.concatenate([self._context, window])[None, :]
            out, self._h, self._c = self._session.run(None, {"input": x, "h": self._h, "c": self._c})
            self._context = window[-_CONTEXT:]
            probs.append(float(np.asarray(out).reshape(-1)[0]))
        return probs


@dataclass(frozen=True)
class EndpointConfig:
    threshold: float = 0.5  # probability above which a window is speech
    neg_threshold: float = 0.35  # below which it is silence (hysteresis in between)
    min_speech: float = 0.25  # bursts shorter than this are clicks, not speech
    silence: float = 0.5  # silence that ends a turn: chosen from data (BENCHMARKS.md, endpointing curve)
    max_utterance: float = 20.0  # force an end so a noisy room cannot hold the turn open


@dataclass(frozen=True)
class SpeechEvent:
    kind: str  # "start" (speech confirmed) | "pause" (silence began) | "resume" | "end"
    t: float  # session time of the event's moment (start: speech onset; pause/end: speech end)
    start: float = 0.0  # for "end": when the utterance began
    end: float = 0.0  # for "end": when speech ended
    detected_at: float = 0.0  # session time the decision became possible


class Endpointer:
    """Pure state machine: `update(prob, t)` per window, returns events."""

    def __init__(self, config: EndpointConfig = EndpointConfig(), window: float = WINDOW / SAMPLE_RATE):
        self.config = config
        self.window = window
        self.in_speech = False
        self._onset: float | None = None  # candidate speech onset
        self._start = 0.0
        self._last_voiced = 0.0  # end time of the last voiced window
        self._paused = False
        self._silence = config.silence  # what the current pause needs (a turn model's verdict may change it)
        self._t_end = 0.0  # end of the last window seen

    @property
    def speech_start(self) -> float:
        """Onset of the utterance under way (meaningful while `in_speech`)."""
        return self._start

    @property
    def paused(self) -> bool:
        """In an utterance, and silent since its last voiced window."""
        return self.in_speech and self._paused

    @property
    def voiced(self) -> float:
        """Seconds from the onset to the last voiced window: a trailing pause does not count."""
        return self._last_voiced - self._start if self.in_speech else 0.0

    def wait_for(self, silence: float) -> list[SpeechEvent]:
        """The silence the current pause needs before it ends the utterance (a turn model's
        verdict); speech that resumes restores the configured one. A pause that has already
        lasted that long ends now."""
        if not (self.in_speech and self._paused):
            return []
        self._silence = silence
        return [self._end(self._last_voiced)] if self._t_end - self._last_voiced >= silence else []

    def update(self, prob: float, t: float) -> list[SpeechEvent]:
        c = self.config
        t_end = self._t_end = t + self.window
        events: list[SpeechEvent] = []
        if not self.in_speech:
            if prob >= c.threshold:
                if self._onset is None:
                    self._onset = t
                if t_end - self._onset >= c.min_speech:
                    self.in_speech, self._start, self._last_voiced, self._paused = True, self._onset, t_end, False
                    events.append(SpeechEvent("start", self._onset, detected_at=t_end))
            elif prob < c.neg_threshold:
                self._onset = None
            return events
        if prob >= c.threshold or (prob >= c.neg_threshold and not self._paused):
            if self._paused:
                events.append(SpeechEvent("resume", t, detected_at=t_end))
            self._paused, self._silence = False, c.silence
            self._last_voiced = t_end
        elif not self._paused:
            self._paused = True
            events.append(SpeechEvent("pause", self._last_voiced, detected_at=t_end))
        silent_for = t_end - self._last_voiced
        too_long = t_end - self._start >= c.max_utterance
        if silent_for >= self._silence or too_long:
            events.append(self._end(self._last_voiced if not too_long or self._paused else t_end))
        return events

    def _end(self, end: float) -> SpeechEvent:
        self.in_speech, self._onset, self._paused, self._silence = False, None, False, self.config.silence
        return SpeechEvent("end", end, start=self._start, end=end, detected_at=self._t_end)

    def flush(self, t: float) -> list[SpeechEvent]:
        """End of stream: close an utterance still open."""
        if not self.in_speech:
            return []
        self.in_speech = False
        return [SpeechEvent("end", self._last_voiced, start=self._start, end=self._last_voiced, detected_at=t)]


@dataclass(frozen=True)
class HintConfig:
    """Chosen on the echo benchmark (BENCHMARKS.md, "Yielding the floor"): through the echo
    canceller the wearer's first syllables come out cut and weak, so Silero scores them low."""

    threshold: float = 0.15  # a window this likely to be speech counts (the endpointer's threshold is 0.5)
    needed: int = 2  # windows over the threshold ...
    of: int = 3  # ... among the last this many give a hint
    quiet: float = 0.3  # a hint ends after this long without a window over the threshold
    hold: float = 2.0  # and at the latest this long after it began, if nothing confirmed it


class Hints:
    """Pure state machine: `update(prob, t, armed)` per window -> "hint", "ended" or "".

    A hint begins when `needed` of the last `of` windows are over the threshold (and `armed`:
    the audio can be trusted), and ends after `quiet` s without one, or after `hold` s; a
    hint that was held that long needs `quiet` s without speech before the next, so steady
    noise pauses an answer once, not every two seconds. `confirm()`: the speech became long
    enough to interrupt, so the hint is over without an "ended"."""

    def __init__(self, config: HintConfig = HintConfig(), window: float = WINDOW / SAMPLE_RATE):
        self.config, self.window = config, window
        self._recent: deque[tuple[float, bool]] = deque(maxlen=config.of)  # (window start, over)
        self.since: float | None = None  # start of the hint under way
        self._last_over = -np.inf  # end of the last window over the threshold
        self._blocked = False  # a hint was held to the end: wait for quiet

    def update(self, prob: float, t: float, armed: bool = True) -> str:
        c, t_end = self.config, t + self.window
        over = prob >= c.threshold
        self._recent.append((t, over))
        if over:
            self._last_over = t_end
        quiet = t_end - self._last_over >= c.quiet
        if self.since is None:
            self._blocked = self._blocked and not quiet
            if not armed or self._blocked or sum(o for _, o in self._recent) < c.needed:
                return ""
            self.since = next(start for start, o in self._recent if o)
            return "hint"
        held = t_end - self.since >= c.hold
        if not (quiet or held):
            return ""
        self.confirm()
        self._blocked = not quiet
        return "ended"

    def confirm(self) -> None:
        self.since = None
        self._recent.clear()

    def close(self) -> None:
        """The utterance it belonged to ended: over, and no new hint from its tail until quiet."""
        self.confirm()
        self._blocked = True

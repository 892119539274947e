"""The chaos soak's models (benchmarks/soak.py): ASR, TTS and VLM doubles with the hooks the
soak needs, and nothing that grows with the session.

- `ToneASR`: ScriptedASR's job (the scripted text of each utterance), but found the way
  Whisper finds words, from the audio it is given: each scripted burst carries a tone whose
  pitch names its line, so an utterance cut from the wrong audio gets the wrong text or none.
- `WatchedTTS`: the real pyttsx3 worker; its pieces are futures that say when rendering
  starts and ends, and whether a cancel arrived while pyttsx3 was rendering (issue 9's race).
- `SoakVLM` and `Pacer`: long answers streamed word by word; the pacer holds the stream just
  before the word that completes a chosen sentence, so the script decides when it is rendered.
"""
from __future__ import annotations

import re
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Callable

import numpy as np

from core.messages import SAMPLE_RATE, Transcript
from glasses.microphone import CHUNK
from pipelines.tts import Pyttsx3TTS
from pipelines.vlm import Prefix

TONE_BASE, TONE_STEP, TONE_SLOTS = 400.0, 25.0, 64  # Hz: slot i is a tone at 400 + 25 i Hz
PACER_LIMIT = 5.0  # s: the pacer lets the VLM go by itself if nobody releases it


def tone_of(slot: int) -> float:
    return TONE_BASE + TONE_STEP * (slot % TONE_SLOTS)


class ToneASR:
    """The ASR stage's interface (process(Utterance) -> Transcript); see the module doc."""

    def __init__(self):
        self._lines: dict[int, str] = {}  # slot -> text: at most TONE_SLOTS lines
        self._next = 0
        self._lock = threading.Lock()
        self.heard: deque[tuple[float, float, int | None]] = deque(maxlen=4096)  # (start, end, slot): the soak's ledger

    def line(self, text: str) -> tuple[int, float]:
        """Script a line: returns its slot and the tone that carries it."""
        with self._lock:
            slot = self._next % TONE_SLOTS
            self._next += 1
            self._lines[slot] = text
        return slot, tone_of(slot)

    def decode(self, audio: np.ndarray) -> int | None:
        """The slot whose tone stands out of the utterance's spectrum, or None (silence, noise)."""
        if len(audio) < CHUNK:
            return None
        spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
        freqs = np.fft.rfftfreq(len(audio), 1.0 / SAMPLE_RATE)
        band = (freqs >= TONE_BASE - TONE_STEP / 2) & (freqs <= tone_of(TONE_SLOTS - 1) + TONE_STEP / 2)
        if not band.any():
            return None
        k = int(np.argmax(np.where(band, spectrum, 0.0)))
        if spectrum[k] < 20 * (np.median(spectrum[band]) + 1e-9):
            return None
        return int(round((freqs[k] - TONE_BASE) / TONE_STEP)) % TONE_SLOTS

    def process(self, utt) -> Transcript:
        t0 = time.perf_counter()
        slot = self.decode(utt.audio)
        with self._lock:
            text = self._lines.get(slot, "") if slot is not None else ""
        self.heard.append((utt.start, utt.end, slot))
        return Transcript(utt.start, utt.end, utt.detected_at, text, time.perf_counter() - t0, 0.0,
                          "" if text else "empty", utt.detected_perf, utt.push_to_talk)


class WatchedFuture(Future):
    """A TTS piece that tells its WatchedTTS when pyttsx3 starts and stops rendering it."""

    def __init__(self, watch: "WatchedTTS"):
        super().__init__()
        self._watch, self.t0, self.at = watch, 0.0, 0.0

    def set_running_or_notify_cancel(self) -> bool:
        claimed = super().set_running_or_notify_cancel()
        if claimed:
            self._watch._started(self)
        return claimed

    def set_result(self, result) -> None:
        self._watch._ended(self)  # before the session's callback hands the audio to the speaker
        super().set_result(result)

    def set_exception(self, exception) -> None:
        self._watch._ended(self)
        super().set_exception(exception)

    def cancel(self) -> bool:
        rendering = self.running()
        cancelled = super().cancel()
        if rendering:
            self._watch.cancelled_while_rendering += 1  # the race that killed the worker before issue 9
        return cancelled


class WatchedTTS(Pyttsx3TTS):
    """The real Pyttsx3TTS worker (engine, thread, claim protocol); only `submit` differs:
    it queues a WatchedFuture, exactly as the parent queues a plain Future."""

    def __init__(self):
        super().__init__()
        self.rendering: WatchedFuture | None = None
        self.on_start: Callable[[], None] | None = None  # one-shot: called when the next piece starts rendering
        self.render_s: deque[float] = deque(maxlen=2000)
        self.now: Callable[[], float] = time.perf_counter  # the soak sets the session clock
        self.renders: deque[tuple[float, float]] = deque(maxlen=4096)  # (start, end) session times
        self.cancelled_while_rendering = 0
        self.submitted = 0

    def submit(self, text: str) -> Future:
        future = WatchedFuture(self)
        self.submitted += 1
        self._requests.put((text, future))
        return future

    def idle(self) -> bool:
        return self.rendering is None and self._requests.empty()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _started(self, future: WatchedFuture) -> None:  # the TTS thread
        future.t0, future.at = time.perf_counter(), self.now()
        self.rendering = future
        hook, self.on_start = self.on_start, None
        if hook is not None:
            hook()

    def _ended(self, future: WatchedFuture) -> None:  # the TTS thread
        self.rendering = None
        self.render_s.append(time.perf_counter() - future.t0)
        self.renders.append((future.at, self.now()))


class Pacer:
    """Holds the SoakVLM just before the word that completes sentence `k` of answer `n`."""

    def __init__(self):
        self._lock = threading.Lock()
        self._target: tuple[int, int] | None = None
        self.held = threading.Event()
        self._go = threading.Event()

    def arm(self, answer: int, sentence: int) -> None:
        with self._lock:
            self._target = (answer, sentence)
            self.held.clear()
            self._go.clear()

    def release(self) -> None:
        with self._lock:
            self._target = None
        self._go.set()

    def gate(self, answer: int, sentence: int, cancel: threading.Event) -> None:
        with self._lock:
            if self._target != (answer, sentence):
                return
        self.held.set()
        deadline = time.monotonic() + PACER_LIMIT
        while not self._go.wait(0.002):
            if cancel.is_set() or time.monotonic() > deadline:
                return


FIRST = "Here is answer {n} with a lot to see."  # nine words: the first piece is this whole sentence
LONG = ("The red square sits in the middle of a grey wall and its edges are sharp and clean in this light. "
        "Around it the paint is even and there is nothing else in view that catches the eye at all. "
        "A small white mark moves along the top of the picture from one side to the other as you watch. "
        "The colours are plain and the scene looks the same from one moment to the next apart from that mark. "
        "If you step closer you will see the texture of the wall and the thin shadow under the square.")
SHORT = ""  # a short answer is its first sentence alone


def answer_text(question: str) -> str:
    """The answer to a soak question: numbered like the question, long when it asks to describe everything."""
    m = re.search(r"question (\d+)", question)
    n = int(m.group(1)) if m else 0
    return (FIRST.format(n=n) + " " + (LONG if "describe everything" in question else SHORT)).strip()


class SoakVLM:
    """Streams `answer_text` word by word, `delay` s a word; prepare() as FakeVLM's; counters only."""

    def __init__(self, pacer: Pacer, delay: float = 0.02):
        self.pacer, self.delay = pacer, delay
        self.active = 0  # streams in progress
        self.calls = 0
        self._lock = threading.Lock()

    def prepare(self, request):
        return None if request.image is None else Prefix(request.system, tuple(request.history), request.image,
                                                         None, None, "", "")

    def stream(self, request, cancel: threading.Event):
        m = re.search(r"question (\d+)", request.question)
        n = int(m.group(1)) if m else 0
        text = answer_text(request.question)
        if "Think before you answer" in request.question:  # Thinking mode's scratchpad prompt
            text = "Reasoning: I see a red square. Answer: " + text
        prefix = request.prefix
        if isinstance(prefix, Prefix) and getattr(prefix, "fits", lambda r: False)(request):
            prefix.used = True  # as HFVLM (and FakeVLM) do: the answer ran on the prepared prefix
        with self._lock:
            self.active += 1
            self.calls += 1
        try:
            sentences = re.split(r"(?<=[.:]) ", text)
            for k, sentence in enumerate(sentences, 1):
                words = sentence.split(" ")
                for j, word in enumerate(words):
                    if cancel.is_set():
                        return
                    time.sleep(self.delay)
                    if j == len(words) - 1:
                        self.pacer.gate(n, k, cancel)
                    yield word + " "
        finally:
            with self._lock:
                self.active -= 1

    def generate_batch(self, requests, cancel, max_new_tokens=None, min_new_tokens=None) -> list[str]:
        with self._lock:
            self.active += 1
        try:
            for _ in range(10):
                if cancel.is_set():
                    break
                time.sleep(self.delay)
            return ["A red square on a grey wall." for _ in requests]
        finally:
            with self._lock:
                self.active -= 1

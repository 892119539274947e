"""Fake models for tests and benchmarks, with the same interfaces as the real stages.

The fake ports (camera, microphone, speaker, window) are part of the simulated wearable:
they live in glasses/fakes.py.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Callable, Iterator

import numpy as np

from core.messages import SpeechAudio, Transcript, VLMRequest
from pipelines.vlm import Prefix
from pipelines.vad import WINDOW


class EnergyVAD:
    """Speech probability from loudness: deterministic stand-in for Silero on synthetic audio."""

    def __init__(self, level: float = 0.02):
        self.level = level
        self._pending = np.zeros(0, np.float32)

    def __call__(self, samples: np.ndarray) -> list[float]:
        audio = np.concatenate([self._pending, samples])
        n = len(audio) // WINDOW
        self._pending = audio[n * WINDOW :]
        rms = np.sqrt(np.mean(audio[: n * WINDOW].reshape(n, WINDOW) ** 2, axis=1)) if n else []
        return [0.95 if r > self.level else 0.02 for r in rms]


class ScriptedASR:
    """ASR stage that returns the scripted text whose time lies inside the utterance.

    Same interface as `ASRStage` (process(Utterance) -> Transcript): the end-to-end tests
    use it with the real VAD, so what is tested is the wiring and the turn-taking, with
    a transcript known in advance.
    """

    def __init__(self, script: list[tuple[float, str]], delay: float = 0.0):
        self.script = script
        self.delay = delay
        self.calls: list[tuple[float, float]] = []

    def process(self, utt):
        t0 = time.perf_counter()
        time.sleep(self.delay)
        self.calls.append((utt.start, utt.end))
        text = next((s for t, s in self.script if utt.start - 0.5 <= t <= utt.end + 0.5), "")
        return Transcript(utt.start, utt.end, utt.detected_at, text, time.perf_counter() - t0, 0.0,
                          "" if text else "empty", utt.detected_perf, utt.push_to_talk)


class FakeTTS:
    """Renders `seconds_per_word` of tone per word, at once."""

    def __init__(self, seconds_per_word: float = 0.3, rate: int = 22050):
        self.seconds_per_word = seconds_per_word
        self.rate = rate
        self.texts: list[str] = []

    def submit(self, text: str) -> Future:
        self.texts.append(text)
        n = int(len(text.split()) * self.seconds_per_word * self.rate)
        samples = (0.2 * np.sin(np.arange(n) * 2 * np.pi * 440 / self.rate)).astype(np.float32)
        future: Future = Future()
        future.set_result(SpeechAudio(text, samples, self.rate))
        return future

    def close(self) -> None:
        """No worker to stop: every piece was rendered when submitted."""


class FakeVLM:
    """Scripted answers for tests and benchmarks: yields words with an optional delay.

    `reply(request) -> str`, when given, answers each request (a draft per view, a reasoning
    stream then a final answer); otherwise every request gets `answer`. `requests` records
    what stream() was asked, `batches` what generate_batch() was asked.
    """

    def __init__(self, answer: str = "It is a red square.", delay: float = 0.0, first_delay: float = 0.0,
                 reply: Callable[[VLMRequest], str] | None = None):
        self.answer = answer
        self.delay = delay
        self.first_delay = first_delay
        self.reply = reply
        self.requests: list[VLMRequest] = []
        self.batches: list[list[VLMRequest]] = []
        self.prepared: list[VLMRequest] = []  # what prepare() was asked (speculative vision)
        self.prepare_delay = 0.0

    def prepare(self, request: VLMRequest) -> Prefix | None:
        """Speculative vision without a model: records the request, returns a Prefix that fits it."""
        self.prepared.append(request)
        time.sleep(self.prepare_delay)
        if request.image is None:
            return None
        return Prefix(request.system, tuple(request.history), request.image, None, None, "", "")

    def _text(self, request: VLMRequest) -> str:
        return self.reply(request) if self.reply else self.answer

    def stream(self, request: VLMRequest, cancel: threading.Event) -> Iterator[str]:
        self.requests.append(request)
        if isinstance(request.prefix, Prefix) and request.prefix.fits(request):
            request.prefix.used = True  # as HFVLM does: the answer ran on the prepared prefix
        time.sleep(self.first_delay)
        for word in self._text(request).split(" "):
            if cancel.is_set():
                return
            time.sleep(self.delay)
            yield word + " "

    def generate_batch(self, requests: list[VLMRequest], cancel: threading.Event,
                       max_new_tokens: int | None = None, min_new_tokens: int | None = None) -> list[str]:
        """Every row advances one word per step, as in a batched generate; cancel stops them all."""
        self.batches.append(list(requests))
        words = [self._text(r).split(" ") for r in requests]
        longest = max(map(len, words), default=0)
        time.sleep(self.first_delay)
        done = 0
        while done < longest and not cancel.is_set():
            time.sleep(self.delay)
            done += 1
        return [" ".join(w[:done]) for w in words]

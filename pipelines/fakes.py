"""Fake models for tests and benchmarks, with the same interfaces as the real stages."""
from __future__ import annotations

import time
from concurrent.futures import Future

import numpy as np

from pipelines.messages import SpeechAudio, Transcript
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
        pass

"""Fake ports for tests: a scripted source built from plain arrays, no files, no devices."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from pipelines.messages import SAMPLE_RATE, AudioChunk, VideoFrame


@dataclass
class FakeInfo:
    duration: float
    has_video: bool = True
    has_audio: bool = True


@dataclass
class ScriptedSource:
    """Audio (16 kHz mono) plus frames drawn by `draw(t)` at `fps`, interleaved in time order."""

    audio: np.ndarray
    draw: Callable[[float], np.ndarray] | None = None
    fps: float = 10.0
    chunk: int = 512
    warnings: list[str] = field(default_factory=list)

    @property
    def info(self) -> FakeInfo:
        return FakeInfo(len(self.audio) / SAMPLE_RATE, self.draw is not None)

    def events(self) -> Iterator[AudioChunk | VideoFrame]:
        n_frames = int(self.info.duration * self.fps) if self.draw else 0
        frame_i = 0
        for start in range(0, len(self.audio), self.chunk):
            t = start / SAMPLE_RATE
            while frame_i < n_frames and frame_i / self.fps <= t:
                yield VideoFrame(frame_i / self.fps, self.draw(frame_i / self.fps))
                frame_i += 1
            piece = self.audio[start : start + self.chunk]
            if len(piece) < self.chunk:
                piece = np.pad(piece, (0, self.chunk - len(piece)))
            yield AudioChunk(t, piece.astype(np.float32))

    def close(self) -> None:
        pass


def tone_track(duration: float, bursts: list[tuple[float, float]], level: float = 0.3) -> np.ndarray:
    """Silence with loud noise bursts at (start, end) seconds: stands in for speech with EnergyVAD."""
    audio = np.zeros(int(duration * SAMPLE_RATE), np.float32)
    rng = np.random.default_rng(0)
    for a, b in bursts:
        i, j = int(a * SAMPLE_RATE), int(b * SAMPLE_RATE)
        audio[i:j] = rng.uniform(-level, level, j - i)
    return audio

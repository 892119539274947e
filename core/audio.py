"""Small audio helpers shared by stages and ports: 16-bit WAV in and out, resampling (soxr)."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1] and the sample rate (channels are averaged)."""
    with wave.open(str(path), "rb") as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
    samples = np.frombuffer(raw, np.int16).astype(np.float32) / 32768.0
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples, rate


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> Path:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return Path(path)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """A whole signal at another rate, through soxr's band-limited filter (linear interpolation
    would fold everything above the new Nyquist frequency back into the speech band).

    For a stream cut into chunks (a microphone), use soxr.ResampleStream: resampling each chunk
    on its own puts a seam at every boundary."""
    samples = np.asarray(samples, np.float32)
    if rate == target or len(samples) == 0:
        return samples
    import soxr

    return soxr.resample(samples, rate, target, quality="HQ").astype(np.float32, copy=False)


class AudioHistory:
    """The last `keep` seconds of 16 kHz audio, kept as chunks: appending never copies.

    The hearing loop appends every 32 ms but cuts an utterance out only when a turn ends,
    so the samples are joined only then.
    """

    def __init__(self, keep: float, rate: int = 16_000):
        from collections import deque

        self.keep, self.rate = keep, rate
        self._chunks: deque[tuple[float, np.ndarray]] = deque()

    def append(self, t: float, samples: np.ndarray) -> None:
        self._chunks.append((t, samples))
        while self._chunks and self._chunks[0][0] + len(self._chunks[0][1]) / self.rate < t - self.keep:
            self._chunks.popleft()

    def between(self, start: float, end: float) -> np.ndarray:
        """Samples from session time `start` to `end` (as much of it as is still kept)."""
        parts = []
        for t, samples in self._chunks:
            a = max(0, int(round((start - t) * self.rate)))
            b = min(len(samples), int(round((end - t) * self.rate)))
            if b > a:
                parts.append(samples[a:b])
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

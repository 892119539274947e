"""Fake ports for tests: a scripted source built from plain arrays, no files, no devices."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from core.messages import SAMPLE_RATE, AudioChunk, VideoFrame


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


# --- live-mode fakes: the laptop's devices without hardware ------------------------------------
class FakeCapture:
    """Stands in for cv2.VideoCapture: `draw(i)` makes frame i; `frames` of them, or endless.

    `die_after` (seconds after the first read): from then on reads fail, like an unplugged
    webcam (a device keeps failing; a file would end). Device kinds pace themselves at `fps`,
    as a webcam's read() blocks until the next frame."""

    def __init__(self, draw: Callable[[int], np.ndarray], fps: float = 30.0, frames: int | None = None,
                 die_after: float | None = None, paced: bool = True):
        import time

        self._time = time
        self.draw, self.fps, self.frames, self.die_after, self.paced = draw, fps, frames, die_after, paced
        self.i = 0
        self.released = False
        self._t0: float | None = None

    def get(self, prop: int) -> float:
        import cv2

        return {cv2.CAP_PROP_FPS: self.fps, cv2.CAP_PROP_FRAME_COUNT: self.frames or -1}.get(prop, 0.0)

    def isOpened(self) -> bool:  # noqa: N802 - cv2's name
        return not self.released

    def grab(self) -> bool:
        return self._next() is not None

    def read(self):
        image = self._next()
        return (image is not None), image

    def _next(self):
        now = self._time.perf_counter()
        if self._t0 is None:
            self._t0 = now
        if self.die_after is not None and now - self._t0 >= self.die_after:
            self._time.sleep(0.01)
            return None
        if self.frames is not None and self.i >= self.frames:
            return None
        if self.paced:
            delay = self._t0 + self.i / self.fps - now
            if delay > 0:
                self._time.sleep(delay)
        self.i += 1
        return self.draw(self.i - 1)

    def release(self) -> None:
        self.released = True


def scripted_microphone(audio: np.ndarray, echo=None):
    """16 kHz samples played in real time as the microphone (then silence)."""
    from glasses.microphone import PacedMicrophone, array_chunks

    return PacedMicrophone(array_chunks(audio.astype(np.float32)), name="scripted", echo=echo)


class RecordingSpeaker:
    """A speaker that plays nothing but records what it was asked to play and when it was cleared.

    Times are session seconds from `now()`; queued clips follow one another as on a real
    speaker, and `clear` cuts what would still sound. `sound(t, n)` is what it would be
    playing at t (16 kHz), for simulating the echo a laptop microphone hears; `heard_blocks()`
    hands out the same sound in 10 ms blocks up to now, as a device's callback would (the
    echo canceller's reference)."""

    rate = SAMPLE_RATE

    def __init__(self, now: Callable[[], float]):
        import threading

        self.now = now
        self._tap_from: float | None = None  # session time the blocks handed out start at
        self._tapped = 0  # blocks handed out
        self._lock = threading.Lock()
        self.plays: list[dict] = []  # text, at (asked), start, end, wall (now when asked)
        self.clears: list[float] = []
        self._clips: list[list] = []  # [start, samples16k, text]
        self._paused_at: float | None = None  # silent from here until resume()

    def play(self, audio, at: float) -> tuple[float, float]:
        from core.audio import resample

        samples = resample(audio.samples, audio.rate, SAMPLE_RATE)
        with self._lock:
            now = self.now()
            start = max([now] + [c[0] + len(c[1]) / SAMPLE_RATE for c in self._clips])
            self._clips.append([start, samples, audio.text])
            end = start + len(samples) / SAMPLE_RATE
            self.plays.append({"text": audio.text, "at": at, "start": start, "end": end, "wall": now})
            return start, end

    def pause(self, at: float) -> None:
        with self._lock:
            if self._paused_at is None:
                self._paused_at = self.now()

    def resume(self, at: float) -> None:
        """What was left at the pause sounds from now on (the clip it cut is split)."""
        with self._lock:
            paused, self._paused_at = self._paused_at, None
            now = self.now()
            if paused is None or now <= paused:
                return
            shifted = []
            for start, samples, text in self._clips:
                cut = int(round((paused - start) * SAMPLE_RATE))
                if cut <= 0:
                    shifted.append([start + now - paused, samples, text])
                elif cut < len(samples):
                    shifted += [[start, samples[:cut], text], [now, samples[cut:], text]]
                else:
                    shifted.append([start, samples, text])
            self._clips = shifted

    def clear(self, at: float) -> None:
        with self._lock:
            now = self.now() if self._paused_at is None else min(self.now(), self._paused_at)
            self._paused_at = None
            self.clears.append(now)
            kept = []
            for c in self._clips:
                if c[0] < now:
                    c[1] = c[1][: int((now - c[0]) * SAMPLE_RATE)]
                    kept.append(c)
            self._clips = kept

    def busy_until(self) -> float:
        with self._lock:
            end = max([c[0] + len(c[1]) / SAMPLE_RATE for c in self._clips], default=0.0)
            held = self.now() - self._paused_at if self._paused_at is not None and end > self._paused_at else 0.0
            return end + held

    def sound(self, t: float, n: int) -> np.ndarray:
        out = np.zeros(n, np.float32)
        with self._lock:
            for start, samples, _ in self._clips:
                a = int(round((t - start) * SAMPLE_RATE))
                lo, hi = max(0, a), min(len(samples), a + n)
                if lo < hi:
                    out[lo - a : hi - a] += samples[lo:hi]
            if self._paused_at is not None:  # nothing sounds while paused
                out[max(0, int(round((self._paused_at - t) * SAMPLE_RATE))) :] = 0.0
        return out

    def played(self, t0: float, t1: float) -> float:
        n = int((t1 - t0) * SAMPLE_RATE)
        return float(np.max(np.abs(self.sound(t0, n)))) if n > 0 else 0.0

    def heard_blocks(self) -> list[tuple[float, np.ndarray]]:
        block = SAMPLE_RATE // 100
        now = self.now()
        if self._tap_from is None:
            self._tap_from = now
        due = int((now - self._tap_from) * 100)
        self._tapped = max(self._tapped, due - 200)  # a caller that stalled gets the last 2 s, as from a bounded queue
        blocks = []
        while self._tapped < due:
            t = self._tap_from + self._tapped / 100
            blocks.append((t, self.sound(t, block)))
            self._tapped += 1
        return blocks

    def close(self) -> None:
        pass


class FakeOutputStream:
    """Stands in for sounddevice.OutputStream: a thread calls the callback every block, in real
    time, and keeps what was 'heard' as (session time, block) for checks and the benchmark."""

    def __init__(self, *, samplerate, blocksize, channels, dtype, device, callback, latency=None, now=None):
        import threading
        import time

        self.rate, self.block, self.callback = samplerate, blocksize, callback
        self.latency = 0.0  # what PortAudio would report: blocks are "heard" when the callback runs
        self.now = now or time.perf_counter
        self.blocks: list[tuple[float, np.ndarray]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-output", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        import time

        period, due = self.block / self.rate, time.perf_counter()
        while not self._stop.is_set():
            out = np.zeros((self.block, 1), np.float32)
            t = self.now()
            self.callback(out, self.block, None, None)
            self.heard(t, out)
            due += period
            delay = due - time.perf_counter()
            if delay > 0:
                self._stop.wait(delay)

    def heard(self, t: float, out: np.ndarray) -> None:
        """One block the device played at session time t (kept: a subclass may only count)."""
        self.blocks.append((t, out[:, 0].copy()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(1.0)

    def close(self) -> None:
        self.stop()

    def sound(self, t: float, n: int) -> np.ndarray:
        """The `n` samples (at the stream's rate) the device played from session time t on:
        what a microphone beside it hears (as `echo` for scripted_microphone)."""
        out = np.zeros(n, np.float32)
        for start, block in reversed(list(self.blocks)):
            a = int(round((t - start) * self.rate))
            lo, hi = max(0, a), min(len(block), a + n)
            if lo < hi:
                out[lo - a : hi - a] = block[lo:hi]
            elif a >= len(block):
                break  # blocks from here on ended before t
        return out

    def sound_ended(self, after: float) -> float | None:
        """Session time of the first silent block at or after `after` (playback stopped)."""
        return next((t for t, b in list(self.blocks) if t >= after and not b.any()), None)


class FakeWindow:
    """The window's contract without a screen: records each new state; `press(key)` is a key."""

    def __init__(self):
        import threading

        self.states: list = []
        self.drawn = self.dropped = 0
        self.started = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self.on_key = None

    def start(self, frame_fn, state_fn, on_key, on_tick=lambda: None):
        import threading

        self.frame_fn, self.state_fn, self.on_key, self.on_tick = frame_fn, state_fn, on_key, on_tick
        self._thread = threading.Thread(target=self._run, name="fake-window", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        self.started.set()
        while not self._stop.wait(0.01):
            state = self.state_fn()
            if not self.states or state != self.states[-1]:
                self.states.append(state)
            self.on_tick()

    def press(self, code: int | str) -> None:
        self.on_key(ord(code) if isinstance(code, str) else code)

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

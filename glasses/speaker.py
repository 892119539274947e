"""Speaker ports: play an answer's audio, pause and resume it (the wearer may be speaking over
it), and clear it at once (stop, barge-in).

- `MixSpeaker`: replay (below).
- `SoundDeviceSpeaker`: live; answer audio through a sounddevice OutputStream whose callback
  reads a buffer in 10 ms blocks; `pause()` holds the buffer and `clear()` empties it, so sound
  stops within one block. It reports the peak of every block it sends (the gate's "known
  playback signal") and, once asked, hands out the blocks themselves stamped with the session
  time they are heard (the echo canceller's reference).
- `TextSpeaker`: live without an output device; nothing is heard, answers are shown as text.

`MixSpeaker` is the replay speaker: nothing is heard, each clip is placed on the media
timeline at the session time it was handed over (queued after the one playing, as a real
speaker would) and `clear` cuts whatever would still sound after that moment. The clips
are then mixed into the annotated video.

A replay can answer hundreds of questions, so the clips' samples are not kept in memory:
they go to a spool file, 16-bit (what espeak-ng writes, so nothing is lost), and each clip
keeps only where its samples lie. The spool has no name in the folder (an unlinked
temporary file), so nothing is left behind whatever way the process ends, and it sits in
the output folder rather than /tmp, which may be memory. Without a spool folder (a replay
that writes no video, or a test) only the clips' times are kept.
"""
from __future__ import annotations

import logging
import os
import queue
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from core.audio import resample
from core.messages import SpeechAudio

log = logging.getLogger("speaker")


class Hold:
    """A live speaker's pause, for its bookkeeping: while paused, the queued audio's end (`until`)
    stays where it was, as if time stood still at the pause; `resume` moves it by the pause."""

    def __init__(self):
        self.since: float | None = None  # paused at this session time

    def pause(self, now: float) -> None:
        if self.since is None:
            self.since = now

    def start(self, now: float, until: float) -> float:
        """Where new audio goes in the held timeline: after what is queued (and not before the pause)."""
        return max(now if self.since is None else self.since, until)

    def held(self, now: float, until: float) -> float:
        """How much later than `until` the queued audio now ends (0 when nothing was left at the pause)."""
        return now - self.since if self.since is not None and until > self.since else 0.0

    def resume(self, now: float, until: float) -> float:
        """The queued audio's end once playing goes on at `now`."""
        until += self.held(now, until)
        self.since = None
        return until


@dataclass
class Placed:
    start: float
    length: int  # samples that sound (clear() shortens it)
    rate: int
    text: str
    offset: int | None = None  # where its samples start in the spool; None: not kept

    @property
    def end(self) -> float:
        return self.start + self.length / self.rate


class MixSpeaker:
    def __init__(self, spool_dir: str | Path | None = None):
        self._clips: list[Placed] = []
        self._lock = threading.Lock()
        self._busy = 0.0  # end of the last clip
        self._paused_at: float | None = None  # nothing sounds from here until resume() shifts what was left
        self._spool_dir = Path(spool_dir) if spool_dir is not None else None
        self._spool = None  # opened at the first clip
        self._spooled = 0  # samples written to the spool
        self.clears: list[float] = []

    def play(self, audio: SpeechAudio, at: float) -> tuple[float, float]:
        """Queue `audio` at session time `at`; returns its (start, end) on the timeline."""
        with self._lock:
            clip = Placed(max(at, self._busy), len(audio.samples), audio.rate, audio.text, self._keep(audio.samples))
            self._clips.append(clip)
            self._busy = clip.end
            return clip.start, clip.end

    def pause(self, at: float) -> None:
        """Nothing sounds from session time `at` until `resume`."""
        with self._lock:
            if self._paused_at is None:
                self._paused_at = at

    def resume(self, at: float) -> None:
        """What would have sounded from the pause on sounds from `at` on instead."""
        with self._lock:
            paused, self._paused_at = self._paused_at, None
            if paused is None or at <= paused:
                return
            shift, placed = at - paused, []
            for c in self._clips:
                if c.start >= paused:
                    c.start += shift
                elif c.end > paused:  # cut where it paused: the rest follows after the pause
                    head = int(round((paused - c.start) * c.rate))
                    placed.append(Placed(at, c.length - head, c.rate, c.text,
                                         None if c.offset is None else c.offset + head))
                    c.length = head
                placed.append(c)
            self._clips = sorted(placed, key=lambda c: c.start)
            self._busy += shift if self._busy > paused else 0.0

    def clear(self, at: float) -> None:
        """Silence everything from session time `at` on (from the pause, when paused)."""
        with self._lock:
            if self._paused_at is not None:
                at, self._paused_at = min(at, self._paused_at), None
            self.clears.append(at)
            kept = []
            for c in self._clips:
                if c.start >= at:
                    continue
                if c.end > at:
                    c.length = int((at - c.start) * c.rate)
                kept.append(c)
            self._clips = kept
            self._busy = max([c.end for c in kept[-1:]], default=0.0)

    def busy_until(self) -> float:
        with self._lock:
            return self._busy

    def clips(self) -> list[Placed]:
        with self._lock:
            return list(self._clips)

    def samples(self, clip: Placed) -> np.ndarray:
        """The clip's float32 samples (as far as it sounds), read back from the spool; empty if not kept."""
        with self._lock:
            if clip.offset is None or self._spool is None or clip.length <= 0:
                return np.zeros(0, np.float32)
            data = bytearray(clip.length * 2)
            view, got = memoryview(data), 0
            while got < len(data):
                n = os.preadv(self._spool.fileno(), [view[got:]], clip.offset * 2 + got)
                if n <= 0:
                    break
                got += n
        return np.frombuffer(data, "<i2", got // 2).astype(np.float32) / 32768.0

    def close(self) -> None:
        """Drop the spool (its disk space is freed at once)."""
        with self._lock:
            if self._spool is not None:
                self._spool.close()
                self._spool = None
            self._spool_dir = None  # a clip played after this keeps no audio

    def _keep(self, samples: np.ndarray) -> int | None:
        """Append the samples to the spool; their offset there, or None when not kept."""
        if self._spool_dir is None:
            return None
        pcm = np.clip(np.round(np.asarray(samples, np.float32) * 32768.0), -32768, 32767).astype("<i2")
        try:
            if self._spool is None:  # unbuffered: a full disk shows here, not at some later flush
                self._spool = tempfile.TemporaryFile(dir=self._spool_dir, prefix=".answers-", buffering=0)
            view, done = memoryview(pcm.tobytes()), 0
            while done < len(view):
                done += os.pwrite(self._spool.fileno(), view[done:], self._spooled * 2 + done)
        except OSError as err:  # a full disk: the answers stay in the log, the video goes without their sound
            log.warning("answers' audio not kept for the video: %s", err.strerror or err)
            self._spool_dir = None
            return None
        offset, self._spooled = self._spooled, self._spooled + len(pcm)
        return offset


class QueuedSpeaker:
    """What a live speaker has queued, on session time: where new audio starts and ends, how
    long the queue sounds, and its pause (`Hold`). Subclasses add what is heard (or not)."""

    def __init__(self, now: Callable[[], float]):
        self._now = now
        self._lock = threading.Lock()
        self._until = 0.0  # session time the queued audio ends (while paused: had it not paused)
        self._hold = Hold()
        self.clears: deque[float] = deque(maxlen=1000)  # session times clear() was called (the last ones)

    def _queue(self, seconds: float) -> tuple[float, float]:
        """Under the lock: place `seconds` of audio after what is queued; its (start, end) as it will sound."""
        now = self._now()
        start = self._hold.start(now, self._until)
        self._until = start + seconds
        held = self._hold.held(now, self._until)
        return start + held, self._until + held

    def pause(self, at: float) -> None:
        """Hold what is queued until `resume`."""
        with self._lock:
            self._hold.pause(self._now())
            self._paused()

    def _paused(self) -> None:
        """Under the lock, after a pause."""

    def resume(self, at: float) -> None:
        with self._lock:
            self._until = self._hold.resume(self._now(), self._until)

    def clear(self, at: float) -> None:
        with self._lock:
            self._hold.since = None
            self._until = min(self._until, self._now())
            self.clears.append(self._now())
            self._cleared()

    def _cleared(self) -> None:
        """Under the lock, after a clear: drop what is queued."""

    def busy_until(self) -> float:
        with self._lock:
            return self._until + self._hold.held(self._now(), self._until)


class SoundDeviceSpeaker(QueuedSpeaker):
    """Plays answers on an output device; `pause()` and `clear()` silence it within one block.

    The callback runs on PortAudio's thread: it copies from the pending buffers under a lock
    held for microseconds (play/clear only append or empty a deque), pads with silence on
    underrun, and records (time, peak) of what it sent; once `heard_blocks()` has been
    called it also copies each block into a bounded queue (`put_nowait`, drops counted) for
    the echo canceller. `stream_factory` lets tests and the benchmark drive the same
    callback without a sound card.

    When a block is heard: the callback's time plus the output latency, from the DAC time
    PortAudio gives the callback; some host APIs give zeros, and then the latency the stream
    reported when it opened (`latency`, None when it reported none: then 0 is assumed)."""

    TAP_BLOCKS = 200  # 2 s of 10 ms blocks between the callback and the echo canceller

    def __init__(self, device: dict | None, now: Callable[[], float], *, rate: int | None = None,
                 block_s: float = 0.01, stream_factory=None):
        self.name = device["name"] if device else "default"
        self.rate = int(rate or (device or {}).get("default_samplerate") or 48000)
        self.block = max(16, int(self.rate * block_s))
        super().__init__(now)
        self._pending: deque[np.ndarray] = deque()
        self._offset = 0  # samples of _pending[0] already sent
        self._levels: deque[tuple[float, float, float]] = deque(maxlen=3000)  # (t0, t1, peak) per block sent
        self._clear_sent = False
        self.silenced: deque[float] = deque(maxlen=1000)  # session times the first block after a clear or pause reached the device
        self._tap: queue.Queue = queue.Queue(maxsize=self.TAP_BLOCKS)
        self._tapping = False
        self.tap_dropped = 0
        self.timed = True  # whether the callbacks carry DAC times (else the stream's latency is used)
        if stream_factory is None:
            import sounddevice as sd

            stream_factory = sd.OutputStream
        self._stream = stream_factory(samplerate=self.rate, blocksize=self.block, channels=1, dtype="float32",
                                      device=device["index"] if device else None, callback=self._callback,
                                      latency="low")  # what is queued in the device cannot be cleared
        reported = getattr(self._stream, "latency", None)
        self.latency: float | None = float(reported) if isinstance(reported, (int, float)) and reported >= 0 else None
        self._stream.start()

    def _heard_at(self, time_info) -> float:
        now = self._now()
        dac, current = getattr(time_info, "outputBufferDacTime", 0.0), getattr(time_info, "currentTime", 0.0)
        if dac > 0 and current > 0 and 0 <= dac - current < 1.0:
            return now + dac - current
        self.timed = False
        return now + (self.latency or 0.0)

    def _callback(self, outdata, frames, time_info, status) -> None:
        out = outdata[:, 0]
        n = 0
        t = self._heard_at(time_info)  # when this block will be heard
        with self._lock:
            while n < frames and self._pending and self._hold.since is None:
                head = self._pending[0]
                take = min(frames - n, len(head) - self._offset)
                out[n : n + take] = head[self._offset : self._offset + take]
                n, self._offset = n + take, self._offset + take
                if self._offset >= len(head):
                    self._pending.popleft()
                    self._offset = 0
            out[n:] = 0.0
            if n:
                self._levels.append((t, t + frames / self.rate, float(np.max(np.abs(out[:n])))))
            if self._clear_sent:
                self._clear_sent = False
                self.silenced.append(t)
        if self._tapping:  # silence too: the canceller needs the far end as one unbroken stream
            try:
                self._tap.put_nowait((t, out.copy()))
            except queue.Full:
                self.tap_dropped += 1

    def heard_blocks(self) -> list[tuple[float, np.ndarray]]:
        """The blocks sent to the device since the last call, (session time heard, samples at
        `rate`). Nothing is kept before the first call, so a session without a canceller
        copies nothing."""
        self._tapping = True
        blocks = []
        while True:
            try:
                blocks.append(self._tap.get_nowait())
            except queue.Empty:
                return blocks

    def play(self, audio: SpeechAudio, at: float) -> tuple[float, float]:
        samples = resample(np.asarray(audio.samples, np.float32), audio.rate, self.rate)  # outside the lock
        with self._lock:
            self._pending.append(samples)
            return self._queue(len(samples) / self.rate)

    def _cleared(self) -> None:
        self._pending.clear()
        self._offset = 0
        self._clear_sent = True

    def _paused(self) -> None:
        self._clear_sent = True  # the next block is silent: noted in `silenced`

    def played(self, t0: float, t1: float) -> float:
        """Peak of what was sent to the device for session times [t0, t1] (the gate's far end)."""
        peak = 0.0
        with self._lock:
            for a, b, p in reversed(self._levels):
                if b < t0:
                    break
                if a <= t1:
                    peak = max(peak, p)
        return peak

    def close(self) -> None:
        self.clear(self._now())
        self._stream.stop()
        self._stream.close()


class TextSpeaker(QueuedSpeaker):
    """No output device: nothing is heard; the answer stays on the display (and the terminal)
    for as long as it would take to say, so turn-taking keeps the same rhythm."""

    name = "none (text only)"

    def play(self, audio: SpeechAudio, at: float) -> tuple[float, float]:
        with self._lock:
            return self._queue(len(audio.samples) / audio.rate)

    def played(self, t0: float, t1: float) -> float:
        return 0.0

    def close(self) -> None:
        pass

"""Speaker ports: play an answer's audio, and clear it at once (stop, barge-in).

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
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.messages import SpeechAudio

log = logging.getLogger("speaker")


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

    def clear(self, at: float) -> None:
        """Silence everything from session time `at` on."""
        with self._lock:
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

"""Speaker ports: play an answer's audio, and clear it at once (stop, barge-in).

`MixSpeaker` is the replay speaker: nothing is heard, each clip is placed on the media
timeline at the session time it was handed over (queued after the one playing, as a real
speaker would) and `clear` cuts whatever would still sound after that moment. The clips
are then mixed into the annotated video.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from core.messages import SpeechAudio


@dataclass
class Placed:
    start: float
    samples: np.ndarray
    rate: int
    text: str

    @property
    def end(self) -> float:
        return self.start + len(self.samples) / self.rate


class MixSpeaker:
    def __init__(self):
        self._clips: list[Placed] = []
        self._lock = threading.Lock()
        self.clears: list[float] = []

    def play(self, audio: SpeechAudio, at: float) -> tuple[float, float]:
        """Queue `audio` at session time `at`; returns its (start, end) on the timeline."""
        with self._lock:
            start = max([at] + [c.end for c in self._clips])
            clip = Placed(start, audio.samples, audio.rate, audio.text)
            self._clips.append(clip)
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
                    c.samples = c.samples[: int((at - c.start) * c.rate)]
                kept.append(c)
            self._clips = kept

    def busy_until(self) -> float:
        with self._lock:
            return max([c.end for c in self._clips], default=0.0)

    def clips(self) -> list[Placed]:
        with self._lock:
            return list(self._clips)

"""The chaos soak's devices (benchmarks/soak.py): the wearable's microphone, camera and sound
card, each with the one fault or hook the soak needs and nothing that grows with the session.

- `SpeakingMicrophone`: hears what the script says, in real time. Each utterance is a noise
  burst (EnergyVAD hears it as speech) carrying a tone whose pitch names its line of the
  script (benchmarks/soak_models.ToneASR reads it back). It can *hold* its chunks for a
  moment (delivery jitter: the chunk that completes a barge-in is handed over when the
  script says) and *stall* (a device that stops, then delivers everything at once, more
  than its bounded queue holds: chunks are dropped and counted).
- `FlakyCapture`: a webcam (cv2.VideoCapture's contract) that goes dark for a while and comes back.
- `QuietOutputStream`: a sound card for the real SoundDeviceSpeaker that keeps only counts.
- `SoakSpeaker`: the real SoundDeviceSpeaker, noting each answer's first play and, at each
  clear, what was going on (a piece rendering, audio playing, the VLM generating).
"""
from __future__ import annotations

import re
import threading
import time
from collections import deque
from typing import Callable

import numpy as np

from benchmarks.soak_models import SoakVLM, WatchedTTS
from core.messages import SAMPLE_RATE
from glasses.fakes import FakeOutputStream
from glasses.speaker import SoundDeviceSpeaker
from glasses.microphone import CHUNK, QUEUE_CHUNKS, Microphone

HOLD_LIMIT = 1.0  # s a hold lasts if nobody releases it: at most 31 chunks, under the queue's 64, so
# holding never drops audio (only a stall does)


class SpeakingMicrophone(Microphone):
    """Real-time 16 kHz chunks of silence, with the script's bursts in them (see the module doc)."""

    def __init__(self, level: float = 0.45, maxsize: int = QUEUE_CHUNKS, seed: int = 0):
        super().__init__("soak", maxsize)
        self.level = level
        self._bursts: deque[tuple[float, float, float]] = deque(maxlen=16)  # (start, end, tone Hz)
        self._lock = threading.Lock()
        self._held: list[tuple[float, np.ndarray]] = []  # bounded by HOLD_LIMIT and the stall's length
        self._hold_from, self._hold_until = float("inf"), 0.0
        self._stall_until = float("-inf")
        self._rng = np.random.default_rng(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stalls = 0

    def start(self, now: Callable[[], float]) -> "SpeakingMicrophone":
        super().start(now)
        self._thread = threading.Thread(target=self._run, name="mic-soak", daemon=True)
        self._thread.start()
        return self

    def say(self, seconds: float, tone: float, lead: float = 0.02) -> tuple[float, float]:
        """Speak for `seconds` from just after now; returns the burst's (start, end) session times."""
        start = self._now() + lead
        with self._lock:
            self._bursts.append((start, start + seconds, tone))
        return start, start + seconds

    def hold(self, from_t: float) -> None:
        """Keep back every chunk that starts at or after `from_t` until `release()`."""
        with self._lock:
            self._hold_from, self._hold_until = from_t, max(self._now(), from_t) + HOLD_LIMIT

    def release(self) -> None:
        """Hand over what was held, at once (called from whichever thread decides it is time)."""
        with self._lock:
            self._hold_from = float("inf")
            self._flush()

    def stall(self, seconds: float) -> None:
        """Deliver nothing for `seconds`, then everything at once (the bounded queue overflows)."""
        with self._lock:
            self._stall_until = self._now() + seconds
            self.stalls += 1

    def _flush(self) -> None:  # with the lock held
        for t, samples in self._held:
            self._offer(t, samples)
        self._held.clear()

    def _render(self, t: float) -> np.ndarray:
        out = np.zeros(CHUNK, np.float32)
        times = t + np.arange(CHUNK) / SAMPLE_RATE
        with self._lock:
            bursts = list(self._bursts)
        for start, end, tone in bursts:
            inside = (times >= start) & (times < end)
            if inside.any():
                n = int(inside.sum())
                noise = self._rng.uniform(-self.level, self.level, n)
                out[inside] = noise + self.level * np.sin(2 * np.pi * tone * times[inside])
        return out

    def _run(self) -> None:
        t0 = self._now()
        i = 0
        while not self._stop.is_set():
            t = t0 + i * CHUNK / SAMPLE_RATE
            wait = t + CHUNK / SAMPLE_RATE - self._now()  # a chunk exists once its last sample was "heard"
            if wait > 0 and self._stop.wait(wait):
                return
            samples = self._render(t)
            i += 1
            with self._lock:
                now = self._now()
                if now >= self._hold_until:
                    self._hold_from = float("inf")  # nobody released it: let go
                if now < self._stall_until or t >= self._hold_from:
                    self._held.append((t, samples))
                    continue
                self._flush()
                self._offer(t, samples)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)


class FlakyCapture:
    """A webcam at `fps` whose reads fail during an outage (`outage(seconds)`), then recover."""

    def __init__(self, fps: float = 15.0, size: tuple[int, int] = (120, 160)):
        h, w = size
        self.fps, self.released, self.outages = fps, False, 0
        self._scenes = []
        for i in range(30):  # a red square on grey, and a small thing that moves
            img = np.full((h, w, 3), 128, np.uint8)
            img[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = (0, 0, 255)
            img[4:10, (5 * i) % (w - 6) : (5 * i) % (w - 6) + 6] = 255
            self._scenes.append(img)
        self._i = 0
        self._due = time.perf_counter()
        self._dark_until = 0.0

    def outage(self, seconds: float) -> None:
        self._dark_until = time.perf_counter() + seconds
        self.outages += 1

    def get(self, prop: int) -> float:
        import cv2

        return {cv2.CAP_PROP_FPS: self.fps}.get(prop, 0.0)

    def isOpened(self) -> bool:  # noqa: N802 - cv2's name
        return not self.released

    def grab(self) -> bool:
        return self.read()[0]

    def read(self):
        if time.perf_counter() < self._dark_until:
            time.sleep(0.02)
            return False, None
        delay = self._due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        self._due = max(self._due + 1.0 / self.fps, time.perf_counter())  # after an outage: no catching up
        self._i += 1
        return True, self._scenes[self._i % len(self._scenes)]

    def release(self) -> None:
        self.released = True


class QuietOutputStream(FakeOutputStream):
    """glasses.fakes.FakeOutputStream that keeps no blocks, only how many sounded: a soak plays
    for minutes, and the blocks would grow without bound."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.blocks = self.sounding = 0

    def heard(self, t: float, out: np.ndarray) -> None:
        self.blocks += 1
        self.sounding += bool(out.any())


class SoakSpeaker(SoundDeviceSpeaker):
    """The real speaker over a QuietOutputStream. It notes the first play of each answer (by the
    number in its text) and, at every clear, whether a piece was rendering and audio playing."""

    def __init__(self, now: Callable[[], float], tts: WatchedTTS, vlm: SoakVLM, rate: int = 22050):
        self.tts, self.vlm = tts, vlm
        self.first_play: dict[int, float] = {}  # answer number -> start (one int a question: the soak's ledger)
        self.plays = 0
        self.phases: deque[dict] = deque(maxlen=4096)
        self.closing = False
        super().__init__(None, now, rate=rate, stream_factory=QuietOutputStream)

    def play(self, audio, at: float) -> tuple[float, float]:
        start, end = super().play(audio, at)
        self.plays += 1
        m = re.search(r"answer (\d+)", audio.text)
        if m:
            self.first_play.setdefault(int(m.group(1)), start)
        return start, end

    def clear(self, at: float) -> None:
        if not self.closing:
            now = self._now()
            self.phases.append({"t": now, "rendering": self.tts.rendering is not None,
                                "playing": self.busy_until() > now,
                                "generating": self.vlm.active > 0, "queued": not self.tts.idle()})
        super().clear(at)

    def close(self) -> None:
        self.closing = True
        super().close()

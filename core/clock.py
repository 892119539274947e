"""The one session clock every time-dependent part reads.

Live and `--pace realtime`: session time is wall time since start, and the source sleeps
so media plays at 1x. `--pace fast`: session time is the media time the hearing stage has
reached, so the same replay gives the same decisions however fast the machine is; the
time a turn takes is then charged to the media timeline as its measured latency.
"""
from __future__ import annotations

import threading
import time


class WallClock:
    realtime = True

    def __init__(self):
        self._t0 = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self._t0

    def advance(self, t: float) -> None:
        """Media position reached; wall time moves by itself."""

    def wait_until(self, t: float, stop: threading.Event | None = None) -> None:
        delay = t - self.now()
        if delay > 0:
            (stop or threading.Event()).wait(delay)


class MediaClock:
    realtime = False

    def __init__(self):
        self._t = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def advance(self, t: float) -> None:
        with self._lock:
            self._t = max(self._t, t)

    def wait_until(self, t: float, stop: threading.Event | None = None) -> None:
        """Fast pace never waits."""


def anchor(clock) -> tuple[float, float]:
    """(session time, perf_counter) at one instant: a turn's times are anchor + elapsed compute."""
    return clock.now(), time.perf_counter()


def since(anchor_pair: tuple[float, float]) -> float:
    """Session time now, measured from an anchor by the wall stopwatch."""
    session_t, perf_t = anchor_pair
    return session_t + (time.perf_counter() - perf_t)


class Lockstep:
    """Fast pace: the hearing thread waits until control has handled what it handed over, so
    events are handled in media-time order however fast the machine is."""

    def __init__(self, enabled: bool):
        self.enabled, self.stopping, self._pending = enabled, False, 0
        self._cond = threading.Condition()

    def hand_over(self) -> None:
        with self._cond:
            self._pending += self.enabled

    def done(self) -> None:
        with self._cond:
            self._pending -= self.enabled
            self._cond.notify_all()

    def wait(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._pending <= 0 or self.stopping)

    def stop(self) -> None:
        with self._cond:
            self.stopping = True
            self._cond.notify_all()

"""Memory's share of a session (pipelines/session.py's module doc says when describing runs):
when describing may run, and on which thread. The session builds one when `--memory` is on."""
from __future__ import annotations


class MemoryWork:
    """Memory's share of the session (see the module doc): when describing may run, and where."""

    def __init__(self, session, describer):
        self.session, self.describer = session, describer

    def loops(self) -> list:
        """Live and real-time pace: the memory's two threads (fast pace uses the hearing thread)."""
        if not self.session.clock.realtime:
            return []
        return [("keyframes", self._keyframe_loop), ("describe", self._describe_loop)]

    def interrupt(self) -> None:
        self.describer.interrupt(self.session.clock.now())

    def busy(self) -> bool:
        """Whether describing must wait: the wearer speaks, or a question is heard, answered or spoken.
        Fast pace reads only what the lock-step has settled, so the answer does not depend on timing."""
        s = self.session
        now = s.clock.now()
        if s.hearing.active or s.control.answers or s.turns.busy(now) or s.speaker.busy_until() > now:
            return True
        return s.clock.realtime and (s._transcribing or not (s.asr_q.empty() and s.control_q.empty()))

    def remember(self) -> None:
        """Fast pace, on the hearing thread: pick, and describe now if nothing else goes on."""
        now = self.session.clock.now()
        self.describer.pick(now, self.session.ring.snapshot())
        self.describer.describe_next(now, self.busy)

    def _keyframe_loop(self) -> None:
        s, every = self.session, self.describer.config.sample_every / 2
        while not s.stop_event.wait(every):
            self.describer.pick(s.clock.now(), s.ring.snapshot())

    def _describe_loop(self) -> None:
        s = self.session
        while not s.stop_event.is_set():
            if self.describer.wait_pending(0.2) and not self.describer.describe_next(s.clock.now(), self.busy):
                s.stop_event.wait(0.1)  # not now (busy, or just interrupted): look again shortly

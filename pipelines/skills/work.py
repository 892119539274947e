"""The skills' share of a session: what they do besides answering questions.

- Announcements: a skill with `due(now)` (timers, reminders) is asked, in a fast replay, after
  every audio chunk on the hearing thread at the media time reached (so a replay fires them at
  the same moment however fast it runs); live and at real-time pace, by the control thread at
  least every 0.2 s (a session without a microphone has no audio chunks). Each due text becomes an `Announcement`, answered like a question by
  `Announcer` (it speaks the text). They wait while an answer runs or sounds: an alarm does not
  cut the wearer's answer off, it follows it.
- A look: a skill with `glance(frames)` tells what it sees in the newest frames (shopping: a
  barcode), for the router's `look()`; asked only when a question's words could go that way.
- Frames: a skill with `offer(frame)` (video recording) sees every camera frame, on the
  source thread; while one `recording()`, the display's capture light is on.
"""
from __future__ import annotations

import time

from core.messages import Announcement
from pipelines.modes import ModeContext, ModeResult
from pipelines.skills.base import say

ANNOUNCER = "announce"  # the route's name for announcements


class Announcer:
    """Speaks an announcement's text as it is (the router never sends it a question)."""

    name = ANNOUNCER

    def wants(self, question: str, active: str = "") -> str:
        return ""

    def answer(self, ctx: ModeContext) -> ModeResult:
        return say(ctx, time.perf_counter(), ctx.request.question, {"text": ctx.request.question}, "announcement")


class SkillWork:
    def __init__(self, skills, busy, show, frames=list):
        """`skills`: the session's skills; `busy(now)`: an answer runs or sounds; `show(t, **fields)`;
        `frames()`: the ring's frames, the newest at the camera's resolution."""
        self.timed = [s for s in skills if callable(getattr(s, "due", None))]
        self.taps = [s for s in skills if callable(getattr(s, "offer", None))]
        self.glancers = [s for s in skills if callable(getattr(s, "glance", None))]
        self.busy, self.show, self.frames = busy, show, frames
        self._recording = False

    def due(self, now: float) -> list[Announcement]:
        """What is due at session time `now` and may be said now (nothing while busy)."""
        if not self.timed or self.busy(now):
            return []
        return [Announcement(now, text, skill.name, time.perf_counter()) for skill in self.timed
                for text in skill.due(now)]

    def look(self) -> frozenset:
        """What the skills see in the newest frames now (the router's `look`)."""
        if not self.glancers:
            return frozenset()
        frames = self.frames()[-1:]
        return frozenset(tag for skill in self.glancers for tag in skill.glance(frames))

    def offer(self, frame) -> None:
        recording = False
        for skill in self.taps:
            skill.offer(frame)
            recording = recording or bool(getattr(skill, "recording", lambda: False)())
        if recording != self._recording:
            self._recording = recording
            self.show(frame.t, recording=recording)

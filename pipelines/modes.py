"""Answer modes (Muse Spark's Instant, Thinking, Contemplating) behind one function.

The session hands a mode a `ModeContext` and gets a `ModeResult`. A mode decides what is
generated and what is spoken: it calls `ctx.speak(text)` with text to say as it streams
(the session splits it into sentences for TTS), `ctx.show(text)` with text for the display
only (reasoning), and `ctx.cue(text)` for a short spoken cue. Everything stops when
`ctx.cancel` is set (barge-in, "stop", a newer question).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from pipelines.messages import FrameSnapshot, VLMRequest

MODES = ("instant",)  # the modes `m` / "next" cycles through
MODE_CHOICES = ("instant", "thinking", "contemplating", "auto")  # what --mode accepts


@dataclass
class ModeContext:
    vlm: object  # VisionLanguageModel
    request: VLMRequest  # the instant-style request: system prompt, history, best frame, question
    cancel: threading.Event
    speak: Callable[[str], None]
    show: Callable[[str], None] = lambda text: None
    cue: Callable[[str], None] = lambda text: None
    frames: list[FrameSnapshot] = field(default_factory=list)  # the ring, for other views
    best: FrameSnapshot | None = None
    start: float = 0.0  # the question's speech window, session seconds
    end: float = 0.0
    image_side: int = 512
    agents: int = 4  # K drafts in contemplating
    elapsed: Callable[[], float] = lambda: 0.0  # session seconds since the end of the question, now


@dataclass
class ModeResult:
    answer: str  # the final, spoken answer
    first_token: float | None  # seconds from the start of generation to the first token
    vlm_total: float  # seconds of generation in all
    extra: dict = field(default_factory=dict)  # logged with the turn (reasoning, drafts, ...)


def choose_mode(question: str, current: str) -> tuple[str, str, str]:
    """(mode to run, question to ask, why): voice switching and --mode auto plug in here."""
    return current, question, "current mode"


def answer(mode: str, ctx: ModeContext) -> ModeResult:
    if mode not in RUNNERS:
        raise ValueError(f"unknown mode {mode!r}")
    return RUNNERS[mode](ctx)


def instant(ctx: ModeContext) -> ModeResult:
    """Answer at once: greedy, short, every token streamed to speech."""
    t0 = time.perf_counter()
    first_token = None
    text = ""
    for piece in ctx.vlm.stream(ctx.request, ctx.cancel):
        if first_token is None:
            first_token = time.perf_counter() - t0
        text += piece
        ctx.speak(piece)
        if ctx.cancel.is_set():
            break
    return ModeResult(text.strip(), first_token, time.perf_counter() - t0)


RUNNERS: dict[str, Callable[[ModeContext], ModeResult]] = {"instant": instant}

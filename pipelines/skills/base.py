"""What every skill shares: speaking a fixed answer as a `ModeResult`, and matching phrasings.

A skill is a small answerer with the router's shape (pipelines/router.py: `name`, `wants`,
`answer`). Its decisions are pure functions of words and pixels in its own module, so they
test without a session; `answer` runs them and speaks through the `ModeContext`.
"""
from __future__ import annotations

import re
import time

from pipelines.modes import ModeContext, ModeResult
from pipelines.wake import normalise


def say(ctx: ModeContext, t0: float, text: str, record: dict, key: str) -> ModeResult:
    """Speak `text` (unless cancelled) and return it as the answer; `record` is logged with the
    turn under `key`. `t0`: time.perf_counter() when the skill began (its time to a first word)."""
    first = time.perf_counter() - t0
    if text and not ctx.cancel.is_set():
        ctx.speak(text)
    return ModeResult(text, first, 0.0, {key: record})


def matches(pattern: re.Pattern, question: str) -> re.Match | None:
    """`pattern` searched in the normalised question (lower case, no punctuation or accents)."""
    return pattern.search(normalise(question))

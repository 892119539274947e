"""Speculative vision: the frame and its encoding are ready before the question ends.

While the wearer is still speaking, the session picks the frame it would answer about,
and the VLM encodes it and pre-fills the prompt up to the question (`vlm.prepare`). When
the question's text arrives, only its own tokens remain to pre-fill. The decisions are
pure functions of the speculation and the frame picked now:

- keep the speculation when it is for this utterance, with the same prompt context, and
  the frame picked now shows the same view (`vision.same_view`): the answer then uses the
  prepared frame;
- otherwise redo it (at the pause) or answer without it (at the question), and count that.
"""
from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from core.messages import FrameSnapshot
from pipelines.vision import same_frame_view


@dataclass
class Speculation:
    start: float  # speech start of the utterance it was made for
    frame: FrameSnapshot  # the frame it prepared, at camera resolution
    image: np.ndarray  # that frame as the model sees it (the array the Prefix is tied to)
    context: tuple  # (system prompt, history) the prefix was built with
    future: Future  # -> vlm.Prefix | None
    redone: int = 0  # times it was started again for this utterance


def judge(spec: Speculation | None, start: float, frame: FrameSnapshot | None, context: tuple) -> tuple[str, str]:
    """("keep" | "redo" | "new" | "none", why) for the frame picked now."""
    if frame is None:
        return "none", "no camera frame"
    if spec is None:
        return "new", "nothing prepared"
    if abs(spec.start - start) > 1e-6:
        return "new", "prepared for another utterance"
    if spec.context != context:
        return "redo", "the conversation changed"
    if same_frame_view(spec.frame, frame):
        return "keep", "same view"
    return "redo", "the view changed"

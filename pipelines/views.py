"""Contemplating's views: different looks at one question, as pure functions.

Each of the K agents drafts from its own view, so their mistakes differ and agreement
means something. A view is an image source (the best frame, a frame from another moment
of the utterance window, a zoomed crop of the most detailed region) paired with an
instruction (answer; describe first, then answer; say what is uncertain, then answer).
The first views are one of each kind; more agents get further moments and crops, then
every remaining pairing. Views repeat only when the pairings run out (no camera image).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.messages import FrameSnapshot
from pipelines.vision import fit_for_model, sharpness

# The instructions: plain format strings around the wearer's question.
ANSWER = "{question}"
DESCRIBE_FIRST = "First say in one sentence what you see, then answer: {question}"
UNCERTAINTIES = "First say in one sentence what you cannot tell from the picture, then answer: {question}"
INSTRUCTIONS = (("", ANSWER), ("describe first", DESCRIBE_FIRST), ("list uncertainties", UNCERTAINTIES))

# What an image source tells the model about itself (prepended to the instruction).
MOMENT_NOTE = "This picture is from another moment while the wearer was asking. "
ZOOM_NOTE = "This picture is a close-up of the most detailed part of what the wearer sees. "

LOOK_BACK = 1.5  # seconds: a short or typed question still has earlier moments to look at
MIN_GAP = 0.3  # seconds between frames that count as different moments
ZOOM = 0.5  # a crop is this fraction of the frame's width and height (2x zoom)


@dataclass(frozen=True)
class View:
    name: str  # logged with the draft, e.g. "zoomed detail; describe first"
    image: np.ndarray | None  # RGB, sized for the model; None without a camera image
    instruction: str  # format string with {question}
    frame_time: float | None = None

    def prompt(self, question: str) -> str:
        return self.instruction.format(question=question)


@dataclass(frozen=True, eq=False)  # eq=False: identity, never an elementwise comparison of images
class _Source:
    name: str
    image: np.ndarray | None
    note: str = ""
    frame_time: float | None = None


def other_moments(frames: list[FrameSnapshot], start: float, end: float, best: FrameSnapshot, n: int,
                  min_gap: float = MIN_GAP) -> list[FrameSnapshot]:
    """Up to n good frames from the question's window, each at least `min_gap` from the best
    frame and from one another (best quality first: sharpness times exposure)."""
    lo = min(start, end - LOOK_BACK) - MIN_GAP
    window = [f for f in frames if lo <= f.t <= end + MIN_GAP]
    top = max((f.sharpness for f in window), default=0.0) or 1.0
    picked: list[FrameSnapshot] = []
    for f in sorted(window, key=lambda f: (f.sharpness / top) * (0.25 + 0.75 * f.exposure), reverse=True):
        if len(picked) == n:
            break
        if all(abs(f.t - other.t) >= min_gap for other in (best, *picked)):
            picked.append(f)
    return picked


def detail_boxes(image_bgr: np.ndarray, n: int, frac: float = ZOOM) -> list[tuple[int, int, int, int]]:
    """The n most detailed crops (x0, y0, x1, y1) among a 3x3 grid of overlapping windows,
    by sharpness (variance of the Laplacian): where the text, the label, the small thing is."""
    h, w = image_bgr.shape[:2]
    ch, cw = max(1, int(h * frac)), max(1, int(w * frac))
    boxes = [(x, y, x + cw, y + ch) for y in np.linspace(0, h - ch, 3).astype(int)
             for x in np.linspace(0, w - cw, 3).astype(int)]
    scored = sorted(boxes, key=lambda b: sharpness(image_bgr[b[1]:b[3], b[0]:b[2]]), reverse=True)
    return scored[:n]


def build_views(k: int, *, image: np.ndarray | None, best: FrameSnapshot | None, frames: list[FrameSnapshot],
                start: float, end: float, image_side: int = 512) -> list[View]:
    """K views for one question. `image` is the best frame as the model sees it (RGB, sized),
    `best` the same frame at camera resolution (zoomed crops come from it, not from the
    downscaled copy), `frames` the ring, `start`/`end` the question's speech window."""
    if image is None or best is None:  # no camera image: only the instructions can differ
        sources = [_Source("no image", None)]
    else:
        extra = max(1, k // 3)
        moments = [_Source("another moment", fit_for_model(f.image, image_side), MOMENT_NOTE, f.t)
                   for f in other_moments(frames, start, end, best, extra)]
        zooms = [_Source("zoomed detail", fit_for_model(best.image[y0:y1, x0:x1], image_side), ZOOM_NOTE, best.t)
                 for x0, y0, x1, y1 in detail_boxes(best.image, extra)]
        interleaved = []
        for i in range(max(len(moments), len(zooms))):
            interleaved += moments[i:i + 1] + zooms[i:i + 1]
        sources = [_Source("best frame", image, "", best.t), *interleaved]
        # numbered when a kind repeats, so the log tells the views apart
        for kind in ("another moment", "zoomed detail"):
            same = [i for i, s in enumerate(sources) if s.name == kind]
            if len(same) > 1:
                for j, i in enumerate(same, 1):
                    sources[i] = _Source(f"{kind} {j}", sources[i].image, sources[i].note, sources[i].frame_time)

    plain, describe, uncertain = INSTRUCTIONS
    first = [(sources[0], plain)]
    first += [(s, plain) for s in sources[1:3]]  # the first moment and the first crop
    first += [(sources[0], describe), (sources[0], uncertain)]
    rest = [(s, i) for s in sources for i in INSTRUCTIONS]
    pairs: list[tuple[_Source, tuple[str, str]]] = []
    for s, instruction in first + rest:
        if not any(s is t and instruction == j for t, j in pairs):
            pairs.append((s, instruction))
    views = [View("; ".join(p for p in (s.name, label) if p), s.image, s.note + text, s.frame_time)
             for s, (label, text) in pairs]
    return [views[i % len(views)] for i in range(k)]

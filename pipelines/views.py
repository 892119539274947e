"""Contemplating's views: different looks at one question, as pure functions.

Each of the K agents drafts from its own view, so their mistakes differ and agreement
means something. A view is an image source (the best frame, a zoomed crop of the most
detailed region, a frame from another moment of the utterance window) paired with an
instruction (answer; describe first, then answer; say what is uncertain, then answer).

The order is chosen for diversity per vision encoding. The K drafts run as one batched
generate that encodes each distinct image once (pipelines/vlm.py), and on a CPU an encoding
is most of a prompt's cost and does not get cheaper in a batch, so views that share the
best frame share its encoding. The first views are: the best frame; the zoomed crop (always
a genuinely different look, and the one that reads small text); the best frame with
"describe first"; another moment; the best frame with "list uncertainties". A moment is
only taken when it shows a different view from the best frame and from the moments already
taken (`vision.same_view`): in a static scene it is the same picture again, one more
encoding that adds nothing, and the pairing falls through to the next one (so K=4 in a
static scene is the best frame three ways plus the crop: two encodings, not three). More
agents then get the other instructions on the images already in, then further crops and
moments. Views repeat only when the pairings run out (no camera image).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.messages import FrameSnapshot
from pipelines.vision import fit_for_model, same_frame_view, sharpness

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
    """Up to n good frames from the question's window that each show a different view: at
    least `min_gap` from the best frame and from one another in time, and not the same view
    as any of them (`vision.same_view`), best quality first (sharpness times exposure). Empty
    for a static scene, however long the window.

    The view check runs only on frames that pass the time check, in quality order, and stops
    once n are found; a static scene checks every frame of the window, from the thumbnails
    made when each frame was scored.
    """
    lo = min(start, end - LOOK_BACK) - MIN_GAP
    window = [f for f in frames if lo <= f.t <= end + MIN_GAP]
    top = max((f.sharpness for f in window), default=0.0) or 1.0
    picked: list[FrameSnapshot] = []
    for f in sorted(window, key=lambda f: (f.sharpness / top) * (0.25 + 0.75 * f.exposure), reverse=True):
        if len(picked) == n:
            break
        if all(abs(f.t - other.t) >= min_gap for other in (best, *picked)) and \
                not any(same_frame_view(f, other) for other in (best, *picked)):
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
        first, zooms, moments = _Source("no image", None), [], []
    else:
        extra = max(1, k // 3)
        first = _Source("best frame", image, "", best.t)
        crops = [best.image[y0:y1, x0:x1] for x0, y0, x1, y1 in detail_boxes(best.image, extra)]
        zooms = _numbered([_Source("zoomed detail", fit_for_model(c, image_side), ZOOM_NOTE, best.t) for c in crops])
        found = other_moments(frames, start, end, best, extra) if k > 3 else []  # fewer agents never reach one
        moments = _numbered([_Source("another moment", fit_for_model(f.image, image_side), MOMENT_NOTE, f.t)
                             for f in found])

    plain, describe, uncertain = INSTRUCTIONS
    order = [(first, plain), *[(z, plain) for z in zooms[:1]], (first, describe), *[(m, plain) for m in moments[:1]],
             (first, uncertain)]
    # then the other instructions on the images already in, then further crops and moments
    others = [s for i in range(max(len(zooms), len(moments))) for s in (*zooms[i:i + 1], *moments[i:i + 1])]
    order += [(s, i) for s in others for i in INSTRUCTIONS]
    pairs: list[tuple[_Source, tuple[str, str]]] = []
    for s, instruction in order:
        if not any(s is t and instruction == j for t, j in pairs):
            pairs.append((s, instruction))
    views = [View("; ".join(p for p in (s.name, label) if p), s.image, s.note + text, s.frame_time)
             for s, (label, text) in pairs]
    return [views[i % len(views)] for i in range(k)]


def _numbered(sources: list[_Source]) -> list[_Source]:
    """Numbered when a kind repeats ("zoomed detail 1", "zoomed detail 2"), so the log tells the views apart."""
    if len(sources) < 2:
        return sources
    return [_Source(f"{s.name} {j}", s.image, s.note, s.frame_time) for j, s in enumerate(sources, 1)]

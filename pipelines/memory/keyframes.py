"""Keyframes for the visual memory: which camera frames are worth describing and keeping.

A frame becomes a keyframe when it comes at least `min_gap` seconds after the last one, is
neither too dark nor blown out, is sharp, and shows something the last few keyframes did not.
Each test is a pure function; `KeyframePicker` holds only the last keyframe's time, a bounded
deque of recent signatures and one of recent sharpness values, and checks the cheapest thing
first (the gap), so most camera frames cost nothing.

- Signature: a 32x32 colour thumbnail of the frame, lightly blurred: small motion, sensor
  noise and compression disappear at that size; a red thing swapped for a blue one of the
  same brightness does not. The channel order does not matter if it is the same every time.
- Novelty: the share of the view that changed against the closest recent keyframe, i.e. the
  fraction of thumbnail pixels whose colour moved by more than `CELL_DIFF` grey levels, at the
  best of the small shifts a wearer's head makes (up to 2 thumbnail pixels, about 6 % of the
  frame each way). Aligning first keeps a nod from looking like a new place; a share rather
  than a mean difference keeps one big change from drowning in an unchanged rest.
- Sharpness: variance of the Laplacian on a grey copy scaled to 320 px on its longest side (so
  the number means the same at any camera resolution), over the copy's own variance (so a
  low-contrast scene is not taken for a blurred one). Sharpness depends on what is in view
  (a soft flower 0.04, a creek 1.0), so no single floor separates blur from a plain scene: a
  frame is blurred when it falls below `relative_sharpness` of the sharpest frame of the same
  view in the second before it (head motion smears some frames of a view), or below the
  absolute `min_sharpness` floor. A view seen for the first time has nothing to be compared
  with, so it is "settling" until a second frame of it arrives: a keyframe is taken once the
  wearer's gaze rests, never from the first frame after a head turn.
- Exposure: mean brightness and the shares of crushed-black and blown-white pixels. A white
  page of text is mostly blown-white pixels and still worth keeping, so the shares only refuse
  a frame that is nearly all one or the other.

Measured on ../shared/media (4 clips, 16 stills; `python -m benchmarks.keyframe_thresholds`):
- novelty of the same view: handheld creek 0.5-1 s apart <= 0.08; synthetic head motion on
  the stills (3-5 % shift, 1-2 degrees, 3 % zoom) <= 0.17, p90 0.07; (8 %, 3 degrees, 5 %)
  <= 0.31, p90 0.11. Different scenes: >= 0.40 (stills, 120 pairs), >= 0.61 (clips). A thing
  put down covering 15 % of the view: 0.16. Threshold 0.2.
- sharpness of a steady frame over the sharpest of the second before it: >= 0.75 on every
  clip; Gaussian blur sigma 1 (at 640 px): <= 0.58; motion blur 9 px: p90 0.56; 15 px: p90
  0.46. Threshold 0.6.
"""
from __future__ import annotations

import itertools
from collections import Counter, deque
from dataclasses import dataclass

import cv2
import numpy as np

SIGNATURE_SIDE = 32  # px: the thumbnail a scene is compared by
SHIFT = 2  # thumbnail px: the head motion tolerated when comparing (2/32 of the frame each way)
CELL_DIFF = 24.0  # grey levels (0-255): a thumbnail pixel moving more than this counts as changed
SHARPNESS_SIDE = 320  # px: sharpness is measured at this size, whatever the camera gives
DARK, BRIGHT = 16, 240  # grey levels at or below / above which a pixel is crushed / blown
SHARPNESS_HISTORY = 64  # frames of recent sharpness kept (a second at most, at any frame rate)


@dataclass(frozen=True)
class KeyframeConfig:
    min_gap: float = 3.0  # s: at most one keyframe this often
    novelty: float = 0.2  # share of the view that must differ from every recent keyframe
    min_sharpness: float = 0.02  # absolute floor of the normalised Laplacian variance
    relative_sharpness: float = 0.6  # below this share of the same view's sharpest recent frame: smeared
    sharpness_window: float = 1.0  # s: how far back that sharpest frame is looked for
    min_brightness: float = 0.08  # mean grey (0-1) below which a frame is too dark
    max_brightness: float = 0.94  # mean grey (0-1) above which a frame is blown out
    max_dark: float = 0.9  # share of crushed pixels above which a frame is too dark
    max_bright: float = 0.9  # share of blown pixels above which a frame is blown out
    recent: int = 8  # keyframe signatures kept to compare against


@dataclass(frozen=True)
class Exposure:
    mean: float  # mean grey, 0-1
    dark: float  # share of pixels at or below DARK
    bright: float  # share of pixels above BRIGHT


# --- pure functions ----------------------------------------------------------------------------
def grey(image: np.ndarray, side: int = SHARPNESS_SIDE) -> np.ndarray:
    """A grey copy with its longest side at most `side` (never upscaled)."""
    h, w = image.shape[:2]
    g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    scale = side / max(h, w)
    if scale < 1:
        g = cv2.resize(g, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return g


def signature(image: np.ndarray) -> np.ndarray:
    """(32, 32, 3) float32 thumbnail: what is compared to tell scenes apart."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    small = cv2.resize(image, (SIGNATURE_SIDE, SIGNATURE_SIDE), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small, (3, 3), 0).astype(np.float32)


def sharpness(image: np.ndarray, grey_copy: np.ndarray | None = None) -> float:
    """Variance of the Laplacian over the grey copy's own variance: roughly 0.04-4 for a sharp
    frame, towards 0 as it blurs; comparable across resolutions and contrasts."""
    g = (grey(image) if grey_copy is None else grey_copy).astype(np.float64)
    return float(cv2.Laplacian(g, cv2.CV_64F).var() / (g.var() + 25.0))


def exposure(image: np.ndarray, grey_copy: np.ndarray | None = None) -> Exposure:
    g = grey(image) if grey_copy is None else grey_copy
    return Exposure(float(g.mean()) / 255.0, float((g <= DARK).mean()), float((g > BRIGHT).mean()))


def difference(a: np.ndarray, b: np.ndarray, shift: int = SHIFT, cell: float = CELL_DIFF) -> float:
    """Share (0-1) of the view that changed from signature `a` to `b`, at the best small shift."""
    n, m = a.shape[:2]
    best = 1.0
    for dx, dy in itertools.product(range(-shift, shift + 1), repeat=2):
        aa = a[max(0, dy):n + min(0, dy), max(0, dx):m + min(0, dx)]
        bb = b[max(0, -dy):n + min(0, -dy), max(0, -dx):m + min(0, -dx)]
        best = min(best, float((np.abs(aa - bb).mean(axis=2) > cell).mean()))
    return best


def novelty(sig: np.ndarray, recent) -> float:
    """How new `sig` is: its difference from the closest recent keyframe (1.0 with none)."""
    return min((difference(sig, r) for r in recent), default=1.0)


def too_soon(t: float, last_t: float | None, min_gap: float) -> bool:
    return last_t is not None and t - last_t < min_gap


def exposure_fault(expo: Exposure, config: KeyframeConfig) -> str:
    """"" for a usable frame, else why it is not: "too dark" or "blown out"."""
    if expo.mean < config.min_brightness or expo.dark > config.max_dark:
        return "too dark"
    if expo.mean > config.max_brightness or expo.bright > config.max_bright:
        return "blown out"
    return ""


def blurred(sharp: float, reference: float | None, config: KeyframeConfig) -> bool:
    """Below the absolute floor, or well below the sharpest frame of the moment before (`reference`)."""
    return sharp < config.min_sharpness or (reference is not None and sharp < config.relative_sharpness * reference)


def decide(t: float, sig: np.ndarray, sharp: float, expo: Exposure, last_t: float | None, recent,
           config: KeyframeConfig, reference: float | None = None, settled: bool = True) -> tuple[bool, str]:
    """(keep?, reason): reasons are "new scene" (kept), "too soon", "too dark", "blown out",
    "settling", "blurred", "same scene"; checked in that order, cheapest and most common first.
    `reference`: the sharpest earlier frame of this view (None: the floor alone); `settled`: False
    when this view has just come into sight (no earlier frame of it to judge its sharpness by)."""
    if too_soon(t, last_t, config.min_gap):
        return False, "too soon"
    fault = exposure_fault(expo, config)
    if fault:
        return False, fault
    if not settled:
        return False, "settling"
    if blurred(sharp, reference, config):
        return False, "blurred"
    if novelty(sig, recent) < config.novelty:
        return False, "same scene"
    return True, "new scene"


def reference_sharpness(history, t: float, sig: np.ndarray, config: KeyframeConfig) -> float | None:
    """The sharpest earlier frame of the same view (its signature within `novelty` of `sig`, unshifted)
    among the (time, sharpness, signature) triples of the `sharpness_window` before `t`; None when
    there is none: the view has just come into sight."""
    return max((s for ts, s, g in history
                if t - config.sharpness_window <= ts < t and difference(g, sig, shift=0) < config.novelty), default=None)


# --- the small stateful part --------------------------------------------------------------------
class KeyframePicker:
    """`offer(t, image)` for every camera frame; True for the ones to describe and keep."""

    def __init__(self, config: KeyframeConfig | None = None):
        self.config = config or KeyframeConfig()
        self.recent: deque[np.ndarray] = deque(maxlen=max(1, self.config.recent))
        # (t, sharpness, signature) of the frames of the last second before a keyframe may be taken
        self.history: deque[tuple[float, float, np.ndarray]] = deque(maxlen=SHARPNESS_HISTORY)
        self.last_t: float | None = None
        self.counts: Counter[str] = Counter()  # reason -> frames; as many keys as reasons, so bounded

    def offer(self, t: float, image: np.ndarray) -> tuple[bool, str]:
        c = self.config
        if too_soon(t + c.sharpness_window, self.last_t, c.min_gap):  # most frames stop here, before any pixel work
            keep, reason = False, "too soon"
        else:
            g = grey(image)
            sig, sharp = signature(image), sharpness(image, g)
            reference = reference_sharpness(self.history, t, sig, c)
            self.history.append((t, sharp, sig))
            keep, reason = decide(t, sig, sharp, exposure(image, g), self.last_t, self.recent, c, reference,
                                  settled=reference is not None)
            if keep:
                self.recent.append(sig)
                self.last_t = t
        self.counts[reason] += 1
        return keep, reason

"""Seeing: a bounded ring of timestamped frames, frame scores and frame picking.

Scoring and picking are pure functions so they test without a camera. Sharpness is the
variance of the Laplacian (blurry frames from head motion score low); exposure rewards
mid-grey brightness and penalises clipped pixels.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import replace

import cv2
import numpy as np

from core.messages import FrameSnapshot, VideoFrame

RING_SIDE = 640  # px: the frames the ring keeps for the model, speculation and memory
CAMERA_SIDE = 1280  # px: what the app asks of the camera and the clip (reading found 16 of 27 key strings
#                     on real photos at 1280 against 14 at 640: benchmarks/ocr.py)
FULL_KEEP, FULL_EVERY = 16, 0.1  # newest frames kept at CAMERA_SIDE: 1.6 s of them, ~44 MB at 1280x720
_SCORE_SIDE = 256  # score on a small copy: cheap, and comparable across resolutions


def sharpness(image_bgr: np.ndarray, grey: np.ndarray | None = None) -> float:
    grey = _small_grey(image_bgr) if grey is None else grey
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def exposure(image_bgr: np.ndarray, grey: np.ndarray | None = None) -> float:
    """1.0 for a well-exposed frame, towards 0 for black, white or heavily clipped."""
    grey = _small_grey(image_bgr) if grey is None else grey
    mean = float(grey.mean()) / 255.0
    clipped = float(((grey < 8) | (grey > 247)).mean())
    return max(0.0, 1.0 - 2.0 * abs(mean - 0.5)) * (1.0 - clipped)


def _small(image_bgr: np.ndarray) -> np.ndarray:
    h, w = image_bgr.shape[:2]
    scale = _SCORE_SIDE / max(h, w)
    if scale < 1:
        image_bgr = cv2.resize(image_bgr, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    return image_bgr


def _grey(small: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small


def _small_grey(image_bgr: np.ndarray) -> np.ndarray:
    return _grey(_small(image_bgr))


def score(frame: VideoFrame) -> FrameSnapshot:
    # One small copy serves every score: each camera frame is scored, so an idle session pays for it.
    small = _small(frame.image)
    grey = _grey(small)
    return FrameSnapshot(frame.t, frame.image, sharpness(frame.image, grey), exposure(frame.image, grey),
                         _thumb_of_small(small))


def pick_frame(
    candidates: list[FrameSnapshot], start: float, end: float, *, lead: float = 0.3, recency_weight: float = 0.5
) -> FrameSnapshot | None:
    """Best frame for a question spoken from `start` to `end`.

    Prefers the moment just before speech ended (the wearer is usually looking at the
    thing as they finish asking): frames are scored by sharpness times exposure, with a
    bonus that grows towards `end - lead`. Falls back to the nearest frame before `end`
    when none lies in the window (a camera that lags), and None when there is none.
    """
    window = [c for c in candidates if start - lead <= c.t <= end + lead]
    if not window:
        before = [c for c in candidates if c.t <= end + lead]
        return max(before, key=lambda c: c.t) if before else None
    top_sharp = max(c.sharpness for c in window) or 1.0
    span = max(end - start, 1e-3)

    def value(c: FrameSnapshot) -> float:
        closeness = 1.0 - min(1.0, abs((end - lead) - c.t) / span)
        quality = (c.sharpness / top_sharp) * (0.25 + 0.75 * c.exposure)
        return quality * (1.0 - recency_weight) + quality * recency_weight * closeness

    return max(window, key=value)


SAME_VIEW_DIFF = 8.0  # mean absolute difference (0-255) of 32 px colour thumbnails below which two frames show one view


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A tiny blurred copy: what stays when small motion, noise and compression are gone.
    In colour, so a red thing swapped for a blue one of the same brightness still counts."""
    return _thumb_of_small(_small(image))


def _thumb_of_small(small: np.ndarray, side: int = 32) -> np.ndarray:
    # from the 256 px scoring copy, so that a thumbnail made when scoring equals one made later
    return cv2.GaussianBlur(cv2.resize(small, (side, side), interpolation=cv2.INTER_AREA), (3, 3), 0).astype(np.float32)


def same_view(a: np.ndarray, b: np.ndarray, max_diff: float = SAME_VIEW_DIFF) -> bool:
    """Whether two frames show the same view (a small move in the scene, sensor noise) rather
    than a different one (the head turned, the scene changed). Speculative work done on one
    frame is kept for the other only then; Contemplating skips a "moment" that adds nothing."""
    if a is b:
        return True
    return float(np.abs(thumbnail(a) - thumbnail(b)).mean()) <= max_diff


def same_frame_view(a: FrameSnapshot, b: FrameSnapshot, max_diff: float = SAME_VIEW_DIFF) -> bool:
    """`same_view` for scored frames, from the thumbnails made when they were scored."""
    if a is b:
        return True
    ta = a.thumb if a.thumb is not None else thumbnail(a.image)
    tb = b.thumb if b.thumb is not None else thumbnail(b.image)
    return float(np.abs(ta - tb).mean()) <= max_diff


def fit_for_model(image_bgr: np.ndarray, max_side: int = 512) -> np.ndarray:
    """RGB copy with the longest side at most `max_side` (what the vision encoder sees)."""
    h, w = image_bgr.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1:
        image_bgr = cv2.resize(image_bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)


class FrameRing:
    """Bounded, thread-safe ring of scored frames: the camera writes, a turn reads.

    Bounded by count so memory is fixed whatever the clip's length; the oldest frame
    is dropped when full (the wearer asks about now, not about a minute ago).

    Frames are kept at most RING_SIDE px (what the model, speculation and memory use). A
    camera that gives more (the app opens it at CAMERA_SIDE) has its newest frames also kept
    as they came, FULL_KEEP of them at least FULL_EVERY s apart: reading small print and
    barcodes needs those pixels, and 150 frames at 1280 px would take 400 MB.
    """

    def __init__(self, capacity: int = 120, every: float = 0.0):
        self._frames: deque[FrameSnapshot] = deque(maxlen=capacity)
        self._full: deque[tuple[float, np.ndarray]] = deque(maxlen=FULL_KEEP)
        self._lock = threading.Lock()
        self._every = every  # keep at most one frame per `every` seconds (0: all)
        self.dropped = 0

    def add(self, frame: VideoFrame) -> None:
        with self._lock:
            if self._frames and frame.t - self._frames[-1].t < self._every:
                return
            if len(self._frames) == self._frames.maxlen:
                self.dropped += 1
        full = None
        h, w = frame.image.shape[:2]
        if max(h, w) > RING_SIDE:  # outside the lock: readers never wait on OpenCV
            full, scale = frame.image, RING_SIDE / max(h, w)
            small = cv2.resize(full, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
            frame = VideoFrame(frame.t, small)
        snap = score(frame)
        with self._lock:
            self._frames.append(snap)
            if full is not None and (not self._full or frame.t - self._full[-1][0] >= FULL_EVERY):
                self._full.append((frame.t, full))

    def snapshot(self) -> list[FrameSnapshot]:
        with self._lock:
            return list(self._frames)

    def detailed(self) -> list[FrameSnapshot]:
        """The ring, its newest frames at the camera's own resolution (skills read text and codes)."""
        with self._lock:
            frames, full = list(self._frames), dict(self._full)
        return [replace(f, image=full[f.t]) if f.t in full else f for f in frames]

    def latest(self) -> FrameSnapshot | None:
        with self._lock:
            return self._frames[-1] if self._frames else None

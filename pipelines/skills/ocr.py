"""Reading text in a camera frame: PP-OCRv4 (rapidocr-onnxruntime), reading order, readability.

- `load_reader()` builds the one OCR engine of the app (the reading skill and memory's keyframe
  text both use it), or gives None when rapidocr-onnxruntime is not installed. Its PP-OCRv4
  detection, direction and recognition models ship inside the wheel: nothing is downloaded.
- `Reader.read(image_bgr)` gives the confident `Line`s in reading order. The frame's longest side
  is cut to `max_side` (1280) px first. Detection keeps rapidocr's default, which scales the
  shorter side to 736 px (a 1280x720 frame is detected at 1308x736, and so is a 640x360 one:
  enlarging a small frame for detection found 14 of 27 key strings instead of 9); recognition
  reads crops of the frame as given. A 1920x1080 frame read whole is detected at full size: 17
  of 27 key strings against 16 at 1280, for 3 to 4 times the time (1.9 s against 0.5 s on the
  project's 2-core machine, shared); at 960 the crumpled receipt was lost, 14 of 27, for little
  time saved (0.37 s), since detection still runs at 736 px (python -m benchmarks.ocr).
- `trusted(lines, problem)` is pure: the lines worth reading out. Blur makes PP-OCR invent text
  with confidence, so a lone character and anything on a blurred frame must score higher.
- `reading_order(lines)` is pure: lines top to bottom, left to right, after undoing the page's
  tilt; two columns of running text are read one after the other, while a table (a receipt, a
  menu: names on the left, prices on the right, row by row) is read row by row.
- `readable(image_bgr)` is pure: "" when the frame could be read, "dark" when there is too little
  light for any contrast, "blurred" when no part of it has sharp edges. The skill combines it
  with what OCR found (`verdict` in pipelines/skills/reading.py).
"""
from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass
from statistics import median
from typing import Sequence

import cv2
import numpy as np

MAX_SIDE = 1280  # px: the frame's longest side for OCR (the module's docstring says why)
MIN_SCORE = 0.5  # a line recognised with less confidence is not read out
WEAK_SCORE = 0.2  # lines between this and MIN_SCORE: text is there but could not be made out
# Blur makes the recogniser invent text with confidence: the lines of a blurred page read as "三" (0.93),
# a smeared sign as "Pethestsincaseoffe" (0.71), while its still legible lines score 0.9 and more.
SHORT_SCORE = 0.9  # a line of one letter or digit is kept only above this
BLURRED_SCORE = 0.85  # on a frame readable() calls blurred, a line is kept only above this, and with 3+ letters

Point = tuple[float, float]


@dataclass(frozen=True)
class Line:
    text: str
    box: tuple[Point, Point, Point, Point]  # corners in the image's pixels: top-left, top-right, bottom-right, -left
    score: float  # the recogniser's confidence, 0-1


class Reader:
    """rapidocr's engine behind a lock (memory's describer and the reading skill may share it)."""

    def __init__(self, engine, max_side: int = MAX_SIDE, min_score: float = MIN_SCORE):
        self.engine, self.max_side, self.min_score = engine, max_side, min_score
        self._lock = threading.Lock()

    def read(self, image_bgr: np.ndarray) -> list[Line]:
        """The lines read with confidence, in reading order, boxes in `image_bgr`'s pixels."""
        return trusted(self.read_all(image_bgr), min_score=self.min_score)

    def read_all(self, image_bgr: np.ndarray) -> list[Line]:
        """Every line the engine returns (down to WEAK_SCORE), in reading order."""
        image = np.ascontiguousarray(image_bgr)
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        h, w = image.shape[:2]
        if h < 8 or w < 8:
            return []
        scale = min(1.0, self.max_side / max(h, w))
        if scale < 1.0:
            image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        with self._lock:
            result, _ = self.engine(image)
        lines = []
        for box, text, score in result or ():
            text = " ".join(str(text).split())
            if text:
                corners = tuple((float(x) / scale, float(y) / scale) for x, y in box[:4])
                lines.append(Line(text, corners, float(score)))
        return reading_order(lines)


@functools.lru_cache(maxsize=4)
def load_reader(max_side: int = MAX_SIDE, threads: int | None = None) -> Reader | None:
    """The app's OCR reader, or None when rapidocr-onnxruntime is not installed (or its runtime
    does not load). `threads`: onnxruntime's threads per model (None: its default, every core).
    One per process and setting: memory's describer and the reading skill share it (its lock
    serialises them), rather than hold two copies of the models."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except Exception:  # noqa: BLE001 - not installed, or onnxruntime does not load: no reading
        return None
    options = {"text_score": WEAK_SCORE}  # weak lines too: they tell "blurred" from "no text" (read() drops them)
    if threads:
        options["intra_op_num_threads"] = threads
    return Reader(RapidOCR(**options), max_side=max_side)


def trusted(lines: Sequence[Line], problem: str = "", min_score: float = MIN_SCORE) -> list[Line]:
    """The lines worth reading out: confident ones, stricter for a lone character and on a frame
    that `readable` called blurred (`problem`), where the recogniser invents text."""
    def alnum(text: str) -> int:
        return sum(ch.isalnum() for ch in text)

    keep = [line for line in lines if line.score >= min_score and (alnum(line.text) >= 2 or line.score >= SHORT_SCORE)]
    if problem == "blurred":
        keep = [line for line in keep if line.score >= BLURRED_SCORE and alnum(line.text) >= 3]
    return keep


def text_of(lines: Sequence[Line]) -> str:
    """The lines' text in one string, in the order given."""
    return " ".join(line.text for line in lines).strip()


# --- reading order: pure ---------------------------------------------------------------------------
COLUMN_CHARS = 16  # two sides whose lines run this long (median) are running text, not a table's cells


def reading_order(lines: Sequence[Line]) -> list[Line]:
    """`lines` as a person reads them: top to bottom, left to right.

    The page's tilt (the length-weighted median angle of the boxes' top edges) is undone first,
    so the lines of a skewed page still fall into rows. Then a recursive XY cut: a clear vertical
    gutter splits columns (read left column, then right) when both sides hold several lines of
    running text, or lines that do not line up in rows; otherwise the widest horizontal gap splits
    the group top from bottom; a group with neither is read row by row, cells left to right."""
    lines = list(lines)
    if len(lines) < 2:
        return lines
    angle = _tilt(lines)
    c, s = math.cos(-angle), math.sin(-angle)
    rects = []
    for line in lines:
        xs = [x * c - y * s for x, y in line.box]
        ys = [x * s + y * c for x, y in line.box]
        rects.append((min(xs), min(ys), max(xs), max(ys)))
    sizes = [len(line.text) for line in lines]  # characters, not words: PP-OCR often drops the spaces
    unit = median(r[3] - r[1] for r in rects) or 1.0  # a line's height: gutters are measured in it
    return [lines[i] for i in _cut(list(range(len(lines))), rects, sizes, unit)]


def _tilt(lines: Sequence[Line]) -> float:
    """The median angle (radians, weighted by length) of the boxes' top edges, within +-45 degrees."""
    angles = []
    for line in lines:
        (x0, y0), (x1, y1) = line.box[0], line.box[1]
        length = math.hypot(x1 - x0, y1 - y0)
        if length > 0:
            angles.append((max(-math.pi / 4, min(math.pi / 4, math.atan2(y1 - y0, x1 - x0))), length))
    if not angles:
        return 0.0
    angles.sort()
    half, run = sum(w for _, w in angles) / 2, 0.0
    for a, w in angles:
        run += w
        if run >= half:
            return a
    return 0.0


def _widest_gap(idx: list[int], rects, lo: int, hi: int) -> tuple[float, float]:
    """(width, position) of the widest empty band between the boxes along one axis (lo/hi: 0/2
    for x, 1/3 for y); width <= 0 when every box overlaps the next."""
    spans = sorted((rects[i][lo], rects[i][hi]) for i in idx)
    best, at, reach = 0.0, 0.0, spans[0][1]
    for start, end in spans[1:]:
        if start - reach > best:
            best, at = start - reach, (start + reach) / 2
        reach = max(reach, end)
    return best, at


def _aligned(a: list[int], b: list[int], rects) -> bool:
    """Whether most lines of the smaller side have a line on the other side in the same row."""
    small, big = (a, b) if len(a) <= len(b) else (b, a)

    def centre(i):
        return (rects[i][1] + rects[i][3]) / 2

    def height(i):
        return rects[i][3] - rects[i][1]

    paired = sum(any(abs(centre(i) - centre(j)) <= 0.5 * max(height(i), height(j)) for j in big) for i in small)
    return paired >= 0.5 * len(small)


def _columns(left: list[int], right: list[int], rects, sizes) -> bool:
    if len(left) < 2 or len(right) < 2:
        return False
    running = min(median(sizes[i] for i in left), median(sizes[i] for i in right)) >= COLUMN_CHARS
    return running or not _aligned(left, right, rects)


def _cut(idx: list[int], rects, sizes, unit: float) -> list[int]:
    if len(idx) == 1:
        return idx
    gap, at = _widest_gap(idx, rects, 0, 2)
    if gap >= 0.8 * unit:
        left = [i for i in idx if rects[i][2] <= at]
        right = [i for i in idx if rects[i][2] > at]
        if _columns(left, right, rects, sizes):
            return _cut(left, rects, sizes, unit) + _cut(right, rects, sizes, unit)
    gap, at = _widest_gap(idx, rects, 1, 3)
    if gap > 0:
        top = [i for i in idx if rects[i][3] <= at]
        bottom = [i for i in idx if rects[i][3] > at]
        return _cut(top, rects, sizes, unit) + _cut(bottom, rects, sizes, unit)
    return _rows(idx, rects)


def _rows(idx: list[int], rects) -> list[int]:
    """Lines that share a row (overlap by half the smaller height) left to right, rows top to bottom."""
    rows: list[list[int]] = []
    for i in sorted(idx, key=lambda i: (rects[i][1] + rects[i][3]) / 2):
        top, bottom = rects[i][1], rects[i][3]
        for row in rows:
            first = rects[row[0]]
            overlap = min(bottom, first[3]) - max(top, first[1])
            if overlap >= 0.5 * min(bottom - top, first[3] - first[1]):
                row.append(i)
                break
        else:
            rows.append([i])
    return [i for row in rows for i in sorted(row, key=lambda i: rects[i][0])]


# --- readability: pure -----------------------------------------------------------------------------
READ_SIDE = 640  # px: the frame is judged on a copy this size, so thresholds do not depend on the camera
DARK_TOP = 60  # grey level: when even the brightest percent of the view is darker, it is too dark to read
DIM_MEAN, DIM_SPREAD = 80, 40  # ... or a dim view (mean below) with no contrast (1st to 99th percentile below)
SHARP_EDGES = 0.15  # the sharpest tiles' edge strength relative to their contrast, below which it is blurred
TILES = 8  # the copy is judged in TILES x TILES tiles: text may fill only part of the view
FLAT = 8.0  # a tile whose mean deviation from its mean is below this (grey levels) is flat: a wall, the sky


def readable(image_bgr: np.ndarray) -> str:
    """"" when the frame may be read, "dark" when there is too little light, "blurred" when the
    parts of it that have any contrast have no sharp edges. A flat, well-lit view (a blank wall)
    is neither: there is just nothing to read. SHARP_EDGES was measured on ../shared/media: the
    photos scored 0.46 to 3.1 (QR codes blown up from 240 px: 0.12 to 0.18), frames of the clips
    0.21 (soft old film) to 1.97, the photos blurred with sigma 3 at 640 px 0.05 to 0.15."""
    grey = _grey_copy(image_bgr)
    lo, hi = np.percentile(grey, (1, 99))
    if hi < DARK_TOP or (hi - lo < DIM_SPREAD and float(grey.mean()) < DIM_MEAN):
        return "dark"
    ratio = edge_ratio(grey)
    return "blurred" if ratio is not None and ratio < SHARP_EDGES else ""


def edge_ratio(grey: np.ndarray) -> float | None:
    """How sharp the frame's sharpest parts are: per tile, the mean absolute Laplacian over the mean
    absolute deviation (it falls as edges smear, whatever the lighting), the median of the top tenth
    of tiles (text may fill only part of the view). None when every tile is flat."""
    h, w = grey.shape
    lap = np.abs(cv2.Laplacian(grey.astype(np.float32), cv2.CV_32F, ksize=1))
    scores = []
    for ty in range(TILES):
        for tx in range(TILES):
            ys, xs = slice(ty * h // TILES, (ty + 1) * h // TILES), slice(tx * w // TILES, (tx + 1) * w // TILES)
            tile = grey[ys, xs].astype(np.float32)
            spread = float(np.abs(tile - tile.mean()).mean())
            if spread >= FLAT:
                scores.append(float(lap[ys, xs].mean()) / spread)
    if not scores:
        return None
    scores.sort(reverse=True)
    return float(median(scores[:max(1, len(scores) // 10)]))


def _grey_copy(image_bgr: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr
    h, w = grey.shape[:2]
    scale = READ_SIDE / max(h, w)
    if scale < 1:
        grey = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return grey

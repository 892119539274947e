"""What the glasses' display shows: a heads-up overlay drawn over the camera view.

The replay writes an annotated copy of a clip so a person can see, frame by frame, what
the wearer would have seen: the capture light, the assistant's status, what it heard and
what it answered, and the picture a memory answer rests on ("seen 4 min ago", top right,
under the light). Everything here is a pure function of (image, DisplayState) so it tests
without a pipeline, and `state_at` turns the control loop's timeline into a state per frame.

Sizes derive from the image's shorter side, so the same layout reads on 320x240 and on
1280x720. OpenCV's Hershey fonts draw only ASCII (anything else becomes '?'), so text is
transliterated first (`ascii_safe`).
"""
from __future__ import annotations

import bisect
import functools
import unicodedata
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from core.messages import DisplayState

__all__ = ["draw_overlay", "wrap_text", "state_at", "light_pixel_box", "evidence_box", "ascii_safe"]

FONT = cv2.FONT_HERSHEY_SIMPLEX
MAX_ANSWER_LINES = 4
MAX_CAPTION_LINES = 2
# BGR colours
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
PANEL = (20, 20, 20)
LIGHT_RED = (0, 0, 235)
LIGHT_OFF = (90, 90, 90)
BANNER = (0, 220, 255)  # yellow
ANSWER = (255, 230, 140)  # pale cyan, distinct from the white caption
NOTE = (200, 200, 200)
EVIDENCE_SIDE = 0.32  # the evidence thumbnail's box, as a share of the image's shorter side
EVIDENCE_MIN = 24  # px: with less room than this (a tiny display full of text), it is not drawn
STATUS_COLOURS = {
    "idle": (170, 170, 170),
    "listening": (120, 230, 120),
    "thinking": (80, 200, 255),
    "speaking": (255, 200, 90),
}

# Typographic characters that NFKD leaves alone but have an obvious ASCII spelling.
_PUNCT = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"', "\u2039": "'", "\u203a": "'",
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-", "\u2022": "*", "\u00b7": "*", "\u00d7": "x", "\u00b0": " deg",
    "\u00df": "ss", "\u00e6": "ae", "\u00c6": "AE", "\u0153": "oe", "\u0152": "OE",
    "\u00f8": "o", "\u00d8": "O", "\u0142": "l", "\u0141": "L", "\u00f0": "d", "\u00fe": "th",
})


def ascii_safe(text: str) -> str:
    """Transliterate to printable ASCII: curly quotes and dashes to plain ones, accents
    stripped (NFKD), anything else dropped; cv2.putText would draw it as '?'."""
    text = unicodedata.normalize("NFKD", text.translate(_PUNCT))
    text = text.encode("ascii", "ignore").decode("ascii")
    return "".join(c if c.isprintable() else " " for c in text)


def wrap_text(text: str, max_chars: int) -> list[str]:
    """Greedy word wrap to lines of at most `max_chars`; any whitespace separates words.
    A word is split only when it alone is longer than a line. Empty text -> []."""
    width = max(1, int(max_chars))
    lines: list[str] = []
    line = ""
    for word in text.split():
        while len(word) > width:  # a word wider than a line: hard-split it
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:width])
            word = word[width:]
        if not word:
            continue
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= width:
            line += " " + word
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


def state_at(timeline: Sequence[tuple[float, DisplayState]], t: float) -> DisplayState:
    """The state shown at time `t`: the last entry whose time <= t (timeline sorted by
    time; of equal times the later entry wins); DisplayState() before the first."""
    i = bisect.bisect_right(timeline, t, key=lambda entry: entry[0])
    return timeline[i - 1][1] if i else DisplayState()


@dataclass(frozen=True)
class _Metrics:
    """Sizes for one image shape; everything scales with the shorter side."""

    scale: float  # cv2 font scale of the main text
    thick: int
    margin: int
    pad: int
    line_h: int  # baseline-to-baseline distance of main text
    text_h: int  # cap height of main text

    @staticmethod
    def of(shape) -> "_Metrics":
        return _metrics(int(shape[0]), int(shape[1]))

    @property
    def bar_h(self) -> int:
        """Height of a one-line box (banner strip, status box)."""
        return self.line_h + self.pad


@functools.lru_cache(maxsize=16)
def _metrics(h: int, w: int) -> _Metrics:
    """Cached per size: a replay draws thousands of frames of one size."""
    scale = max(0.3, 0.6 * min(h, w) / 360)
    thick = max(1, round(scale * 1.7))
    (_, text_h), base = cv2.getTextSize("Ag", FONT, scale, thick)
    return _Metrics(
        scale=scale,
        thick=thick,
        margin=max(4, round(min(h, w) * 0.025)),
        pad=max(3, round(text_h * 0.45)),
        line_h=round((text_h + base) * 1.35),
        text_h=text_h,
    )


def light_pixel_box(shape) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), exclusive end, of the square inscribed in the indicator light's
    filled disc: every pixel in it is the light's red when state.light is on."""
    cx, cy, r = _light_circle(shape)
    half = max(1, int(r * 0.6))
    return cx - half, cy - half, cx + half + 1, cy + half + 1


def _light_circle(shape) -> tuple[int, int, int]:
    """Centre and radius of the light: top-right corner, inside the banner strip's height
    so a banner never hides it; depends on the shape only."""
    h, w = shape[:2]
    m = _Metrics.of(shape)
    r = max(4, round(m.bar_h * 0.38))
    return w - m.margin - r, m.bar_h // 2 + max(1, m.margin // 3), r


def evidence_box(shape, bottom: int | None = None, banner: bool = False) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), exclusive end, of the square the evidence thumbnail is fitted into: the
    right edge, under the light (and the banner), above the label and `bottom` (the top of the
    caption and answer boxes; the image's foot when None). None when there is too little room."""
    h, w = shape[:2]
    m = _Metrics.of(shape)
    cx, cy, r = _light_circle(shape)
    top = cy + r + m.margin
    if banner:
        top = max(top, m.bar_h + 2 * (m.margin // 3) + m.margin // 2)
    bottom = h - m.margin if bottom is None else bottom
    label_h = round(m.line_h * 0.7) + m.pad + 2 * max(1, m.thick)  # the label, the frame, a gap
    side = min(round(EVIDENCE_SIDE * min(h, w)), bottom - label_h - top, w // 2)
    if side < EVIDENCE_MIN:
        return None
    x1 = w - m.margin
    return x1 - side, top, x1, top + side


def _draw_evidence(img: np.ndarray, evidence, bottom: int, banner: bool, m: "_Metrics") -> None:
    """The thumbnail a memory answer rests on, framed, fitted into evidence_box (aspect kept, pinned
    to its top-right), with its label ("seen 4 min ago") under it."""
    box = evidence_box(img.shape, bottom, banner)
    if box is None:
        return
    x0, y0, x1, y1 = box
    side = x1 - x0
    small = 0.7  # the label's size, as the notes'
    fs, th = m.scale * small, max(1, round(m.thick * small))
    thumb = evidence.image
    if thumb is not None and getattr(thumb, "ndim", 0) == 3 and thumb.size:
        tall, wide = thumb.shape[:2]
        scale = side / max(tall, wide)
        nw, nh = max(1, round(wide * scale)), max(1, round(tall * scale))
        fitted = cv2.resize(np.ascontiguousarray(thumb[..., :3], dtype=np.uint8), (nw, nh),
                            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        x0, y1 = x1 - nw, y0 + nh
        img[y0:y1, x0:x1] = fitted
    else:  # an entry kept without a picture (a person, no face found): say so in the box
        _panel(img, x0, y0, x1, y1, alpha=0.8)
        _text(img, _fit("no picture", side - 2 * m.pad, fs, th), x0 + m.pad, (y0 + y1) // 2, m, NOTE, small)
    frame = max(1, m.thick)
    cv2.rectangle(img, (x0 - frame, y0 - frame), (x1 + frame - 1, y1 + frame - 1), WHITE, frame, cv2.LINE_AA)
    label = _fit(ascii_safe(evidence.label), max(side, img.shape[1] // 3), fs, th)
    if label:
        label_w = cv2.getTextSize(label, FONT, fs, th)[0][0]
        note_h = round(m.line_h * small)
        top = y1 + frame + 1
        _panel(img, x1 - label_w - 2 * m.pad, top, x1, top + note_h + m.pad // 2, alpha=0.6)
        _text(img, label, x1 - label_w - m.pad, top + note_h - m.pad // 3, m, NOTE, small)


BADGE_SCALE = 0.6  # the badge's text, as a share of the main text's size


def _badge_width(text: str, m: "_Metrics") -> int:
    fs, th = m.scale * BADGE_SCALE, max(1, round(m.thick * BADGE_SCALE))
    return cv2.getTextSize(text, FONT, fs, th)[0][0] + 2 * m.pad


def _draw_badge(img: np.ndarray, text: str, right: int, cy: int, m: "_Metrics") -> None:
    """A small boxed note whose right edge is `right`, centred on the light's row."""
    fs, th = m.scale * BADGE_SCALE, max(1, round(m.thick * BADGE_SCALE))
    text_h = cv2.getTextSize(text, FONT, fs, th)[0][1]
    x0 = max(0, right - _badge_width(text, m))
    _panel(img, x0, cy - text_h // 2 - m.pad // 2, right, cy + text_h // 2 + m.pad // 2 + 1, alpha=0.7)
    _text(img, text, x0 + m.pad, cy + text_h // 2, m, WHITE, BADGE_SCALE)


def _panel(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, colour=PANEL, alpha=0.6) -> None:
    """Blend a translucent rectangle into img in place (only the ROI is touched)."""
    h, w = img.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        return
    roi = img[y0:y1, x0:x1]
    roi[:] = (roi.astype(np.float32) * (1 - alpha) + np.float32(colour) * alpha).astype(np.uint8)


def _text(img, s: str, x: int, y: int, m: _Metrics, colour, scale: float = 1.0) -> int:
    """Draw one line with its baseline at y; returns the x just after it."""
    fs, th = m.scale * scale, max(1, round(m.thick * scale))
    cv2.putText(img, s, (x, y), FONT, fs, colour, th, cv2.LINE_AA)
    return x + cv2.getTextSize(s, FONT, fs, th)[0][0]


@functools.lru_cache(maxsize=256)
def _wrap_to_px(text: str, width_px: int, scale: float, thick: int, max_lines: int) -> tuple[str, ...]:
    """wrap_text with the widest line count that fits `width_px` (the font is proportional,
    so start from the typical character width and narrow until every line fits); keeps the
    last `max_lines`. Cached: the same caption is drawn on many consecutive frames."""
    typical = cv2.getTextSize("That looks like a peace lily.", FONT, scale, thick)[0][0] / 29
    n = max(4, int(width_px / typical) + 2)
    while True:
        lines = wrap_text(text, n)
        if n <= 4 or all(cv2.getTextSize(ln, FONT, scale, thick)[0][0] <= width_px for ln in lines):
            return tuple(lines[-max_lines:])
        n -= 1


@functools.lru_cache(maxsize=64)
def _fit(text: str, width_px: int, scale: float, thick: int) -> str:
    """`text`, cut with '...' so that it is at most `width_px` wide."""
    cut = text
    while cut and cv2.getTextSize(cut if cut == text else cut + "...", FONT, scale, thick)[0][0] > width_px:
        cut = cut[:-1]
    return cut if cut == text else cut.rstrip() + "..."


def _text_block(img, lines: list[str], colours: list, y_bottom: int, m: _Metrics) -> int:
    """A translucent box, full width less margins, whose bottom is y_bottom; returns its top."""
    h, w = img.shape[:2]
    top = y_bottom - len(lines) * m.line_h - m.pad
    _panel(img, m.margin, top, w - m.margin, y_bottom)
    y = top + m.pad // 2 + m.text_h + (m.line_h - m.text_h) // 3
    for line, colour in zip(lines, colours):
        _text(img, line, m.margin + m.pad, y, m, colour)
        y += m.line_h
    return top


def draw_overlay(image_bgr: np.ndarray, state: DisplayState) -> np.ndarray:
    """A new BGR image: `image_bgr` with the heads-up display for `state` drawn over it."""
    img = np.ascontiguousarray(image_bgr, dtype=np.uint8).copy()
    h, w = img.shape[:2]
    m = _Metrics.of(img.shape)
    cx, cy, r = _light_circle(img.shape)
    light_left = cx - r - m.margin
    y = m.margin // 3

    badge = ascii_safe(state.badge)
    badge_right = light_left
    if badge:  # a small privacy note just left of the light ("faces blurred"); the banner's text stops short of it
        light_left = badge_right - _badge_width(badge, m) - m.pad
    if state.banner:  # yellow strip across the very top, text kept clear of the light
        _panel(img, 0, 0, w, m.bar_h + 2 * (m.margin // 3), BANNER, alpha=0.9)
        banner = _fit(ascii_safe(state.banner), light_left - 2 * m.pad, m.scale, m.thick)
        _text(img, banner, m.pad, y + m.pad // 2 + m.text_h, m, BLACK)
        y += m.bar_h + m.margin // 3 + m.margin // 2
    else:
        y = m.margin
    if badge:
        _draw_badge(img, badge, badge_right, cy, m)

    # status word, mode and latency on one translucent box, top-left
    status = ascii_safe(state.status).lower() or "idle"
    extra = ascii_safe(state.mode).upper()
    if state.by and state.status != "idle":  # a skill answers, not the model in its mode
        extra = ascii_safe(state.by).upper()
    if state.skill and state.skill != state.by:  # a standing skill ("shopping mode") first: it changes what questions mean
        extra = f"{ascii_safe(state.skill).upper()} | {extra}"
    if state.latency is not None:
        extra += f"  {state.latency:.2f} s"
    parts = [(status, STATUS_COLOURS.get(status, WHITE)), ("  " + extra, WHITE)] if extra else [(status, STATUS_COLOURS.get(status, WHITE))]
    text_w = sum(cv2.getTextSize(s, FONT, m.scale, m.thick)[0][0] for s, _ in parts)
    _panel(img, m.margin, y, m.margin + text_w + 2 * m.pad, y + m.bar_h)
    x = m.margin + m.pad
    for s, colour in parts:
        x = _text(img, s, x, y + m.pad // 2 + m.text_h + (m.line_h - m.text_h) // 3, m, colour)
    y += m.bar_h

    if state.notes:  # small lines under the status box
        small = 0.7
        notes = [ascii_safe(n) for n in state.notes if n.strip()]
        note_h = round(m.line_h * small)
        note_w = max((cv2.getTextSize(n, FONT, m.scale * small, 1)[0][0] for n in notes), default=0)
        if notes:
            _panel(img, m.margin, y, m.margin + note_w + 2 * m.pad, y + note_h * len(notes) + m.pad // 2, alpha=0.45)
            for i, n in enumerate(notes):
                _text(img, n, m.margin + m.pad, y + note_h * (i + 1) - m.pad // 3, m, NOTE, small)

    # caption at the bottom, the answer in its own box just above it
    width_px = w - 2 * m.margin - 2 * m.pad
    bottom = h - m.margin
    if state.caption:
        text = "heard: " + ascii_safe(state.caption)
        lines = list(_wrap_to_px(text, width_px, m.scale, m.thick, MAX_CAPTION_LINES))
        bottom = _text_block(img, lines, [WHITE] * len(lines), bottom, m) - m.margin // 2
    if state.answer:
        lines = list(_wrap_to_px(ascii_safe(state.answer), width_px, m.scale, m.thick, MAX_ANSWER_LINES))
        bottom = _text_block(img, lines, [ANSWER] * len(lines), bottom, m)

    if state.evidence is not None:  # over the notes (it is the answer's), clear of the light and the text
        _draw_evidence(img, state.evidence, bottom - m.margin // 2, bool(state.banner), m)

    # the capture light last, so nothing covers it; it stays on while memory keeps frames
    if state.light or state.storing or state.recording:
        cv2.circle(img, (cx, cy), r + max(1, r // 4), WHITE, -1, cv2.LINE_AA)
        cv2.circle(img, (cx, cy), r, LIGHT_RED, -1, cv2.LINE_AA)
    else:
        cv2.circle(img, (cx, cy), max(3, r * 2 // 3), LIGHT_OFF, max(1, m.thick // 2 + 1), cv2.LINE_AA)
    return img

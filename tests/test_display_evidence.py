"""glasses.display: the thumbnail a memory answer rests on, framed in the top-right corner."""
import numpy as np
import pytest

from core.messages import DisplayState, Evidence
from glasses.display import draw_overlay, evidence_box, light_pixel_box
from tests.test_display import FULL, SIZES, _is_red, _scene

THUMB = np.zeros((144, 192, 3), np.uint8)
THUMB[:] = (255, 0, 255)  # BGR magenta: nowhere in the scene
EVIDENCE = Evidence(7, "seen 4 min ago", THUMB)


def _magenta(img):
    b, g, r = img[..., 0].astype(int), img[..., 1].astype(int), img[..., 2].astype(int)
    return (b > 230) & (r > 230) & (g < 30)


@pytest.mark.parametrize("w,h", SIZES)
def test_the_evidence_thumbnail_is_drawn_in_the_top_right_corner(w, h):
    img = _scene(w, h)
    out = draw_overlay(img, DisplayState(evidence=EVIDENCE))
    x0, y0, x1, y1 = evidence_box(img.shape)
    assert x0 > w / 2 and y0 < h / 3  # top right
    ys, xs = np.nonzero(_magenta(out))
    assert len(xs) > 0.5 * (x1 - x0) ** 2 * 144 / 192  # the thumbnail, aspect kept, fills its box's width
    assert xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1
    assert not _magenta(draw_overlay(img, DisplayState())).any()
    under = slice(ys.max() + 1, ys.max() + 1 + (y1 - y0) // 4), slice(x0, x1)  # "seen 4 min ago" under it
    assert not np.array_equal(out[under], draw_overlay(img, DisplayState())[under])


@pytest.mark.parametrize("w,h", SIZES)
def test_the_evidence_leaves_the_light_and_the_answer_readable(w, h):
    img = _scene(w, h)
    state = DisplayState(**{**FULL.__dict__, "evidence": EVIDENCE})
    out, plain = draw_overlay(img, state), draw_overlay(img, FULL)
    assert _is_red(out, light_pixel_box(img.shape))
    rows = np.nonzero((out != plain).any(axis=(1, 2)))[0]
    assert len(rows) and _magenta(out).any()  # drawn even with a banner, notes and a 4-line answer
    answer_rows = np.nonzero((plain != draw_overlay(img, DisplayState(**{**FULL.__dict__, "answer": ""})))
                             .any(axis=(1, 2)))[0]
    assert rows.max() < answer_rows.min()  # everything it drew is above the answer's box


def test_an_entry_without_a_picture_says_so():
    img = _scene(640, 360)
    out = draw_overlay(img, DisplayState(evidence=Evidence(3, "seen 2 h ago")))
    x0, y0, x1, y1 = evidence_box(img.shape)
    assert not np.array_equal(out[y0:y1, x0:x1], img[y0:y1, x0:x1]) and not _magenta(out).any()


def test_no_room_no_evidence():
    assert evidence_box((240, 320, 3), bottom=40) is None

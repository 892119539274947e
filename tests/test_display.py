"""glasses.display: the heads-up overlay and its pure helpers, without any media."""
import numpy as np
import pytest

from glasses.display import ascii_safe, draw_overlay, light_pixel_box, state_at, wrap_text
from core.messages import DisplayState

SIZES = [(320, 240), (1280, 720), (360, 640)]  # (w, h), portrait included
FULL = DisplayState(
    caption="what kind of plant is this?",
    answer="That looks like a peace lily, a common houseplant that likes shade.",
    light=True,
    status="speaking",
    mode="instant",
    latency=0.84,
    banner="RANDOM WEIGHTS: wiring smoke run",
    notes=("asr 0.31 s",),
)


def _scene(w, h):
    rng = np.random.default_rng(0)
    return rng.integers(40, 160, (h, w, 3), dtype=np.uint8)  # no pure red anywhere


def _is_red(img, box):
    x0, y0, x1, y1 = box
    b, g, r = img[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
    return r > 180 and g < 70 and b < 70


@pytest.mark.parametrize("w,h", SIZES)
def test_light_is_red_when_on_and_not_when_off(w, h):
    img = _scene(w, h)
    box = light_pixel_box(img.shape)
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and x0 > w / 2 and y1 < h / 4  # top-right
    assert _is_red(draw_overlay(img, DisplayState(light=True)), box)
    assert _is_red(draw_overlay(img, FULL), box)  # the banner never hides it
    assert not _is_red(draw_overlay(img, DisplayState(light=False)), box)


@pytest.mark.parametrize("w,h", SIZES)
def test_overlay_returns_new_image_and_leaves_input_alone(w, h):
    img = _scene(w, h)
    before = img.copy()
    out = draw_overlay(img, FULL)
    assert out is not img and out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(img, before)


@pytest.mark.parametrize("w,h", SIZES)
def test_caption_and_answer_draw_near_the_bottom(w, h):
    img = _scene(w, h)
    bottom = slice(int(h * 0.6), h)
    plain = draw_overlay(img, DisplayState())
    assert np.array_equal(plain[bottom], img[bottom])  # nothing to say: bottom untouched
    with_caption = draw_overlay(img, DisplayState(caption="hello"))
    with_answer = draw_overlay(img, DisplayState(caption="hello", answer="hi there"))
    assert not np.array_equal(with_caption[bottom], img[bottom])
    assert not np.array_equal(with_answer[bottom], with_caption[bottom])


def test_banner_is_a_yellow_strip_at_the_top():
    img = _scene(640, 360)
    b, g, r = draw_overlay(img, DisplayState(banner="no camera"))[1, 300]
    assert r > 180 and g > 160 and b < 80


def test_long_answer_keeps_to_a_few_lines():
    w, h = 320, 240
    img = _scene(w, h)
    out = draw_overlay(img, DisplayState(caption="tell me a story", answer="word " * 400))
    middle = slice(int(h * 0.2), int(h * 0.4))  # between the status box and the answer box
    assert np.array_equal(out[middle], img[middle])


def test_ascii_safe_transliterates_instead_of_question_marks():
    assert ascii_safe("café – naïve “quotes”") == 'cafe - naive "quotes"'
    assert ascii_safe("Straße … ‘x’ 日本") == "Strasse ... 'x' "
    text = ascii_safe("café – naïve “quotes” " * 5)
    lines = wrap_text(text, 20)
    assert lines and all(line.isascii() and "?" not in line for line in lines)
    draw_overlay(_scene(320, 240), DisplayState(caption="café – naïve “quotes”", answer="日本"))


def test_wrap_text_basic_and_edges():
    assert wrap_text("", 10) == []
    assert wrap_text("   \n ", 10) == []
    assert wrap_text("one two three four", 9) == ["one two", "three", "four"]
    assert wrap_text("exactly10!", 10) == ["exactly10!"]
    assert wrap_text("a\nb  c", 80) == ["a b c"]
    assert wrap_text("hi abcdefghijklmnop yo", 5) == ["hi", "abcde", "fghij", "klmno", "p yo"]
    assert wrap_text("abc", 0) == ["a", "b", "c"]  # a width below one still terminates


def test_wrap_text_never_splits_a_word_that_fits():
    text = "the quick brown fox jumps over the lazy dog " * 3
    for width in range(5, 30):
        lines = wrap_text(text, width)
        assert all(len(line) <= width for line in lines)
        assert " ".join(lines).split() == text.split()


def test_state_at():
    a, b, c = DisplayState(caption="a"), DisplayState(caption="b"), DisplayState(caption="c")
    timeline = [(1.0, a), (2.0, b), (2.0, c)]
    assert state_at(timeline, 0.5) == DisplayState()
    assert state_at([], 3.0) == DisplayState()
    assert state_at(timeline, 1.0) is a
    assert state_at(timeline, 1.99) is a
    assert state_at(timeline, 2.0) is c  # equal times: the later entry wins
    assert state_at(timeline, 99.0) is c

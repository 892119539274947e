"""OCR (pipelines/skills/ocr.py): the real PP-OCRv4 reader on real photos and on printed text,
readability of blurred and dark frames, and reading order on constructed boxes."""
import math
import random

import cv2
import numpy as np
import pytest

from benchmarks import ocr as bench
from pipelines.skills.ocr import Line, load_reader, readable, reading_order, text_of

RECALL_FLOOR = 15  # of 27 key strings: measured 17 with the app's reader (2026-11-29); PP-OCR drops spaces
# and the receipt is crumpled, so the misses are the model's, not the reading order's.


@pytest.fixture(scope="module")
def reader():
    pytest.importorskip("rapidocr_onnxruntime", reason="rapidocr-onnxruntime is not installed: OCR tests skipped")
    r = load_reader()
    assert r is not None  # importable, so it must load
    return r


def printed(lines, size=(1280, 720), scales=None, background=235) -> np.ndarray:
    """A camera-sized frame with `lines` printed dark on light, each at its own scale."""
    w, h = size
    image = np.full((h, w, 3), background, np.uint8)
    y = 40
    for i, text in enumerate(lines):
        scale = scales[i] if scales else 1.5
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, round(scale * 2)))
        y += th + 30
        cv2.putText(image, text, (60, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (25, 25, 25), max(1, round(scale * 2)),
                    cv2.LINE_AA)
    return image


# --- the real reader --------------------------------------------------------------------------------
def test_real_photos_key_string_recall(reader, shared_media):
    keys = bench.parse_keys((shared_media / bench.KEYS_FILE).read_text(), shared_media)
    assert len(keys) >= 4 and sum(map(len, keys.values())) >= 20  # the file's format was understood
    found = total = 0
    for path, ks in keys.items():
        image = cv2.imread(str(shared_media / path), cv2.IMREAD_COLOR)
        assert image is not None, path
        text = text_of(reader.read(image))
        hits = [k for k in ks if bench.found(k, text)]
        print(f"{path}: {len(hits)}/{len(ks)} {text[:120]!r}")
        found, total = found + len(hits), total + len(ks)
    print(f"key-string recall: {found}/{total} = {found / total:.2f}")
    assert found >= RECALL_FLOOR


def test_the_receipt_is_read_row_by_row(reader, shared_media):
    """Name left, price right: row by row, so "CASH 200,000" is one run of text."""
    image = cv2.imread(str(shared_media / "images/ocr/cord_receipt_00004.png"), cv2.IMREAD_COLOR)
    text = text_of(reader.read(image))
    assert bench.found("CASH 200,000", text)
    assert bench.squash(text).index("cash") < bench.squash(text).index("change")


@pytest.mark.parametrize("scale", [0.8, 1.2, 2.0, 3.0])
def test_printed_text_is_found_at_several_sizes(reader, scale):
    words = ["EXIT 12", "Fresh milk 2 litres"]
    lines = reader.read(printed(words, scales=[scale, scale]))
    text = text_of(lines)
    for w in words:
        assert bench.squash(w) in bench.squash(text), (scale, text)
    assert all(0.5 <= line.score <= 1.0 for line in lines)
    # boxes are in the frame's pixels, top line first
    assert lines[0].box[0][1] < lines[-1].box[0][1] and all(0 <= x <= 1280 and 0 <= y <= 720
                                                          for line in lines for x, y in line.box)


def test_a_large_frame_is_read_and_boxes_come_back_in_its_pixels(reader):
    image = np.full((1080, 1920, 3), 235, np.uint8)
    cv2.putText(image, "PLATFORM 4", (1200, 800), cv2.FONT_HERSHEY_SIMPLEX, 2.5, (25, 25, 25), 5, cv2.LINE_AA)
    lines = reader.read(image)  # read at 1280 px, boxes scaled back to the frame's 1920
    assert [line.text for line in lines] == ["PLATFORM 4"]
    xs, ys = zip(*lines[0].box)
    assert abs(min(xs) - 1200) < 30 and abs(max(ys) - 800) < 30


def test_nothing_to_read_and_bad_images(reader):
    assert reader.read(np.full((720, 1280, 3), 200, np.uint8)) == []
    assert reader.read(np.zeros((4, 4, 3), np.uint8)) == []
    grey = cv2.cvtColor(printed(["OPEN 9 TO 5"], scales=[2.5]), cv2.COLOR_BGR2GRAY)
    assert "OPEN" in text_of(reader.read(grey))


def test_memory_keyframes_use_the_same_reader(reader):
    from pipelines.memory.describe import load_ocr

    read = load_ocr()
    assert read is not None and "Bakery" in read(printed(["Bakery Muller"], scales=[2.0]))


def test_without_rapidocr_there_is_no_reader(monkeypatch):
    import sys

    from pipelines.memory.describe import load_ocr

    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # as if not installed: the import fails
    load_reader.cache_clear()  # one reader per process: forget the one other tests loaded, and this None after
    try:
        assert load_reader() is None and load_ocr() is None
    finally:
        load_reader.cache_clear()


# --- readable: pure ---------------------------------------------------------------------------------
def test_readable_sharp_blurred_dark():
    sharp = printed(["Fresh milk 2 litres", "Best before 12 March"], scales=[1.5, 1.0])
    assert readable(sharp) == ""
    assert readable(cv2.GaussianBlur(sharp, (0, 0), 8)) == "blurred"
    assert readable(cv2.GaussianBlur(sharp, (0, 0), 1.0)) == ""  # a little soft still reads
    rng = np.random.default_rng(0)
    dark = np.clip(sharp.astype(np.float32) * 0.1 + rng.normal(0, 2, sharp.shape), 0, 255).astype(np.uint8)
    assert readable(dark) == "dark"
    assert readable(np.zeros((720, 1280, 3), np.uint8)) == "dark"
    wall = np.clip(rng.normal(170, 3, (720, 1280, 3)), 0, 255).astype(np.uint8)
    assert readable(wall) == ""  # a blank, well-lit wall: nothing to read, but neither blurred nor dark
    night_sign = np.zeros((720, 1280, 3), np.uint8)  # bright letters on black: readable
    cv2.putText(night_sign, "OPEN", (300, 400), cv2.FONT_HERSHEY_SIMPLEX, 5, (255, 255, 255), 10, cv2.LINE_AA)
    assert readable(night_sign) == ""


def test_readable_on_the_shared_photos(shared_media):
    for path in sorted((shared_media / "images" / "ocr").glob("*.[jpt][pni]*")):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        assert readable(image) == "", path.name
        assert readable(cv2.GaussianBlur(image, (0, 0), 6 * max(image.shape) / 640)) == "blurred", path.name


# --- reading order: pure ----------------------------------------------------------------------------
def box(x, y, w, h, angle=0.0, about=(0.0, 0.0)):
    """A text box's corners (tl, tr, br, bl), turned by `angle` degrees about `about`."""
    a = math.radians(angle)
    ox, oy = about
    pts = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
    return tuple((ox + (px - ox) * math.cos(a) - (py - oy) * math.sin(a),
                  oy + (px - ox) * math.sin(a) + (py - oy) * math.cos(a)) for px, py in pts)


def shuffled(lines, seed=0):
    lines = list(lines)
    random.Random(seed).shuffle(lines)
    return lines


def test_reading_order_two_columns_of_running_text_under_a_title():
    title = Line("HOW TO USE THIS MACHINE", box(100, 20, 600, 40), 0.9)
    left = [Line(f"left column line {i} runs on here", box(40, 100 + 36 * i, 330, 28), 0.9) for i in range(6)]
    # the right column's lines sit at the same heights: a grid, still two columns of text
    right = [Line(f"right column line {i} runs on too", box(420, 100 + 36 * i, 330, 28), 0.9) for i in range(6)]
    for seed in range(5):
        assert reading_order(shuffled([title, *left, *right], seed)) == [title, *left, *right]


def test_reading_order_a_table_reads_row_by_row():
    rows = [("ICE COFFEE", "82,000"), ("AVOCADO COFFEE", "61,000"), ("CHICKEN KATSU", "51,000"), ("TOTAL", "194,000")]
    lines = []
    for i, (name, price) in enumerate(rows):
        y = 100 + 40 * i + (3 if i % 2 else 0)  # cells of a row are not exactly level
        lines += [Line(name, box(40, y, 240, 26), 0.9), Line(price, box(600, y + 2, 110, 26), 0.9)]
    assert [line.text for line in reading_order(shuffled(lines))] == [t for row in rows for t in row]


def test_reading_order_of_skewed_lines():
    """A page turned by 10 degrees: a row's right end lies lower than the next row's left end."""
    texts = [("Name:", "Alice Smith"), ("Room:", "204 east wing"), ("Date:", "12 March"), ("Time:", "10:30")]
    lines = []
    for i, (a, b) in enumerate(texts):
        y = 100 + 40 * i
        lines += [Line(a, box(100, y, 120, 26, 10, (100, 100)), 0.9),
                  Line(b, box(400, y, 260, 26, 10, (100, 100)), 0.9)]
    assert lines[1].box[0][1] > lines[2].box[0][1]  # the trap is set
    assert [line.text for line in reading_order(shuffled(lines, 3))] == [t for row in texts for t in row]
    turned = [Line(f"line {i} of the page", box(100, 100 + 40 * i, 500, 26, -12, (100, 100)), 0.9) for i in range(5)]
    assert reading_order(shuffled(turned, 1)) == turned


def test_reading_order_separate_panels_are_read_one_after_the_other():
    """Two signs side by side whose lines do not line up: the left one, then the right one."""
    left = [Line("SALE", box(30, 40, 80, 30), 0.9), Line("70%", box(30, 200, 70, 30), 0.9)]
    right = [Line("ALL YEAR", box(460, 60, 240, 40), 0.9), Line("ROUND", box(460, 170, 200, 40), 0.9),
             Line("OCBC Bank", box(470, 370, 150, 24), 0.9)]
    assert reading_order(shuffled(left + right)) == left + right


def test_reading_order_small_inputs():
    assert reading_order([]) == []
    one = Line("EXIT", box(0, 0, 50, 20), 0.9)
    assert reading_order([one]) == [one]
    same_row = [Line("B", box(200, 10, 40, 20), 0.9), Line("A", box(10, 12, 40, 20), 0.9)]
    assert [line.text for line in reading_order(same_row)] == ["A", "B"]


# --- the benchmark's pure parts ---------------------------------------------------------------------
def test_key_strings_parsing_and_matching(tmp_path):
    (tmp_path / "images" / "ocr").mkdir(parents=True)
    (tmp_path / "images" / "ocr" / "page.txt").write_text("first line\n\nsecond line\n")
    tsv = ("# file\tkeys\n"
           "images/ocr/r.png\tCASH 200,000; TOTAL 174,600 (header is blurred on purpose)\n"
           "images/ocr/page.tif\tfull ground truth in page.txt\n")
    keys = bench.parse_keys(tsv, tmp_path)
    assert keys == {"images/ocr/r.png": ["CASH 200,000", "TOTAL 174,600"],
                    "images/ocr/page.tif": ["first line", "second line"]}
    assert bench.found("CASH 200,000", "xx Cash 200.000 yy") and not bench.found("CASH 200,000", "CASH 20,000")
    assert bench.close("Octavia Hill", "OctaviaHil") and not bench.close("Octavia Hill", "Social Reformer")


def test_benchmark_bad_sides_is_one_line(capsys):
    assert bench.main(["--sides", "big"]) == 2
    assert "--sides" in capsys.readouterr().err

"""Barcodes and QR codes: check digits, the vote across frames, and the real engines (zxing-cpp,
OpenCV) on codes drawn here (glasses/sample_barcodes.py: EAN-13 / UPC-A bars from the GS1 tables,
QR by OpenCV's encoder) turned, scaled and blurred in a cluttered scene, and on the shared real
photos. A wrong code is never acceptable; a missed one sometimes is."""
import numpy as np
import pytest

from pipelines.skills.barcodes import (Code, check_digit_ok, ean13_key, engines_available, normalise, opencv_reads,
                                       read_codes, read_frames, view, vote)
from glasses.sample_barcodes import check_digit, linear_label, modules, qr_label, scene

OAT = Code("5074852605749", "EAN-13")  # both in pipelines/skills/sample_catalog.csv
SYRUP = Code("057542273829", "UPC-A")
QR = Code("https://shop.example/p/5074852605749", "QR")
SIZES = {"small": 2, "medium": 3, "large": 8}  # pixels a module: codes 190, 285 and 760 px wide in 1280
TURNS = (0, 15, 45, 90, 180)


def needs(*engines):
    missing = [e for e in engines if e not in engines_available()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not available (pip install zxing-cpp; OpenCV with cv2.barcode)")


def label(code: Code, module_px: int) -> np.ndarray:
    return qr_label(code.text, module_px) if code.kind == "QR" else linear_label(code.text, module_px)


def single(image, engines=("zxing", "opencv")) -> Code | None:
    """What one image alone says: its codes voted on as the only frame offered."""
    return vote([read_codes(image, engines)])


def same(a: Code | None, b: Code) -> bool:
    return a is not None and ean13_key(a.text) == ean13_key(b.text)


# --- pure -----------------------------------------------------------------------------------------
def test_check_digits_and_keys():
    for good in ("5074852605749", "057542273829", "0057542273829", "96385074", "4006381333931"):
        assert check_digit_ok(good), good
    for bad in ("5074852605748", "057542273820", "96385075", "12345", "", "50748526057a9"):
        assert not check_digit_ok(bad), bad
    assert ean13_key("057542273829") == ean13_key("0057542273829") == "0057542273829"
    assert ean13_key("96385074") == "0000096385074"
    assert ean13_key(" 5074-8526-05749 ") == "5074852605749"
    assert ean13_key("https://x.example/1") == "https://x.example/1"


def test_reads_are_normalised_and_checked():
    assert normalise("0057542273829", "EAN-13") == SYRUP  # zxing's UPC-A text has 13 digits
    assert normalise("0057542273829", "UPC-A") == SYRUP
    assert normalise("057542273829", "UPC_A") == SYRUP  # OpenCV's
    assert normalise("5074852605749", "EAN_13") == OAT
    assert normalise("96385074", "EAN-8") == Code("96385074", "EAN-8")
    assert normalise("5074852605748", "EAN-13") is None  # wrong check digit
    assert normalise("96385074", "EAN-13") is None  # an 8-digit text is no EAN-13
    assert normalise("ABC-123", "CODE_128") is None  # a format the shop does not use
    assert normalise("hello", "QR Code") == Code("hello", "QR")
    assert normalise("  ", "QR") is None


def test_the_test_renderer_draws_what_zxing_draws():
    """The generated images are only as good as the encoding tables: compare every first digit."""
    zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp is not installed (pip install zxing-cpp)")
    rng = np.random.default_rng(0)
    for first in range(10):
        body = str(first) + "".join(str(d) for d in rng.integers(0, 10, 11))
        code = body + check_digit(body)
        bars = np.asarray(zxingcpp.create_barcode(code, zxingcpp.BarcodeFormat.EAN13).to_image(scale=1,
                                                                                               add_quiet_zones=False))
        row = bars[bars.shape[0] // 2]
        width = row.size / 95
        assert "".join("1" if row[int((i + 0.5) * width)] < 128 else "0" for i in range(95)) == modules(code), code


def test_vote_never_lets_one_misread_win():
    a, b, upc, ean = OAT, Code("5079380927523", "EAN-13"), SYRUP, Code("0057542273829", "EAN-13")
    assert vote([[a], [a], [b]]) == a
    assert vote([[b], [a], [a], [a]]) == a
    assert vote([[b], [], []]) is None  # one frame among several is never enough
    assert vote([[a], [b]]) is None  # equal votes
    assert vote([[a], [a], [b], [b]]) is None
    assert vote([[a, b], [a], [b]]) is None
    assert vote([[a, a], [b]]) is None  # a code counts once a frame
    assert vote([[upc], [ean]]) == upc  # the two forms of one code agree
    assert vote([[a]]) == a  # the only frame offered may decide alone...
    assert vote([[a, b]]) is None  # ...when it holds one product code
    assert vote([]) is None and vote([[], [], []]) is None
    assert vote([[a], [a], [a]], min_votes=4) is None


def test_vote_keeps_a_qr_code_beside_a_barcode_apart():
    a, b = OAT, Code("5079380927523", "EAN-13")
    assert vote([[a, QR], [a, QR]]) == a  # the product code is what the shop knows
    assert vote([[a, QR]]) == a
    assert vote([[QR], [QR], [a]]) == QR
    assert vote([[a, QR], [b, QR]]) is None  # product codes contested: say nothing
    assert vote([[QR], [Code("other", "QR")]]) is None


# --- generated images, the real engines ---------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("code", [OAT, SYRUP], ids=["ean13", "upca"])
@pytest.mark.parametrize("size", sorted(SIZES))
def test_barcodes_read_at_every_turn_and_size(code, size):
    needs("zxing", "opencv")
    wrong, missed = [], {}
    for blur in (0.0, 1.0, 2.0):
        for turn in TURNS:
            got = single(scene(label(code, SIZES[size]), turn, blur, seed=turn + 7 * SIZES[size]))
            if got is not None and not same(got, code):
                wrong.append((turn, blur, got))
            if got is None:
                missed.setdefault(blur, []).append(turn)
    assert not wrong
    # Sharp: always read. Blur 1 leaves a small code's 2 px bars at the edge (57 of 60 scenes read
    # over 6 seeds): one turn in five may be missed. Blur 2 softens small and medium codes' bars to
    # nothing at some turns: they may be missed, never misread; a large code is still read.
    allowed = {0.0: 0, 1.0: 1 if size == "small" else 0, 2.0: 0 if size == "large" else len(TURNS)}
    assert all(len(turns) <= allowed[blur] for blur, turns in missed.items()), missed
    if code == OAT:
        assert single(scene(label(code, SIZES[size]), 0, 0.0)) == OAT  # kind kept: an EAN-13
    else:
        assert single(scene(label(code, SIZES[size]), 0, 0.0)) == SYRUP  # reported as the UPC-A


@pytest.mark.slow
@pytest.mark.parametrize("size", ["medium", "large"])
def test_qr_codes_read_at_every_turn(size):
    needs("zxing", "opencv")
    for blur in (0.0, 1.0):
        for turn in TURNS:
            assert single(scene(label(QR, SIZES[size] + 1), turn, blur, seed=turn)) == QR, (turn, blur)


def test_a_code_blurred_to_death_reads_as_nothing_not_as_a_wrong_code():
    needs("zxing", "opencv")
    for code in (OAT, SYRUP, QR):
        for turn in (0, 45):
            image = scene(label(code, 3), turn, 4.0, seed=turn)
            assert read_codes(image) == []
            assert read_frames([image, image.copy()]) is None


def test_each_engine_alone_reads_a_plain_code():
    for engine in engines_available():
        assert single(scene(label(OAT, 3), 15, 1.0), (engine,)) == OAT, engine
    assert single(scene(label(OAT, 3), 0, 0.0), ()) is None  # no engine: no code


def test_views_keep_the_whole_frame():
    image = np.full((100, 200), 255, np.uint8)
    assert view(image, 1.0, 0, 0.0).shape == (100, 200)
    assert view(image, 0.5, 0, 0.0).shape == (50, 100)
    assert view(image, 2.0, 0, -2.0).shape == (200, 400)
    assert view(image, 1.0, 90, 0.0).shape[:2] == (200, 100)
    big = np.full((2000, 3000), 255, np.uint8)
    assert max(view(big, 2.0, 0, 0.0).shape) == 3000  # no enlargement past MAX_SIDE's worth


@pytest.mark.slow
def test_frames_vote_sharpest_first():
    needs("zxing", "opencv")
    sharp = [scene(label(OAT, 3), 15, 0.5, seed=s) for s in (1, 2)]
    mush = [scene(label(OAT, 3), 15, 5.0, seed=s) for s in (3, 4, 5, 6)]
    # Four frames are read at most: the two sharp ones must be among them, whatever their order.
    assert read_frames(mush[:2] + [sharp[0]] + mush[2:] + [sharp[1]]) == OAT
    assert read_frames([sharp[0]]) == OAT  # the only frame offered
    other = scene(label(Code("5079380927523", "EAN-13"), 3), 0, 0.0, seed=9)
    assert read_frames(sharp + [other]) == OAT  # two against one
    assert read_frames([sharp[0], other]) is None  # one against one
    assert read_frames(mush) is None


# --- real photos ------------------------------------------------------------------------------------
def photos(media):
    found = []
    for folder in ("barcodes", "qrcodes"):
        for png in sorted((media / "images" / folder).glob("*.png")):
            truth = png.with_suffix(".txt")
            if truth.is_file():
                found.append((png, truth.read_text(encoding="utf-8").strip()))
    return found


def test_real_photos_read_with_no_wrong_code(shared_media):
    import cv2

    needs("zxing", "opencv")
    cases = photos(shared_media)
    assert len(cases) >= 8
    report = {}
    for engines in (("zxing",), ("opencv",), ("zxing", "opencv")):
        hits, wrong = 0, []
        for png, truth in cases:
            got = single(cv2.imread(str(png)), engines)
            hits += got is not None and ean13_key(got.text) == ean13_key(truth)
            if got is not None and ean13_key(got.text) != ean13_key(truth):
                wrong.append((png.name, got))
        report["+".join(engines)] = (hits, wrong)
        assert not wrong, engines
    print("\nreal photos read: " + ", ".join(f"{k} {h}/{len(cases)}" for k, (h, _) in report.items()))
    assert report["zxing+opencv"][0] >= len(cases) - 1  # measured: 8 of 8 (zxing 8, OpenCV 8)


def test_a_real_opencv_misread_is_outvoted(shared_media):
    """OpenCV reads zxing_ean13-1_4.png turned 45 degrees and blurred as another valid code:
    one such frame among right ones never wins, and against one right frame it is a tie."""
    import cv2

    needs("opencv")
    image = cv2.imread(str(shared_media / "images" / "barcodes" / "zxing_ean13-1_4.png"))
    truth = Code("5449000039231", "EAN-13")
    misread = opencv_reads(view(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), 1.0, 45, 1.0), cv2.barcode.BarcodeDetector())
    if not misread or misread[0] == truth:
        pytest.skip("this OpenCV no longer misreads the photo: nothing to outvote")
    right = read_codes(image)
    assert right == [truth]
    assert vote([right, right, misread]) == truth
    assert vote([right, misread]) is None

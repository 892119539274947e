"""Skills end to end on generated replays, through the entry the command line uses.

Each clip is 1280x720 (the size the app asks of a camera), replayed by `pipelines.app.replay`
with the real recorded source, VAD, router, skills (real zxing-cpp and OpenCV barcode readers,
the real sample catalog, real rapidocr) and renderer. The question is spoken (espeak) and the
ASR is scripted, so what is tested is everything after the words are known.
"""
import json

import cv2
import numpy as np
import pytest

from glasses.display import evidence_box
from glasses.sample import make_clip
from pipelines.app import ReplayOptions, replay
from glasses.sample_barcodes import linear_label, scene
from tests.cli_helpers import frame_at
from tests.fakes import FakeTTS, FakeVLM, ScriptedASR

OAT_DRINK = "5074852605749"  # in the sample catalog: Oatly Oat Drink, 2.10
PRICE_Q, READ_Q = "hey glasses, how much is this?", "hey glasses, read this"


def records(out):
    return [json.loads(line) for line in (out / "session.jsonl").read_text().splitlines()]


def run(tmp_path, clip, script, **options):
    opts = ReplayOptions(clip, out=tmp_path / "out", progress=False, turn="silence", **options)
    vlm = FakeVLM("A carton of oat milk.")
    result = replay(opts, asr=ScriptedASR(script), vlm=vlm, tts=FakeTTS())
    return result, vlm


@pytest.fixture(scope="module")
def barcode_clip(espeak, tmp_path_factory):
    shot = scene(linear_label(OAT_DRINK, module_px=3))
    return make_clip(tmp_path_factory.mktemp("clip") / "shop.mp4", duration=6.0, size=(1280, 720), fps=10,
                     speech=[(1.0, PRICE_Q)], draw=lambda frame, t: shot)


def test_how_much_is_this_reads_the_code_and_says_the_catalog_price(barcode_clip, tmp_path):
    pytest.importorskip("zxingcpp", reason="zxing-cpp is not installed (make test installs it)")
    result, vlm = run(tmp_path, barcode_clip, [(1.5, PRICE_Q)])
    (turn,) = result.turns
    assert (turn["route"], turn["mode"]) == ("skill", "shopping")
    assert "Oatly Oat Drink" in turn["answer"] and "2.10" in turn["answer"] and "vegan" in turn["answer"].lower()
    assert turn["shopping"]["code"] == OAT_DRINK
    assert vlm.calls == [] if hasattr(vlm, "calls") else True  # a code was read: no model on the path
    # the product card is on the display while it answers
    first = turn["spoken"][0]
    shown = frame_at(result.video, first["start"] + 0.2)
    plain = frame_at(barcode_clip, first["start"] + 0.2)
    x0, y0, x1, y1 = evidence_box(shown.shape, shown.shape[0])
    assert np.abs(shown[y0:y1, x0:x1].astype(int) - plain[y0:y1, x0:x1].astype(int)).mean() > 10


def test_what_is_this_with_a_barcode_in_view_is_a_product_question(barcode_clip, tmp_path):
    pytest.importorskip("zxingcpp", reason="zxing-cpp is not installed (make test installs it)")
    result, _ = run(tmp_path, barcode_clip, [(1.5, "hey glasses, what is this?")], render=False)
    (turn,) = result.turns
    assert (turn["mode"], turn["mode_reason"]) == ("shopping", "shopping: a barcode in view")
    assert "Oatly Oat Drink" in turn["answer"] and "2.10" in turn["answer"]


@pytest.fixture(scope="module")
def text_clip(espeak, tmp_path_factory):
    page = np.full((720, 1280, 3), 235, np.uint8)
    for i, line in enumerate(("FRESH BREAD TODAY", "OPEN FROM 9 TO 5")):
        cv2.putText(page, line, (120, 260 + 140 * i), cv2.FONT_HERSHEY_SIMPLEX, 2.6, (20, 20, 20), 6, cv2.LINE_AA)
    return make_clip(tmp_path_factory.mktemp("clip") / "sign.mp4", duration=6.0, size=(1280, 720), fps=10,
                     speech=[(1.0, READ_Q)], draw=lambda frame, t: page)


def test_read_this_speaks_the_printed_text_in_order(text_clip, tmp_path):
    pytest.importorskip("rapidocr_onnxruntime", reason="rapidocr-onnxruntime is not installed (make test installs it)")
    result, _ = run(tmp_path, text_clip, [(1.5, READ_Q)], render=False)
    (turn,) = result.turns
    assert (turn["route"], turn["mode"]) == ("skill", "reading")
    said = " ".join(s["text"] for s in turn["spoken"]).upper().replace(" ", "")
    assert "FRESHBREADTODAY" in said and "OPENFROM9TO5" in said
    assert said.index("FRESH") < said.index("OPEN")


def test_a_timer_is_announced_on_the_session_clock_and_a_photo_is_kept_at_camera_size(text_clip, tmp_path):
    result, _ = run(tmp_path, text_clip, [], render=False,
                    asks=((0.5, "set a timer for 2 seconds"), (4.5, "take a photo")))
    timer, announced, photo = result.turns
    assert timer["mode"] == "timers" and "2 seconds" in timer["answer"]
    assert announced["mode"] == "announce" and "timer is done" in announced["answer"]
    assert 2.5 <= announced["heard_at"] <= 3.0  # due at 2.5 s of the clip, said at the next audio chunk
    (event,) = [r for r in records(result.out) if r["type"] == "announce"]
    assert event["source"] == "timers"
    assert photo["answer"] == "Photo taken."
    image = cv2.imread(str(result.out / "photos" / "photo-0001.jpg"))
    assert image.shape == (720, 1280, 3)  # the camera's own pixels, not the ring's 640

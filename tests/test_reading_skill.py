"""The reading skill (pipelines/skills/reading.py) with the real PP-OCRv4 reader and a fake VLM
(the VLM's port: `stream` yields words), and its pure decisions."""
import threading

import cv2
import numpy as np
import pytest

from benchmarks.ocr import squash
from core.messages import FrameSnapshot, VLMRequest
from pipelines.modes import ModeContext
from pipelines.skills import reading
from pipelines.skills.ocr import Line, load_reader
from pipelines.skills.reading import (HOLD_CLOSER, MORE, NO_IMAGE, NO_OCR, NO_TEXT, TOO_DARK, ReadingSkill,
                                      explain_prompt, pick_sharpest, reading_kind, spoken_chunks, target_language,
                                      translate_prompt, verdict)
from pipelines.vision import exposure, fit_for_model, sharpness


class FakeVLM:
    """The VLM's port: yields its answer word by word and keeps what it was asked."""

    def __init__(self, answer="It says the shop is open."):
        self.answer, self.requests = answer, []

    def stream(self, request, cancel):
        self.requests.append(request)
        for word in self.answer.split():
            if cancel.is_set():
                return
            yield word + " "


@pytest.fixture(scope="module")
def reader():
    pytest.importorskip("rapidocr_onnxruntime", reason="rapidocr-onnxruntime is not installed: OCR tests skipped")
    return load_reader()


def page(lines, size=(1920, 1080), scale=1.6) -> np.ndarray:
    w, h = size
    image = np.full((h, w, 3), 235, np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(image, text, (80, 90 + i * 70), cv2.FONT_HERSHEY_SIMPLEX, scale, (25, 25, 25), 3, cv2.LINE_AA)
    return image


def context(image_bgr, question, vlm=None, spoken=None, cancel=None, frames=None):
    snap = FrameSnapshot(9.8, image_bgr, sharpness(image_bgr), exposure(image_bgr))
    spoken = [] if spoken is None else spoken
    return ModeContext(vlm=vlm or FakeVLM(), request=VLMRequest(question, fit_for_model(image_bgr)),
                       cancel=cancel or threading.Event(), speak=spoken.append,
                       frames=[snap] if frames is None else frames, best=snap, start=8.0, end=10.0)


SIGN = ["EMERGENCY EXIT", "Keep this door closed", "Alarm will sound", "Use the stairs in case of fire",
        "Do not use the lift"]


# --- with the real reader ---------------------------------------------------------------------------
def test_read_this_speaks_the_text_in_order(reader):
    spoken = []
    result = ReadingSkill(reader).answer(context(page(SIGN), "Read this.", spoken=spoken))
    said = squash(" ".join(spoken))  # letters and digits: PP-OCR may drop a space ("EMERGENCYEXIT")
    for line in SIGN:
        assert squash(line) in said
    assert said.index("emergency") < said.index("alarm") < said.index("lift")
    assert len(spoken) >= 2 and all(piece.endswith(". ") for piece in spoken)  # pieces, each a sentence
    assert squash(result.answer).startswith("emergencyexit")
    assert result.extra["reading"]["frame_size"] == [1920, 1080]  # the camera frame, not the model's 512 px


def test_small_print_is_read_from_the_full_resolution_frame(reader):
    """Print too small for the 512 px model image is read from the full-resolution frame."""
    image = page(["Best before 12 March 2027"], scale=0.7)
    spoken = []
    ReadingSkill(reader).answer(context(image, "what does this say?", spoken=spoken))
    assert squash("12 March 2027") in squash(" ".join(spoken))


def test_stop_ends_the_reading_between_pieces(reader):
    cancel = threading.Event()
    spoken = []

    def speak(text):
        spoken.append(text)
        cancel.set()  # "stop" while the first piece plays

    ctx = context(page(SIGN), "read this", cancel=cancel)
    ctx.speak = speak
    result = ReadingSkill(reader).answer(ctx)
    assert len(spoken) == 1 and "EMERGENCY" in spoken[0] and "closed" not in spoken[0]
    assert result.extra["reading"]["spoken_pieces"] == 1 < result.extra["reading"]["pieces"]


def test_a_long_text_is_cut_with_and_more(reader):
    lines = [f"Line {i} of the long notice" for i in range(12)]
    spoken = []
    result = ReadingSkill(reader, max_words=20).answer(context(page(lines, scale=1.0), "read it to me", spoken=spoken))
    assert spoken[-1].strip() == MORE
    assert len(result.answer.split()) <= 20 + 2


def test_blurred_dark_and_empty_frames(reader):
    cases = [(cv2.GaussianBlur(page(SIGN, scale=1.0), (0, 0), 12), HOLD_CLOSER),  # OCR alone says "三" (0.73)
             (cv2.GaussianBlur(page(SIGN), (0, 0), 8), HOLD_CLOSER),  # OCR alone: "Pethestsincaseoffe" (0.71)
             ((page(SIGN) * 0.08).astype(np.uint8), TOO_DARK),
             (np.full((1080, 1920, 3), 200, np.uint8), NO_TEXT)]
    for image, expected in cases:
        spoken = []
        result = ReadingSkill(reader).answer(context(image, "read this", spoken=spoken))
        assert spoken == [expected] and result.answer == expected


def test_what_does_this_sign_say_gives_the_text_to_the_vlm(reader):
    vlm, spoken = FakeVLM("It is a fire exit: keep the door closed."), []
    ctx = context(page(SIGN), "What does this sign say?", vlm=vlm, spoken=spoken)
    result = ReadingSkill(reader).answer(ctx)
    asked = vlm.requests[0]
    assert "What does this sign say?" in asked.question
    for text in SIGN:
        assert squash(text) in squash(asked.question)
    assert asked.image is ctx.request.image  # the picture the wearer saw (and its prepared prefix) goes along
    assert "".join(spoken).strip() == "It is a fire exit: keep the door closed." == result.answer
    assert result.extra["reading"]["prompt"] == asked.question


def test_translate_asks_for_a_translation(reader):
    vlm = FakeVLM("Exit.")
    ctx = context(page(["SORTIE DE SECOURS", "Ne pas bloquer"]), "Translate this sign into English", vlm=vlm)
    ReadingSkill(reader).answer(ctx)
    asked = vlm.requests[0]
    assert squash("SORTIE DE SECOURS") in squash(asked.question) and "into English" in asked.question
    assert asked.max_new_tokens >= reading.TRANSLATE_TOKENS


def test_explain_with_no_text_asks_the_model_the_question(reader):
    vlm = FakeVLM("It is a recycling symbol.")
    ReadingSkill(reader).answer(context(np.full((720, 1280, 3), 200, np.uint8), "what does this label mean?", vlm=vlm))
    assert vlm.requests[0].question == "what does this label mean?"


# --- without OCR ------------------------------------------------------------------------------------
def test_without_ocr_it_says_so_once_and_the_model_answers():
    vlm = FakeVLM("It says open.")
    skill = ReadingSkill(None)
    spoken = []
    first = skill.answer(context(page(SIGN), "read this", vlm=vlm, spoken=spoken))
    assert spoken[0].strip() == NO_OCR and first.answer == f"{NO_OCR} It says open."
    assert vlm.requests[0].question == "read this"  # the original question
    spoken.clear()
    second = skill.answer(context(page(SIGN), "read this", vlm=vlm, spoken=spoken))
    assert NO_OCR not in " ".join(spoken) and second.answer == "It says open."


def test_the_default_reader_loads_on_first_use(monkeypatch):
    skill = ReadingSkill()
    assert skill.available == (load_reader() is not None)
    monkeypatch.setattr(reading, "load_reader", lambda: None)  # as if rapidocr could not load
    spoken = []
    skill.answer(context(page(SIGN), "read this", vlm=FakeVLM("It says exit."), spoken=spoken))
    assert spoken[0].strip() == NO_OCR and skill.available is False


def test_no_picture_at_all(reader):
    ctx = context(page(SIGN), "read this", frames=[])
    ctx.best, ctx.request = None, VLMRequest("read this", None)
    spoken = []
    ctx.speak = spoken.append
    assert ReadingSkill(reader).answer(ctx).answer == NO_IMAGE and spoken == [NO_IMAGE]


# --- pure decisions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("question,kind", [
    ("Read this.", "read"), ("um, can you read this please?", "read"), ("Could you read me the menu?", "read"),
    ("What does this say?", "read"), ("what does it say", "read"), ("What's written here?", "read"),
    ("What is written on this box?", "read"), ("read it out loud", "read"),
    ("What does this sign say?", "explain"), ("What does this label mean?", "explain"),
    ("what does this mean?", "explain"),
    ("What does this sign say in English?", "translate"), ("Translate this sign.", "translate"),
    ("could you translate the menu please", "translate"), ("translate this label into Spanish", "translate"),
    # not reading: general questions, memory, the translation skill's live mode
    ("what colour is this?", ""), ("What colour is this shirt?", ""), ("what is this?", ""), ("how much is this?", ""),
    ("What did the sign say earlier?", ""), ("what was written on the whiteboard?", ""), ("did you read the sign?", ""),
    ("translate for me", ""), ("translate what they say", ""), ("translation mode", ""), ("stop translating", ""),
    ("translate this conversation", ""), ("what is she saying in English?", ""), ("what does that mean?", ""),
    ("what's this in English?", ""), ("is this gluten free?", ""),
])
def test_reading_kind(question, kind):
    assert reading_kind(question) == kind
    assert ReadingSkill(None).wants(question, active="shopping") == (f"reading: {kind}" if kind else "")


def test_target_language_and_prompts():
    assert target_language("translate this into Spanish") == "Spanish"
    assert target_language("what does this sign say?") == "English"
    p = translate_prompt("translate this", "SORTIE", "French")
    assert "SORTIE" in p and "into French" in p
    long = explain_prompt("what does this mean?", "word " * 500)
    assert "what does this mean?" in long and len(long) < 1000 and long.count("word") <= 130


def line(text, score=0.9):
    return Line(text, ((0, 0), (1, 0), (1, 1), (0, 1)), score)


def test_verdict():
    assert verdict("", [line("EXIT")]) == "read"
    assert verdict("blurred", [line("EXIT")]) == "read"  # soft but read with confidence: read it
    assert verdict("blurred", []) == "blurred"
    assert verdict("", [line("EX1T", 0.3)]) == "blurred"  # text there, not made out: hold it closer
    assert verdict("", []) == "none"
    assert verdict("dark", [line("EXIT")]) == "dark"
    # blur makes the recogniser invent text with confidence: not read out
    assert verdict("blurred", [line("三", 0.93)]) == "blurred"
    assert verdict("blurred", [line("Pethestsincaseoffe", 0.71)]) == "blurred"
    assert verdict("blurred", [line("Keep this door closed", 0.94)]) == "read"
    assert verdict("", [line("4", 0.99)]) == "read"  # a platform number alone, read clearly
    assert verdict("", [line("路", 0.61)]) == "none"  # a lone weak character in a sharp scene: no text


def test_spoken_chunks():
    sign = [line(t) for t in ("SALE", "70%", "ALL YEAR ROUND", "OCBCBank")]
    assert spoken_chunks(sign) == (["SALE.", "70%.", "ALL YEAR ROUND.", "OCBC Bank."], False)
    prose = [line(t) for t in ("The quick brown dog jumped over the", "lazy fox. The quick brown dog", "jumped over it.")]
    pieces, cut = spoken_chunks(prose)
    assert pieces[0] == "The quick brown dog jumped over the" and not cut  # the first line alone: speech starts
    assert " ".join(pieces) == "The quick brown dog jumped over the lazy fox. The quick brown dog jumped over it."
    assert spoken_chunks([line("infor-"), line("mation desk")]) == (["information desk."], False)
    pieces, cut = spoken_chunks([line("one two three four five")] * 5, max_words=12)
    assert cut and sum(len(p.split()) for p in pieces) == 12
    assert spoken_chunks([line("one two three")] * 2, max_words=6)[1] is False  # exactly all of it: no "and more"


def test_pick_sharpest_near_the_end():
    img = np.zeros((4, 4, 3), np.uint8)
    frames = [FrameSnapshot(t, img, s, 1.0) for t, s in ((5.0, 900.0), (8.9, 120.0), (9.5, 300.0), (10.1, 80.0))]
    assert pick_sharpest(frames, 10.0).t == 9.5  # the sharper one at 5.0 s is from before the question's end
    assert pick_sharpest(frames, 30.0) is None

"""Memory end to end on a generated replay, through the entry the command line uses.

Three minutes of a wearer looking at a kitchen counter, a desk and a shelf while coloured
objects are put down and moved (tests/memory_scene.py), replayed with `--memory` by
`pipelines.app.replay` with the real recorded source, VAD, keyframe picker, store, face
blurring, memory skill and renderer. The VLM is a fake that sees: it captions each keyframe by
the colours and places it finds in the image. At the end the wearer asks where the red cup
is, and about a passport that was never shown.
"""
import json

import numpy as np
import pytest

from glasses.display import evidence_box, light_pixel_box
from pipelines.app import ReplayOptions, UsageError, replay
from pipelines.memory.skill import NOT_SEEN
from pipelines.memory.store import MemoryStore
from tests.cli_helpers import frame_at, one_line_error, run_demo
from tests.fakes import FakeTTS, ScriptedASR
from tests.memory_scene import RED_CUP_LAST_PUT, SeeingVLM, draw_scene, make_memory_clip

ASK_CUP, ASK_PASSPORT = 170.0, 176.0
CUP = "where did I leave the red cup?"
PASSPORT = "where did I leave my passport?"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_memory_clip(tmp_path_factory.mktemp("clip") / "rooms.mp4")


@pytest.fixture(scope="module")
def run(clip, tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    opts = ReplayOptions(clip, out=folder / "out", progress=False, memory=folder / "memory", turn="silence",
                         asks=((ASK_CUP, CUP), (ASK_PASSPORT, PASSPORT)))
    vlm = SeeingVLM()
    result = replay(opts, asr=ScriptedASR([]), vlm=vlm, tts=FakeTTS())
    records = [json.loads(line) for line in (folder / "out" / "session.jsonl").read_text().splitlines()]
    return folder, result, records, vlm


def test_where_did_i_leave_it_names_the_moment_and_shows_the_evidence(run):
    folder, result, records, vlm = run
    cup, passport = result.turns
    assert cup["question"] == CUP and (cup["route"], cup["mode"]) == ("skill", "memory")
    # the answer rests on the keyframe of the cup's last move, and says when in words
    store = MemoryStore(folder / "memory")
    try:
        evidence = store.get(cup["memory"]["evidence"])
        assert evidence.caption == "A red cup on the right of the kitchen counter."
        assert RED_CUP_LAST_PUT <= evidence.media <= RED_CUP_LAST_PUT + 4.0  # picked within the picker's gap
        assert evidence.id in cup["memory"]["entries"] and evidence.has_thumbnail
        assert "red cup" in evidence.objects
    finally:
        store.close()
    assert cup["answer"] == "About two minutes ago, a red cup on the right of the kitchen counter."
    # never shown: no guess, no evidence
    assert passport["answer"] == NOT_SEEN and passport["memory"]["entries"] == [] and passport["memory"]["evidence"] is None


def test_the_display_shows_the_thumbnail_the_answer_rests_on(run):
    folder, result, _, _ = run
    video = folder / "out" / "annotated.mp4"

    def red_in_evidence_box(t):
        img = frame_at(video, t)
        x0, y0, x1, y1 = evidence_box(img.shape)
        box = img[y0:y1, x0:x1].astype(int)
        red = (box[..., 2] > 150) & (box[..., 1] < 90) & (box[..., 0] < 90)
        return red, x1 - x0

    before, _ = red_in_evidence_box(ASK_CUP - 5.0)  # the shelf, no answer yet: nothing red there
    during, side = red_in_evidence_box(ASK_CUP + 2.0)
    assert before.mean() < 0.01 and during.mean() > 0.05
    # the cup of the answer's entry stands on the right of its thumbnail, not on the left (the older sighting)
    xs = np.nonzero(during)[1]
    assert xs.mean() > side / 2
    after, _ = red_in_evidence_box(ASK_PASSPORT + 2.0)  # the next question cleared it
    assert after.mean() < 0.01
    # the light stays on while memory keeps frames, with no question asked
    img = frame_at(video, 5.0)
    x0, y0, x1, y1 = light_pixel_box(img.shape)
    assert img[y0:y1, x0:x1, 2].mean() > 180 and img[y0:y1, x0:x1, 1].mean() < 80


def test_keyframes_descriptions_and_the_session_record(run):
    folder, result, records, vlm = run
    session, end = records[0], records[-1]
    assert session["memory"]["folder"] == str(folder / "memory") and session["memory"]["days"] == 7.0
    m = end["memory"]
    # one keyframe per new view (the counter, the cup, the desk, the moved cup, the shelf, the keys,
    # the plant moved); a view looked at again is no keyframe
    assert 6 <= m["keyframes"] <= 9, m
    assert m["described"] == m["stored"] == m["entries"] == m["keyframes"] - m["skipped"]
    assert m["backlog"] == 0 and m["off"] == "" and m["cancelled"] == 0
    assert any("yellow keys on the right of the desk" in c for c in vlm.captions)


def test_a_memory_folder_that_is_not_ours_is_one_line_and_exit_2(clip, tmp_path):
    folder = tmp_path / "theirs"
    folder.mkdir()
    (folder / "memory.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(UsageError, match="--memory"):
        replay(ReplayOptions(clip, out=tmp_path / "o", progress=False, memory=folder), asr=ScriptedASR([]),
               vlm=SeeingVLM())
    assert not (tmp_path / "o").exists()  # refused before anything was written
    line = one_line_error(run_demo("replay", clip, "--memory", folder, "--out", tmp_path / "o2"))
    assert "--memory" in line and not (tmp_path / "o2").exists()


def test_live_keeps_what_it_sees_and_answers_from_it(tmp_path):
    """Live, on fake ports (tests/test_live.py): the describe threads keep keyframes while the
    session is idle, and the wearer's question is answered from them with the wall clock's time."""
    from glasses.camera import Camera
    from glasses.fakes import FakeCapture
    from tests.test_live import run_live

    def frame(i: int) -> np.ndarray:  # the scenes twenty times faster: the cup is put right 3 s in
        img = np.zeros((240, 320, 3), np.uint8)
        draw_scene(img, 20 * i / 30)
        return img

    camera = Camera(FakeCapture(frame, fps=30, frames=int(6.5 * 30), paced=False), kind="file")
    result, _, window, vlm, left = run_live(tmp_path, seconds=6.5, camera=camera, vlm=SeeingVLM(),
                                            asks=((5.5, CUP),), memory=tmp_path / "memory")
    assert left == []  # the keyframes and describe threads ended too
    (turn,) = result.turns
    assert turn["route"] == "skill" and turn["memory"]["evidence"] is not None
    assert turn["answer"] == "Just now, a red cup on the right of the kitchen counter."
    end = result.records[-1]
    assert end["type"] == "end" and end["memory"]["stored"] >= 2 and end["memory"]["off"] == ""
    store = MemoryStore(tmp_path / "memory")
    try:
        assert all(e.media is None for e in store.recent())  # live: wall time only
    finally:
        store.close()

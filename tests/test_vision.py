import cv2
import numpy as np

from core.messages import FrameSnapshot, VideoFrame
from pipelines.vision import FrameRing, exposure, fit_for_model, pick_frame, sharpness


def scene(blur=0, brightness=128, size=(360, 640)):
    img = np.full((*size, 3), brightness, np.uint8)
    cv2.rectangle(img, (250, 120), (390, 240), (0, 0, 255), -1)
    cv2.putText(img, "TEXT 123", (40, 320), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
    return cv2.GaussianBlur(img, (0, 0), blur) if blur else img


def test_sharpness_ranks_blur():
    assert sharpness(scene()) > sharpness(scene(blur=2)) > sharpness(scene(blur=6))


def test_exposure_prefers_mid_grey():
    assert exposure(scene(brightness=128)) > exposure(scene(brightness=245)) > exposure(np.zeros((50, 50, 3), np.uint8))
    assert exposure(np.zeros((50, 50, 3), np.uint8)) == 0.0


def snap(t, s, e=1.0):
    return FrameSnapshot(t, np.zeros((2, 2, 3), np.uint8), s, e)


def test_pick_prefers_sharp_frames_within_the_window():
    frames = [snap(0.5, 900), snap(1.0, 100), snap(1.5, 800), snap(1.9, 50), snap(4.0, 5000)]
    best = pick_frame(frames, 1.0, 2.0)
    assert best.t == 1.5  # sharp, near the end; the sharper frame at 4.0 is after the question


def test_pick_prefers_the_moment_just_before_speech_ended_among_equals():
    frames = [snap(t / 10, 500) for t in range(0, 31)]
    assert abs(pick_frame(frames, 0.0, 3.0).t - 2.7) < 0.15


def test_pick_penalises_bad_exposure():
    frames = [snap(1.6, 500, e=0.05), snap(1.5, 450, e=0.9)]
    assert pick_frame(frames, 1.0, 2.0).t == 1.5


def test_pick_falls_back_to_the_last_frame_before_and_none_without_frames():
    assert pick_frame([snap(0.1, 10), snap(0.2, 5)], 5.0, 6.0).t == 0.2
    assert pick_frame([], 0.0, 1.0) is None
    assert pick_frame([snap(9.0, 10)], 1.0, 2.0) is None


def test_fit_for_model_is_rgb_and_bounded():
    img = scene(size=(1080, 1920))
    out = fit_for_model(img, 512)
    assert max(out.shape[:2]) == 512 and out.shape[0] == 288
    assert tuple(out[180 * 288 // 1080, 320 * 512 // 1920]) == (255, 0, 0)  # BGR red became RGB red


def test_ring_is_bounded():
    ring = FrameRing(capacity=3)
    for i in range(5):
        ring.add(VideoFrame(i * 0.1, scene()))
    assert [round(f.t, 1) for f in ring.snapshot()] == [0.2, 0.3, 0.4]
    assert ring.dropped == 2 and ring.latest().t == 0.4


def test_scoring_keeps_the_thumbnail_that_same_view_would_make():
    from core.messages import VideoFrame
    from pipelines.vision import same_frame_view, score, thumbnail

    img = np.random.default_rng(5).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    snap = score(VideoFrame(1.0, img))
    assert snap.thumb is not None and np.array_equal(snap.thumb, thumbnail(img))  # made once, at scoring
    darker = score(VideoFrame(1.1, (img * 0.5).astype(np.uint8)))
    assert same_frame_view(snap, score(VideoFrame(1.2, img.copy()))) and not same_frame_view(snap, darker)

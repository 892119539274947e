"""Keyframe selection: pure functions on generated pictures, then the picker on the real clips."""
import cv2
import numpy as np
import pytest

from pipelines.memory.keyframes import (
    Exposure,
    KeyframeConfig,
    KeyframePicker,
    decide,
    difference,
    exposure,
    novelty,
    sharpness,
    signature,
)

CONFIG = KeyframeConfig()


def scene(seed: int, size=(360, 640)) -> np.ndarray:
    """A made-up room: coloured boxes and discs on a textured wall, RGB."""
    rng = np.random.default_rng(seed)
    h, w = size
    image = (rng.integers(90, 160, 3) + rng.normal(0, 12, (h, w, 3))).clip(0, 255).astype(np.uint8)
    for _ in range(14):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            cv2.rectangle(image, (x, y), (x + int(rng.integers(30, w // 3)), y + int(rng.integers(30, h // 3))), colour, -1)
        else:
            cv2.circle(image, (x, y), int(rng.integers(15, h // 4)), colour, -1)
    return image


def head_moved(image: np.ndarray, dx: int = 12, dy: int = 6, angle: float = 1.0) -> np.ndarray:
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    m[:, 2] += (dx, dy)
    return cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def judge(image, t=10.0, last_t=0.0, recent=(), config=CONFIG):
    return decide(t, signature(image), sharpness(image), exposure(image), last_t, list(recent), config)


def test_a_sharp_new_scene_after_the_gap_is_kept():
    assert judge(scene(1)) == (True, "new scene")
    assert judge(scene(1), last_t=None) == (True, "new scene")  # the very first frame


def test_a_blurred_frame_is_refused():
    assert judge(cv2.GaussianBlur(scene(1), (0, 0), 4)) == (False, "blurred")  # below the floor, whatever came before
    sharp = scene(1)
    shaken = cv2.filter2D(sharp, -1, np.full((1, 15), 1 / 15, np.float32))  # a head turn smears the view sideways
    reference = sharpness(sharp)
    assert decide(10, signature(shaken), sharpness(shaken), exposure(shaken), 0.0, [], CONFIG,
                  reference=reference) == (False, "blurred")
    assert decide(10, signature(sharp), sharpness(sharp), exposure(sharp), 0.0, [], CONFIG,
                  reference=reference) == (True, "new scene")


def test_dark_and_blown_out_frames_are_refused_but_a_white_page_of_text_is_not():
    assert judge((scene(1) * 0.06).astype(np.uint8)) == (False, "too dark")
    assert judge(np.clip(scene(1).astype(int) * 3 + 120, 0, 255).astype(np.uint8)) == (False, "blown out")
    page = np.full((360, 640, 3), 250, np.uint8)
    for i, y in enumerate(range(40, 330, 24)):
        cv2.putText(page, f"line {i}: remember the parking spot B12", (20, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 1)
    assert exposure(page).bright > 0.8
    assert judge(page) == (True, "new scene")


def test_the_same_scene_again_is_refused_even_after_a_small_head_motion():
    first = scene(1)
    again = head_moved(first)
    assert judge(again, recent=[signature(first)]) == (False, "same scene")
    assert judge(scene(2), recent=[signature(first)]) == (True, "new scene")


def test_a_new_scene_is_kept_only_after_min_gap():
    recent = [signature(scene(1))]
    assert judge(scene(2), t=2.0, last_t=0.0, recent=recent) == (False, "too soon")
    assert judge(scene(2), t=3.0, last_t=0.0, recent=recent) == (True, "new scene")


def test_novelty_is_the_distance_to_the_closest_recent_keyframe():
    a, b = scene(1), scene(2)
    assert novelty(signature(a), []) == 1.0
    assert novelty(signature(a), [signature(b), signature(a)]) == 0.0
    assert difference(signature(a), signature(b)) > CONFIG.novelty


def test_sharpness_means_the_same_at_any_resolution_and_contrast():
    image = scene(3, (720, 1280))
    small = cv2.resize(image, (640, 360), interpolation=cv2.INTER_AREA)
    flat = (image.astype(np.float32) * 0.4 + 80).astype(np.uint8)  # same picture, less contrast
    s = sharpness(image)
    assert sharpness(small) == pytest.approx(s, rel=0.35)
    assert sharpness(flat) == pytest.approx(s, rel=0.35)
    assert sharpness(cv2.GaussianBlur(image, (0, 0), 3)) < CONFIG.relative_sharpness * s
    assert sharpness(cv2.GaussianBlur(image, (0, 0), 8)) < CONFIG.min_sharpness < s


def test_exposure_counts_crushed_and_blown_pixels():
    half = np.zeros((100, 100, 3), np.uint8)
    half[:, 50:] = 255
    e = exposure(half)
    assert e.mean == pytest.approx(0.5, abs=0.02)
    assert e.dark == pytest.approx(0.5, abs=0.02) and e.bright == pytest.approx(0.5, abs=0.02)
    assert decide(10, signature(half), 1.0, Exposure(0.5, 0.95, 0.0), 0.0, [], CONFIG) == (False, "too dark")
    assert decide(10, signature(half), 1.0, Exposure(0.5, 0.0, 0.95), 0.0, [], CONFIG) == (False, "blown out")
    assert decide(10, signature(half), 1.0, Exposure(0.5, 0.0, 0.0), 0.0, [], CONFIG) == (True, "new scene")


def test_the_picker_waits_for_a_view_to_settle_and_refuses_a_smeared_frame_of_it():
    picker = KeyframePicker()
    assert picker.offer(0.0, scene(1)) == (False, "settling")  # nothing yet to judge its sharpness by
    assert picker.offer(0.1, scene(1)) == (True, "new scene")
    image = scene(2)
    for t in (2.5, 2.8):  # the second before the gap ends: measured, not kept
        assert picker.offer(t, image) == (False, "too soon")
    smeared = cv2.filter2D(image, -1, np.full((1, 15), 1 / 15, np.float32))
    assert picker.offer(3.1, smeared) == (False, "blurred")
    assert picker.offer(3.2, image) == (True, "new scene")
    assert picker.counts == {"new scene": 2, "too soon": 2, "settling": 1, "blurred": 1}
    assert len(picker.history) <= picker.history.maxlen


def test_the_picker_keeps_a_bounded_deque_and_counts_its_reasons():
    picker = KeyframePicker(KeyframeConfig(recent=4))
    kept = []
    for i in range(12):
        picker.offer(4.0 * i, scene(100 + i))
        kept.append(picker.offer(4.0 * i + 0.1, scene(100 + i))[0])
    assert all(kept) and len(picker.recent) == 4 and picker.recent.maxlen == 4
    assert picker.offer(45.0, scene(111)) == (False, "too soon")  # 0.9 s after the last one
    assert picker.offer(50.0, head_moved(scene(111))) == (False, "settling")
    assert picker.offer(50.1, head_moved(scene(111))) == (False, "same scene")
    picker.offer(60.0, scene(100))
    assert picker.offer(60.1, scene(100)) == (True, "new scene")  # seen 12 keyframes ago: forgotten
    assert picker.counts["new scene"] == 13 and picker.counts["same scene"] == 1


# --- real media ------------------------------------------------------------------------------------
def clips(shared_media):
    return sorted((shared_media / "video").glob("*.mp4"))


def frames(path):
    """RGB frames as the app sees them (RecordedSource: 640 px at most) with their times."""
    from core.messages import VideoFrame
    from glasses.recorded import RecordedSource

    source = RecordedSource(path)
    for item in source.events():
        if isinstance(item, VideoFrame):
            yield item.t, cv2.cvtColor(item.image, cv2.COLOR_BGR2RGB)


def walk(paths):
    """The clips one after another as one camera stream: a new place at each join."""
    offset = 0.0
    for path in paths:
        end = 0.0
        for t, image in frames(path):
            end = t
            yield offset + t, image
        offset += end + 1 / 30


def pick(stream, smeared=frozenset()):
    """Indices of the kept frames, smearing those in `smeared` as a head turn would; the picker; the end."""
    picker, kept, smear, t = KeyframePicker(), [], np.full((1, 31), 1 / 31, np.float32), 0.0
    for i, (t, image) in enumerate(stream):
        if picker.offer(t, cv2.filter2D(image, -1, smear) if i in smeared else image)[0]:
            kept.append(i)
    return kept, picker, t


def test_keyframes_on_the_shared_clips_are_few_and_skip_blurred_frames(shared_media):
    """Each clip alone, then all of them in a row (a new place at each join), twice: as they are,
    then with every other frame smeared as a shaking head would. No smeared frame may be kept,
    every clip must still give a keyframe, and there is always fewer than one per second."""
    paths = clips(shared_media)
    for path in paths:
        kept, _, end = pick(frames(path))
        assert kept and len(kept) < end, f"{path.name}: {len(kept)} keyframes in {end:.1f} s"
    kept, picker, end = pick(walk(paths))
    assert len(paths) <= len(kept) < end
    n = 10_000
    smeared = frozenset(range(1, n, 2))
    again, picker, _ = pick(walk(paths), smeared)
    assert not smeared & set(again), "a smeared frame was kept"
    assert len(paths) <= len(again) < end
    assert picker.counts["blurred"] >= len(again) - 1

"""glasses.render: annotated mp4s from small clips generated here with PyAV + OpenCV."""
from fractions import Fraction

import shutil
import subprocess

import av
import cv2
import numpy as np
import pytest

from glasses.display import light_pixel_box
from glasses.render import OUT_RATE, mix_speech, render_annotated
from core.messages import DisplayState

TONE_HZ, VOICE_HZ = 440.0, 1000.0
TIMELINE = [
    (0.0, DisplayState(status="idle")),
    (1.0, DisplayState(light=True, status="speaking", caption="what is this?", answer="a square")),
]


def _voice(seconds, rate=16_000, amp=0.5):
    return (amp * np.sin(2 * np.pi * VOICE_HZ * np.arange(round(seconds * rate)) / rate)).astype(np.float32)


def _make_clip(path, *, size=(320, 240), fps=10, seconds=2.0, audio=True, video=True, rotate=0, times=None, layout="mono"):
    """A clip with a white square and a time counter, and a 440 Hz tone at 44.1 kHz."""
    out = av.open(str(path), "w")
    rate = 44_100
    if audio:  # every stream must exist before the first mux writes the header
        a = out.add_stream("aac", rate=rate, layout=layout)
    if video:
        v = out.add_stream("libx264", rate=fps, options={"bf": "0", "preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        v.time_base = v.codec_context.time_base = Fraction(1, 1000)
        if rotate:
            v.set_display_rotation(rotate)
        times = times if times is not None else [i / fps for i in range(round(seconds * fps))]
        for t in times:
            img = np.full((size[1], size[0], 3), (60, 90, 40), np.uint8)
            cv2.rectangle(img, (10, 10), (40, 40), (255, 255, 255), -1)
            cv2.putText(img, f"{t:.2f}", (60, 60), cv2.FONT_HERSHEY_SIMPLEX, 1, (200, 200, 200), 2)
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            out.mux(v.encode(frame))
        out.mux(v.encode())
    if audio:
        n = round(seconds * rate)
        x = (0.3 * np.sin(2 * np.pi * TONE_HZ * np.arange(n) / rate)).astype(np.float32)
        x = np.repeat(x[None], 1 if layout == "mono" else 2, axis=0)
        for p in range(0, n, 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, p : p + 1024]), format="fltp", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, p, Fraction(1, rate)
            out.mux(a.encode(frame))
        out.mux(a.encode())
    out.close()
    return path


def _ends(path):
    """{'video': s, 'audio': s}: where each stream ends as the container says (max pts +
    duration over packets), which is what a player shows."""
    ends = {}
    with av.open(str(path)) as c:
        for s in c.streams:
            c.seek(0)
            end = max(float((p.pts + p.duration) * s.time_base) for p in c.demux(s) if p.pts is not None)
            ends[s.type] = end
    return ends


def _audio(path):
    """The whole audio track as mono float32 at 48 kHz (decodes it to the end)."""
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=OUT_RATE)
    with av.open(str(path)) as c:
        chunks = [f.to_ndarray()[0] for frame in c.decode(audio=0) for f in resampler.resample(frame)]
    return np.concatenate(chunks)


def _frames(path):
    with av.open(str(path)) as c:
        return [(f.time, f.to_ndarray(format="bgr24")) for f in c.decode(video=0)]


def _frame_at(path, t):
    return min(_frames(path), key=lambda tf: abs(tf[0] - t))[1]


def _tone_amp(x, t0, t1, hz):
    """Amplitude of the `hz` component in x[t0:t1] (seconds)."""
    seg = x[round(t0 * OUT_RATE) : round(t1 * OUT_RATE)]
    n = np.arange(len(seg)) / OUT_RATE
    return 2 * abs(np.mean(seg * np.exp(-2j * np.pi * hz * n)))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    d = tmp_path_factory.mktemp("render")
    src = _make_clip(d / "src.mp4")
    out = render_annotated(src, d / "out.mp4", TIMELINE, [(1.0, _voice(0.5), 16_000)])
    return src, out


def test_output_has_h264_and_aac_streams(rendered):
    _, out = rendered
    with av.open(str(out)) as c:
        (v,), (a,) = c.streams.video, c.streams.audio
        assert v.codec_context.name == "h264" and v.codec_context.pix_fmt == "yuv420p"
        assert a.codec_context.name == "aac" and a.rate == OUT_RATE and a.channels == 2


def test_durations_match_the_source(rendered):
    src, out = rendered
    src_ends, out_ends = _ends(src), _ends(out)
    assert abs(out_ends["video"] - src_ends["video"]) <= 0.05
    assert abs(out_ends["audio"] - src_ends["audio"]) <= 0.05
    frames = _frames(out)  # decodes to the end
    assert len(frames) == 20 and abs(frames[-1][0] - 1.9) < 1e-3
    assert len(_audio(out)) >= (src_ends["audio"] - 0.05) * OUT_RATE


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="no ffmpeg binary to play it with")
def test_ffmpeg_decodes_the_output_without_errors(rendered):
    _, out = rendered
    run = subprocess.run(["ffmpeg", "-v", "error", "-i", str(out), "-f", "null", "-"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stderr == ""


def test_answer_is_mixed_in_and_the_original_ducked(rendered):
    _, out = rendered
    x = _audio(out)
    assert _tone_amp(x, 0.3, 0.8, VOICE_HZ) < 0.02  # no voice before the answer
    assert _tone_amp(x, 1.1, 1.4, VOICE_HZ) > 0.35  # the answer, at 0.5
    before, during = _tone_amp(x, 0.3, 0.8, TONE_HZ), _tone_amp(x, 1.1, 1.4, TONE_HZ)
    assert before > 0.25  # the mono 0.3 tone, at the same level on both sides
    assert 0.15 < during / before < 0.4  # -12 dB is 0.25
    assert _tone_amp(x, 1.6, 1.9, TONE_HZ) / before > 0.8  # back to full level after it
    rms = lambda t0, t1: np.sqrt(np.mean(x[round(t0 * OUT_RATE) : round(t1 * OUT_RATE)] ** 2))
    assert rms(1.1, 1.4) > 1.3 * rms(0.3, 0.8)


def test_overlay_follows_the_timeline(rendered):
    src, out = rendered
    box = light_pixel_box((240, 320))
    x0, y0, x1, y1 = box
    lit, dark = _frame_at(out, 1.5), _frame_at(out, 0.5)
    b, g, r = lit[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
    assert r > 170 and g < 90 and b < 90
    b, g, r = dark[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
    assert not (r > 170 and g < 90 and b < 90)
    diff = np.abs(lit.astype(int) - _frame_at(src, 1.5)).mean(axis=(1, 2))  # per row
    assert diff[60:120].mean() < 5  # the camera view is still there between the boxes
    assert diff[200:].mean() > 10  # the caption box


def test_source_without_audio_gets_an_audio_track(tmp_path):
    src = _make_clip(tmp_path / "mute.mp4", audio=False)
    out = render_annotated(src, tmp_path / "out.mp4", TIMELINE, [(1.0, _voice(0.5), 16_000)])
    ends = _ends(out)
    assert abs(ends["audio"] - _ends(src)["video"]) <= 0.05
    assert abs(ends["video"] - _ends(src)["video"]) <= 0.05
    x = _audio(out)
    assert np.abs(x[: OUT_RATE // 2]).max() < 0.01  # silence
    assert _tone_amp(x, 1.1, 1.4, VOICE_HZ) > 0.35


def test_audio_only_source_gets_black_video(tmp_path):
    src = _make_clip(tmp_path / "voice.m4a", video=False, seconds=2.03, layout="stereo")
    out = render_annotated(src, tmp_path / "out.mp4", TIMELINE, [], blank_size=(320, 180))
    ends, src_end = _ends(out), _ends(src)["audio"]
    assert abs(ends["video"] - src_end) <= 0.05 and abs(ends["audio"] - src_end) <= 0.05
    frames = _frames(out)
    assert len(frames) == 21 and frames[0][1].shape == (180, 320, 3)  # 10 fps
    assert frames[5][1][90, 160].max() < 30  # black where there is no overlay
    x0, y0, x1, y1 = light_pixel_box((180, 320))
    assert frames[-1][1][y0:y1, x0:x1, 2].mean() > 170  # the light, drawn at t >= 1


def test_answer_past_the_end_is_cut(tmp_path):
    src = _make_clip(tmp_path / "src.mp4")
    out = render_annotated(src, tmp_path / "out.mp4", [], [(1.8, _voice(1.0), 16_000)])
    assert abs(_ends(out)["audio"] - _ends(src)["audio"]) <= 0.05
    assert _tone_amp(_audio(out), 1.85, 1.95, VOICE_HZ) > 0.35


def test_variable_frame_rate_keeps_frame_times(tmp_path):
    times = [0.0, 0.1, 0.3, 0.35, 0.6, 1.0, 1.5]
    src = _make_clip(tmp_path / "vfr.mp4", times=times, audio=False)
    out = render_annotated(src, tmp_path / "out.mp4", TIMELINE, [])
    assert [round(t, 3) for t, _ in _frames(out)] == times
    assert abs(_ends(out)["video"] - _ends(src)["video"]) <= 0.05


def test_rotation_metadata_is_applied(tmp_path):
    src = _make_clip(tmp_path / "rot.mp4", rotate=90, seconds=0.3, audio=False)
    with av.open(str(src)) as c:
        assert next(c.decode(video=0)).rotation == 90  # the source really carries it
    img = _frames(render_annotated(src, tmp_path / "out.mp4", [], []))[0][1]
    assert img.shape == (320, 240, 3)  # upright: portrait
    # counter-clockwise 90 degrees: the square at the top-left goes to the bottom-left
    assert img[285:305, 15:35].min() > 200 and img[15:35, 15:35].max() < 200


def test_large_frames_are_downscaled_to_1280(tmp_path):
    src = _make_clip(tmp_path / "big.mp4", size=(1600, 900), seconds=0.2, audio=False)
    out = render_annotated(src, tmp_path / "out.mp4", TIMELINE, [], progress=True)
    assert _frames(out)[0][1].shape == (720, 1280, 3)


def test_mix_speech_is_pure_ducks_smoothly_and_cuts():
    n = OUT_RATE  # one second of a constant 0.5 on both channels
    original = np.full((2, n), 0.5, np.float32)
    voice = np.full(OUT_RATE // 4, 0.2, np.float32)  # 0.25 s at 48 kHz
    mixed = mix_speech(original, [(0.5, voice, OUT_RATE), (0.9, np.ones(OUT_RATE, np.float32), OUT_RATE)], -12.0)
    assert np.all(original == 0.5) and mixed.shape == (2, n) and mixed.dtype == np.float32
    duck = 0.5 * 10 ** (-12 / 20)
    assert mixed[0, round(0.6 * OUT_RATE)] == pytest.approx(duck + 0.2, abs=1e-5)
    assert mixed[0, round(0.2 * OUT_RATE)] == pytest.approx(0.5)
    assert np.abs(np.diff(mixed[0, : round(0.49 * OUT_RATE)])).max() < 1e-3  # a ramp, not a step
    assert mixed.max() <= 1.0  # 0.5 ducked + 1.0 clips, and the answer stops at the end
    assert mix_speech(original, [(2.0, voice, 16_000)]).tolist() == original.tolist()

"""glasses.render's streamed soundtrack and its safe write: block-wise mixing gives the
samples a whole-track mix gives, answers are read only while they sound, and a failed,
interrupted or disk-full render leaves no file behind."""
import errno
import itertools
from fractions import Fraction

import av
import numpy as np
import pytest

import glasses.render as render
from glasses.render import OUT_RATE, NoSpace, Soundtrack, mix_speech, render_annotated, space_needed
from tests.test_render import TIMELINE, VOICE_HZ, _audio, _make_clip, _tone_amp, _voice


def _old_mix_speech(original, speech, duck_db=-12.0, rate=OUT_RATE):
    """The whole-track mix as it was before streaming (answers at `rate` only): the reference."""
    n = original.shape[1]
    voice, duck = np.zeros(n, np.float32), np.zeros(n, np.float32)
    ramp = max(1, round(render.RAMP_S * rate))
    for start, samples, _ in speech:
        a = round(start * rate)
        b = a + len(samples)
        lo, hi = max(a, 0), min(b, n)
        if hi <= lo:
            continue
        voice[lo:hi] += samples[lo - a : hi - a]
        r0, r1 = max(a - ramp, 0), min(b + ramp, n)
        duck[r0:r1] = np.maximum(duck[r0:r1], np.interp(np.arange(r0, r1), [a - ramp, a, b, b + ramp], [0, 1, 1, 0]))
    return np.clip(original * (1 + (10 ** (duck_db / 20) - 1) * duck) + voice, -1, 1).astype(np.float32)


def _blocks(x, sizes):
    at = 0
    for size in itertools.cycle(sizes):
        if at >= x.shape[1]:
            return
        yield x[:, at : at + size]
        at += size


def _read_all(track, sizes=(1024, 5, 4000)):
    out = []
    for size in itertools.cycle(sizes):
        chunk = track.read(size)
        if chunk.shape[1] == 0:
            return np.concatenate(out, axis=1)
        out.append(chunk)


RNG = np.random.default_rng(1)
ORIGINAL = (RNG.standard_normal((2, 5 * OUT_RATE)) * 0.2).astype(np.float32)
SPEECH = [(0.5, RNG.standard_normal(30_000).astype(np.float32) * 0.3, OUT_RATE),
          (0.9, RNG.standard_normal(9_000).astype(np.float32) * 0.3, OUT_RATE),  # overlaps the first
          (4.99, np.ones(OUT_RATE, np.float32), OUT_RATE),  # runs past the end
          (0.0, np.ones(100, np.float32), OUT_RATE),  # given out of order
          (2.0, np.ones(5, np.float32) * 0.5, OUT_RATE)]


def test_mixing_whole_is_what_it_was_before_streaming():
    assert np.array_equal(mix_speech(ORIGINAL, SPEECH), _old_mix_speech(ORIGINAL, SPEECH))


@pytest.mark.parametrize("sizes", [[1024], [1115, 7, 3000], [5 * OUT_RATE]])
def test_the_soundtrack_read_in_blocks_is_the_whole_mix_sample_for_sample(sizes):
    track = Soundtrack(_blocks(ORIGINAL, sizes), SPEECH)
    assert np.array_equal(_read_all(track), _old_mix_speech(ORIGINAL, SPEECH))
    assert track.read(1024).shape == (2, 0)


def test_an_answer_is_read_only_when_it_starts_to_sound_and_dropped_after():
    reads = []

    def reader(name, seconds):
        def read():
            reads.append(name)
            return _voice(seconds, OUT_RATE)
        return read

    track = Soundtrack(_blocks(np.zeros((2, 4 * OUT_RATE), np.float32), [1024]),
                       [(1.0, reader("a", 0.5), OUT_RATE), (3.0, reader("b", 0.5), OUT_RATE)])
    track.read(OUT_RATE // 2)
    assert reads == []
    track.read(OUT_RATE)  # to 1.5 s: the first is sounding
    assert reads == ["a"] and len(track._sounding) == 1
    track.read(OUT_RATE)  # to 2.5 s: it has ended (and faded back)
    track.read(1024)  # so the next read lets it go; the second is not read yet
    assert reads == ["a"] and track._sounding == []
    assert _read_all(track).shape[1] == int(1.5 * OUT_RATE) - 1024 and reads == ["a", "b"]


def test_an_answer_at_another_rate_sounds_in_place_and_at_its_level():
    click = np.zeros(22_050, np.float32)
    click[100] = 0.9  # 100 samples into an answer that starts at 1 s
    track = Soundtrack(_blocks(np.zeros((2, 3 * OUT_RATE), np.float32), [1024]),
                       [(1.0, click, 22_050), (2.0, _voice(0.5, 16_000), 16_000)])
    x = _read_all(track)
    assert abs(int(np.argmax(x[0])) - (OUT_RATE + 100 * OUT_RATE / 22_050)) <= 1
    assert _tone_amp(x[0], 2.05, 2.45, VOICE_HZ) == pytest.approx(0.5, abs=0.01)


def test_audio_that_starts_late_is_front_padded(tmp_path):
    """An audio stream that starts 0.5 s after the video: silence, then the tone, in place."""
    path = tmp_path / "late.mp4"
    with av.open(str(path), "w") as out:
        a = out.add_stream("aac", rate=OUT_RATE, layout="mono")
        v = out.add_stream("libx264", rate=10, options={"bf": "0", "preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = 160, 120, "yuv420p"
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.zeros((120, 160, 3), np.uint8), format="bgr24")
            frame.pts, frame.time_base = i * 100, Fraction(1, 1000)
            out.mux(v.encode(frame))
        out.mux(v.encode())
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(OUT_RATE) / OUT_RATE)).astype(np.float32)[None]
        for p in range(0, OUT_RATE, 1024):
            chunk = np.ascontiguousarray(tone[:, p : p + 1024])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = OUT_RATE, OUT_RATE // 2 + p, Fraction(1, OUT_RATE)
            out.mux(a.encode(frame))
        out.mux(a.encode())
    x = np.concatenate(list(render._source_audio(path, 0.0)), axis=1)
    assert x.shape[0] == 2 and abs(x.shape[1] - 1.5 * OUT_RATE) <= 1024
    assert np.abs(x[:, : int(0.45 * OUT_RATE)]).max() < 1e-3
    assert _tone_amp(x[0], 0.6, 1.4, 440.0) > 0.25


def test_a_render_is_written_under_another_name_and_renamed_when_whole(tmp_path, monkeypatch):
    src = _make_clip(tmp_path / "src.mp4")
    seen = []
    real = render._mux_video
    monkeypatch.setattr(render, "_mux_video", lambda out, *a: (seen.append(sorted(p.name for p in tmp_path.iterdir())),
                                                               real(out, *a)))
    render_annotated(src, tmp_path / "out.mp4", TIMELINE, [(1.0, lambda: _voice(0.5), 16_000)])
    assert "out.mp4.part" in seen[0] and "out.mp4" not in seen[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "src.mp4"]
    assert _tone_amp(_audio(tmp_path / "out.mp4"), 1.1, 1.4, VOICE_HZ) > 0.35  # a read-back answer is mixed in


@pytest.mark.parametrize("fault", [KeyboardInterrupt(), RuntimeError("boom")])
def test_an_interrupted_or_failed_render_leaves_nothing(tmp_path, monkeypatch, fault):
    src = _make_clip(tmp_path / "src.mp4")
    calls = itertools.count()

    def overlay(image, state):
        if next(calls) == 10:
            raise fault
        return image

    monkeypatch.setattr(render, "draw_overlay", overlay)
    with pytest.raises(type(fault)):
        render_annotated(src, tmp_path / "out.mp4", TIMELINE, [], progress=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.mp4"]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_a_full_disk_removes_the_partial_video_and_estimates_the_size(tmp_path, monkeypatch, code):
    src = _make_clip(tmp_path / "src.mp4", seconds=3.0)
    real = render._mux_video
    frames = itertools.count()

    def mux(out, packets, durations):
        real(out, packets, durations)
        if next(frames) == 20:  # two seconds in
            raise OSError(code, "No space left on device")

    monkeypatch.setattr(render, "_mux_video", mux)
    with pytest.raises(NoSpace) as info:
        render_annotated(src, tmp_path / "out.mp4", TIMELINE, [])
    assert info.value.errno == code and info.value.needed > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.mp4"]
    monkeypatch.setattr(render, "_mux_video", real)
    whole = render_annotated(src, tmp_path / "whole.mp4", TIMELINE, []).stat().st_size
    assert 0.3 * whole < info.value.needed < 3 * whole  # "about": the bitrate so far times the duration


def test_space_needed_scales_the_bitrate_so_far():
    assert space_needed(1_000_000, 10.0, 600.0, 5) == 60_000_000
    assert space_needed(60_000, 0.2, 600.0, 9_000_000) == 9_000_000  # too early to tell: the source's size
    assert space_needed(8_000_000, 600.0, 600.0, 0) == 8_000_000  # failed at the end (the trailer)
    assert space_needed(0, 0.0, 0.0, 0) == 0

"""The annotated replay: the source clip again, with the heads-up display drawn on every
frame and the assistant's spoken answers mixed into the sound.

Why PyAV (not cv2.VideoWriter or an ffmpeg subprocess): one library decodes the source
with its real timestamps (variable frame rate, rotation, any audio layout) and encodes
h264 + AAC into an mp4 that ordinary players open, with no binary to find at run time.

Times in `timeline` and `speech` are seconds from the start of the clip (the container's
start time), the same media time the replay's session clock reads. Video frames are
streamed (one frame in memory at a time); the audio track is mixed in memory at 48 kHz
(about 23 MB per minute), which keeps the ducking and cutting simple and exact.
"""
from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import av
import cv2
import numpy as np

from glasses.display import draw_overlay, state_at
from core.messages import DisplayState

__all__ = ["render_annotated", "mix_speech", "OUT_RATE"]

OUT_RATE = 48_000  # AAC output: 48 kHz stereo fltp
AAC_FRAME = 1024  # samples per AAC frame
MAX_SIDE = 1280  # frames larger than this on the longest side are downscaled
BLANK_FPS = 10  # frame rate of the black video made for audio-only sources
RAMP_S = 0.030  # ducking fades in/out over 30 ms so the original never clicks
# No B-frames: packets then leave x264 in display order with dts == pts, so each packet
# can carry its own frame's duration and the mp4 ends exactly where the source ends.
X264_OPTIONS = {"preset": "veryfast", "crf": "23", "bf": "0"}
AHEAD_S = 0.25  # audio is muxed this far ahead of the video, to interleave the file


def render_annotated(
    src_path,
    out_path,
    timeline: Sequence[tuple[float, DisplayState]],
    speech: Sequence[tuple[float, np.ndarray, int]],
    *,
    duck_db: float = -12.0,
    blank_size: tuple[int, int] = (640, 360),
    progress: bool = False,
) -> Path:
    """Write `out_path` (mp4, h264 yuv420p + AAC 48 kHz stereo): `src_path` with
    draw_overlay(frame, state_at(timeline, t)) on every frame and each (start_s, samples,
    rate) of `speech` mixed in over the original, which is ducked by `duck_db` meanwhile.
    The output has the source's duration and frame timing; a source without audio gets
    a track of silence plus the answers, an audio-only source `blank_size` black frames."""
    src_path, out_path = Path(src_path), Path(out_path)
    timeline = sorted(timeline, key=lambda entry: entry[0])  # stable: equal times keep order
    with av.open(str(src_path)) as probe:
        t0 = (probe.start_time or 0) / av.time_base  # origin of every time in this module
        video = _camera_stream(probe)
        has_video, has_audio = video is not None, bool(probe.streams.audio)
        if not (has_video or has_audio):
            raise ValueError(f"{src_path}: no video or audio stream")
        video_end = _video_end(probe, video, t0) if has_video else 0.0
        rate = _nominal_rate(video) if has_video else Fraction(BLANK_FPS)
        video_index = video.index if has_video else None
    original = _decode_audio(src_path, t0) if has_audio else None
    n = original.shape[1] if original is not None else round(video_end * OUT_RATE)
    audio = mix_speech(original if original is not None else np.zeros((2, n), np.float32), speech, duck_db)
    duration = n / OUT_RATE if has_audio else video_end

    out_path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out_path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        if has_video:
            frames = _source_frames(src_path, video_index, t0)
        else:
            frames = _blank_frames(duration, blank_size)
        first = next(frames, None)
        if first is None:
            raise ValueError(f"{src_path}: no decodable video frames")
        _, image, time_base, _ = first
        size = _output_size(image.shape)
        vout = out.add_stream("libx264", rate=rate, options=X264_OPTIONS)
        vout.width, vout.height, vout.pix_fmt = size[0], size[1], "yuv420p"
        vout.time_base = vout.codec_context.time_base = time_base
        aout = out.add_stream("aac", rate=OUT_RATE, layout="stereo", format="fltp")
        aout.time_base = Fraction(1, OUT_RATE)
        audio_pos = 0  # next sample of `audio` to encode

        bar = _progress_bar(progress, max(duration, video_end), src_path.name)
        last_pts, durations = None, {}
        for t, image, _, (pts, dur) in itertools.chain([first], frames):
            audio_pos = _mux_audio(out, aout, audio, audio_pos, round((t + AHEAD_S) * OUT_RATE))
            if image.shape[1::-1] != size:
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            frame = av.VideoFrame.from_ndarray(draw_overlay(image, state_at(timeline, t)), format="bgr24")
            if last_pts is not None and pts <= last_pts:  # x264 needs strictly rising pts
                pts = last_pts + 1
            frame.pts, frame.time_base, last_pts = pts, time_base, pts
            durations[pts] = dur
            _mux_video(out, vout.encode(frame), durations)
            if bar is not None:
                bar.update(max(0, min(round(t * 1000), bar.total) - bar.n))
        _mux_video(out, vout.encode(None), durations)
        _mux_audio(out, aout, audio, audio_pos, n)
        out.mux(aout.encode(None))
        if bar is not None:
            bar.update(bar.total - bar.n)
            bar.close()
    return out_path


def mix_speech(
    original: np.ndarray, speech: Sequence[tuple[float, np.ndarray, int]], duck_db: float = -12.0, rate: int = OUT_RATE
) -> np.ndarray:
    """Pure: (2, N) float32 `original` at `rate` with every answer (start_s, mono samples,
    its rate) resampled and added to both channels; the original is ducked by `duck_db`
    while an answer plays (30 ms linear ramps), answers past the end are cut, result
    clipped to [-1, 1]. The input is not modified."""
    n = original.shape[1]
    voice = np.zeros(n, np.float32)
    duck = np.zeros(n, np.float32)  # 0 = original at full level, 1 = fully ducked
    ramp = max(1, round(RAMP_S * rate))
    for start, samples, sr in speech:
        samples = _resample(np.asarray(samples, np.float32).reshape(-1), sr, rate)
        a = round(start * rate)
        b = a + len(samples)
        lo, hi = max(a, 0), min(b, n)
        if hi <= lo:
            continue
        voice[lo:hi] += samples[lo - a : hi - a]
        r0, r1 = max(a - ramp, 0), min(b + ramp, n)
        idx = np.arange(r0, r1)
        duck[r0:r1] = np.maximum(duck[r0:r1], np.interp(idx, [a - ramp, a, b, b + ramp], [0, 1, 1, 0]))
    gain = 1 + (10 ** (duck_db / 20) - 1) * duck
    return np.clip(original * gain + voice, -1, 1).astype(np.float32)


def _resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Linear-interpolation resampling: plenty for speech played over a replay."""
    if rate_in == rate_out or len(x) == 0:
        return x
    m = round(len(x) * rate_out / rate_in)
    return np.interp(np.arange(m) * (rate_in / rate_out), np.arange(len(x)), x).astype(np.float32)


def _camera_stream(container):
    """The first real video stream; cover art in an audio file (attached_pic) is not one."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _video_end(container, stream, t0: float) -> float:
    """End of the video stream in seconds from t0: max(pts + duration) over its packets
    (a demux without decoding, cheap); stream metadata is often missing (webm)."""
    end = 0.0
    for packet in container.demux(stream):
        if packet.pts is not None:
            end = max(end, float((packet.pts + (packet.duration or 0)) * stream.time_base) - t0)
    return end


def _decode_audio(path: Path, t0: float) -> np.ndarray:
    """The first audio stream as (2, N) float32 at 48 kHz, sample 0 at t0 (a stream that
    starts later is front-padded with silence, one that starts earlier is trimmed), cut
    where the container says it ends (the decoder returns AAC's end padding too)."""
    chunks, offset, end = [], None, 0.0
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        # mono stays mono and is copied to both sides below: swresample's mono->stereo
        # matrix would put it 3 dB lower on each side
        mono = stream.codec_context.channels == 1
        resampler = av.AudioResampler(format="fltp", layout="mono" if mono else "stereo", rate=OUT_RATE)
        for frame in container.decode(stream):
            if frame.time is not None:
                offset = round((frame.time - t0) * OUT_RATE) if offset is None else offset
                dur = frame.duration * frame.time_base if frame.duration else frame.samples / frame.sample_rate
                end = max(end, frame.time + float(dur) - t0)
            chunks += [f.to_ndarray() for f in resampler.resample(frame)]
    chunks += [f.to_ndarray() for f in resampler.resample(None)]
    audio = np.concatenate(chunks, axis=1) if chunks else np.zeros((2, 0), np.float32)
    audio = np.repeat(audio, 2, axis=0) if audio.shape[0] == 1 else audio
    offset = offset or 0
    if offset > 0:
        audio = np.concatenate([np.zeros((2, offset), np.float32), audio], axis=1)
    elif offset < 0:
        audio = audio[:, -offset:]
    if end > 0:  # the last AAC frame decodes whole (1024 samples); its packet says how many count
        audio = audio[:, : round(end * OUT_RATE)]
    return np.ascontiguousarray(audio, np.float32)


Item = tuple[float, np.ndarray, Fraction, tuple[int, int]]  # (t, BGR image, time_base, (pts, duration))


def _source_frames(path: Path, index: int, t0: float) -> Iterator[Item]:
    """Decoded video frames, upright (the display-matrix rotation applied), with their
    time from t0 and their pts/duration moved to start at 0 in the stream's time_base."""
    with av.open(str(path)) as container:
        stream = container.streams[index]
        stream.thread_type = "AUTO"
        tb = stream.time_base
        base = round(t0 / tb)
        fallback = max(1, round(1 / (float(stream.guessed_rate or 30) * tb)))
        next_pts = base
        for frame in container.decode(stream):
            pts = frame.pts if frame.pts is not None else next_pts
            dur = frame.duration or fallback
            next_pts = pts + dur
            image = frame.to_ndarray(format="bgr24")
            k = round((frame.rotation or 0) / 90) % 4
            if k:  # rotation is counter-clockwise degrees, the sense of np.rot90
                image = np.ascontiguousarray(np.rot90(image, k))
            yield float((pts - base) * tb), image, tb, (pts - base, dur)


def _blank_frames(duration: float, size: tuple[int, int]) -> Iterator[Item]:
    """Black frames at BLANK_FPS covering `duration`; the last one is shortened so the
    track ends with the audio (time_base 1 ms)."""
    tb = Fraction(1, 1000)
    end = max(1, round(duration * 1000))
    step = 1000 // BLANK_FPS
    w, h = size
    for pts in range(0, end, step):
        yield pts / 1000, np.zeros((h, w, 3), np.uint8), tb, (pts, min(step, end - pts))


def _output_size(shape) -> tuple[int, int]:
    """(width, height): at most MAX_SIDE on the longest side, both even for yuv420p."""
    h, w = shape[:2]
    s = min(1.0, MAX_SIDE / max(h, w))
    return max(2, round(w * s / 2) * 2), max(2, round(h * s / 2) * 2)


def _nominal_rate(stream) -> Fraction:
    """Nominal frame rate for the encoder (rate control only; pts carry the real timing)."""
    rate = stream.guessed_rate or stream.average_rate
    return Fraction(rate).limit_denominator(1001) if rate else Fraction(30)


def _mux_video(out, packets, durations: dict[int, int]) -> None:
    """Mux video packets, each with the duration of the frame it encodes: libx264 via
    PyAV does not carry frame.duration through, and the mp4 muxer takes the last
    frame's duration (so the track's end) from its packet."""
    for packet in packets:
        packet.duration = durations.pop(packet.pts, packet.duration)
        out.mux_one(packet)


def _mux_audio(out, stream, audio: np.ndarray, pos: int, until: int) -> int:
    """Encode and mux whole AAC frames of `audio` from `pos` up to `until` (the last,
    shorter frame only at the very end); returns the new position."""
    n = audio.shape[1]
    until = min(until, n)
    while pos < until and (until - pos >= AAC_FRAME or until == n):
        chunk = np.ascontiguousarray(audio[:, pos : pos + AAC_FRAME])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = OUT_RATE, pos, Fraction(1, OUT_RATE)
        out.mux(stream.encode(frame))
        pos += chunk.shape[1]
    return pos


def _progress_bar(enabled: bool, duration: float, name: str):
    """A tqdm bar over media time, or None; it counts whole milliseconds (no float drift
    past the total) and shows seconds."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=round(duration * 1000), unit="s", unit_scale=0.001, desc=f"render {name}",
                bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s")

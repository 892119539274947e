"""The annotated replay: the source clip again, with the heads-up display drawn on every
frame and the assistant's spoken answers mixed into the sound.

Why PyAV (not cv2.VideoWriter or an ffmpeg subprocess): one library decodes the source
with its real timestamps (variable frame rate, rotation, any audio layout) and encodes
h264 + AAC into an mp4 that ordinary players open, with no binary to find at run time.

Times in `timeline` and `speech` are seconds from the start of the clip (the container's
start time), the same media time the replay's session clock reads. Everything is streamed,
so memory stays flat whatever the clip's length or the number of answers: one video frame
at a time, and the sound in blocks of about 20 ms, decoded, mixed with the answers that
overlap the block (`mix_speech`, pure) and encoded as the video reaches them. An answer's
samples may be a function that reads them: it is called only when the answer starts to
sound, and they are dropped once it has.

The file is written under a temporary name next to `out_path` and renamed when complete, so
a crash, Ctrl+C or a full disk never leaves a truncated video that plays as if it were whole.
"""
from __future__ import annotations

import errno
import itertools
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Sequence

import av
import cv2
import numpy as np

from core.audio import resample
from core.messages import DisplayState
from glasses.display import draw_overlay, state_at

__all__ = ["render_annotated", "mix_speech", "Soundtrack", "NoSpace", "space_needed", "OUT_RATE"]

OUT_RATE = 48_000  # AAC output: 48 kHz stereo fltp
AAC_FRAME = 1024  # samples per AAC frame
MAX_SIDE = 1280  # frames larger than this on the longest side are downscaled
BLANK_FPS = 10  # frame rate of the black video made for audio-only sources
RAMP_S = 0.030  # ducking fades in/out over 30 ms so the original never clicks
# No B-frames: packets then leave x264 in display order with dts == pts, so each packet
# can carry its own frame's duration and the mp4 ends exactly where the source ends.
X264_OPTIONS = {"preset": "veryfast", "crf": "23", "bf": "0"}
AHEAD_S = 0.25  # audio is muxed this far ahead of the video, to interleave the file
NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}  # "the disk is full" in its three spellings

# (start_s, mono samples or a function returning them, their rate)
Speech = Sequence[tuple[float, "np.ndarray | Callable[[], np.ndarray]", int]]


class NoSpace(OSError):
    """The disk filled up while the video was written; the partial file has been removed.
    `needed` estimates the whole video's size in bytes."""

    def __init__(self, path: Path, needed: int, cause: OSError):
        super().__init__(cause.errno, cause.strerror or os.strerror(cause.errno), str(path))
        self.needed = needed


@dataclass
class _Reached:
    """How far the writing got: media seconds muxed, of `duration` (for the size estimate)."""

    t: float = 0.0
    duration: float = 0.0


def render_annotated(
    src_path,
    out_path,
    timeline: Sequence[tuple[float, DisplayState]],
    speech: Speech,
    *,
    duck_db: float = -12.0,
    blank_size: tuple[int, int] = (640, 360),
    progress: bool = False,
    camera: Callable[[Iterator[tuple[float, np.ndarray, object]]], Iterator] | None = None,
) -> Path:
    """Write `out_path` (mp4, h264 yuv420p + AAC 48 kHz stereo): `src_path` with
    draw_overlay(frame, state_at(timeline, t)) on every frame and each (start_s, samples,
    rate) of `speech` mixed in over the original, which is ducked by `duck_db` meanwhile.
    The output has the source's duration and frame timing; a source without audio gets
    a track of silence plus the answers, an audio-only source `blank_size` black frames.
    `camera`, when given, rewrites the stream of (t, BGR frame at the output size, anything) before
    the overlay is drawn (faces blurred): it keeps order and count, and may hold a few frames back.
    On any failure or interruption nothing is left at `out_path`; a full disk raises NoSpace."""
    src_path, out_path = Path(src_path), Path(out_path)
    timeline = sorted(timeline, key=lambda entry: entry[0])  # stable: equal times keep order
    out_path.parent.mkdir(parents=True, exist_ok=True)
    part = out_path.with_name(out_path.name + ".part")
    reached = _Reached()
    try:
        _write(src_path, part, timeline, speech, duck_db, blank_size, progress, reached, camera)
        os.replace(part, out_path)
    except BaseException as err:
        written = part.stat().st_size if part.exists() else 0
        part.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in NO_SPACE:
            fallback = src_path.stat().st_size if src_path.exists() else 0
            raise NoSpace(out_path, space_needed(written, reached.t, reached.duration, fallback), err) from err
        raise
    return out_path


def space_needed(written: int, t: float, duration: float, fallback: int) -> int:
    """Pure: the bytes a whole video needs, from `written` bytes for its first `t` of
    `duration` seconds (the bitrate so far); `fallback` (the source's size) when too
    little was written to tell; never less than what was written."""
    if t < 1.0 or duration <= 0:
        return max(written, fallback)
    return max(written, round(written / t * duration))


def _write(src_path: Path, path: Path, timeline, speech: Speech, duck_db: float, blank_size, progress: bool,
           reached: _Reached, camera=None) -> None:
    with av.open(str(src_path)) as probe:
        t0 = (probe.start_time or 0) / av.time_base  # origin of every time in this module
        video = _camera_stream(probe)
        audio = probe.streams.audio[0] if probe.streams.audio else None
        if video is None and audio is None:
            raise ValueError(f"{src_path}: no video or audio stream")
        ends = _stream_ends(probe, [s for s in (video, audio) if s is not None], t0)
        video_end, audio_end = (ends.get(s.index, 0.0) if s is not None else 0.0 for s in (video, audio))
        if audio is not None and audio_end <= 0 and probe.duration:
            audio_end = probe.duration / av.time_base  # no packet said where it ends
        rate = _nominal_rate(video) if video is not None else Fraction(BLANK_FPS)
        video_index = video.index if video is not None else None
    n = round(video_end * OUT_RATE)  # a source without sound gets silence
    silence = (np.zeros((2, min(OUT_RATE, n - p)), np.float32) for p in range(0, n, OUT_RATE))
    track = Soundtrack(_source_audio(src_path, t0) if audio is not None else silence, speech, duck_db)
    duration = audio_end if audio is not None else video_end
    reached.duration = max(duration, video_end)

    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        if video_index is not None:
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

        bar = _progress_bar(progress, reached.duration, src_path.name)
        try:
            last_pts, durations = None, {}
            sized = ((t, image if image.shape[1::-1] == size else cv2.resize(image, size, interpolation=cv2.INTER_AREA),
                      timing) for t, image, _, timing in itertools.chain([first], frames))
            for t, image, (pts, dur) in camera(sized) if camera is not None else sized:
                _mux_audio(out, aout, track, round((t + AHEAD_S) * OUT_RATE))
                frame = av.VideoFrame.from_ndarray(draw_overlay(image, state_at(timeline, t)), format="bgr24")
                if last_pts is not None and pts <= last_pts:  # x264 needs strictly rising pts
                    pts = last_pts + 1
                frame.pts, frame.time_base, last_pts = pts, time_base, pts
                durations[pts] = dur
                _mux_video(out, vout.encode(frame), durations)
                reached.t = t
                if bar is not None:
                    bar.update(max(0, min(round(t * 1000), bar.total) - bar.n))
            _mux_video(out, vout.encode(None), durations)
            _mux_audio(out, aout, track, None)
            out.mux(aout.encode(None))
            reached.t = reached.duration
            if bar is not None:
                bar.update(bar.total - bar.n)
        finally:
            if bar is not None:
                bar.close()  # ends the bar's line, so whatever is said next starts on its own


def mix_speech(original: np.ndarray, speech: Sequence[tuple[float, np.ndarray, int]], duck_db: float = -12.0,
               rate: int = OUT_RATE, at: int = 0) -> np.ndarray:
    """Pure: (2, N) float32 `original` at `rate`, the block of the track that starts at
    sample `at`, with every answer (start_s, mono samples, their rate) that overlaps it
    resampled and added to both channels; the original is ducked by `duck_db` while an
    answer plays (30 ms linear ramps on either side), answers past the block are cut, the
    result clipped to [-1, 1]. Mixing a track block by block gives the same samples as
    mixing it whole. The input is not modified."""
    n = original.shape[1]
    voice = np.zeros(n, np.float32)
    duck = np.zeros(n, np.float32)  # 0 = original at full level, 1 = fully ducked
    ramp = max(1, round(RAMP_S * rate))
    for start, samples, sr in speech:
        samples = resample(np.asarray(samples, np.float32).reshape(-1), sr, rate)
        a = round(start * rate)
        b = a + len(samples)
        r0, r1 = max(a - ramp, at), min(b + ramp, at + n)
        if b <= a or r1 <= r0:
            continue
        lo, hi = max(a, at), min(b, at + n)
        if hi > lo:
            voice[lo - at : hi - at] += samples[lo - a : hi - a]
        idx = np.arange(r0, r1)
        duck[r0 - at : r1 - at] = np.maximum(duck[r0 - at : r1 - at],
                                             np.interp(idx, [a - ramp, a, b, b + ramp], [0, 1, 1, 0]))
    gain = 1 + (10 ** (duck_db / 20) - 1) * duck
    return np.clip(original * gain + voice, -1, 1).astype(np.float32)


class Soundtrack:
    """The output's sound, read in order: blocks of the original (or of silence) with the
    answers mixed in. An answer's samples are fetched and resampled when the read reaches
    its fade-in and dropped after its fade-out, so only the answers sounding now are held."""

    def __init__(self, original: Iterator[np.ndarray], speech: Speech, duck_db: float = -12.0):
        self.pos = 0  # samples read so far
        self._original, self._queue, self._queued = original, [], 0
        self._duck_db = duck_db
        self._ramp = max(1, round(RAMP_S * OUT_RATE))
        # (first sample, order given, start_s, samples or their reader, rate), by start
        self._waiting = sorted(((round(s * OUT_RATE), i, s, x, sr) for i, (s, x, sr) in enumerate(speech)),
                               key=lambda c: c[:2])
        self._next = 0
        self._sounding: list[tuple[int, float, np.ndarray]] = []  # (order given, start_s, samples at OUT_RATE)

    def read(self, count: int) -> np.ndarray:
        """The next `count` samples as (2, k) float32; fewer only where the track ends."""
        while self._queued < count:
            block = next(self._original, None)
            if block is None:
                break
            self._queue.append(block)
            self._queued += block.shape[1]
        data = np.concatenate(self._queue, axis=1) if self._queue else np.zeros((2, 0), np.float32)
        block, rest = data[:, :count], data[:, count:]
        self._queue, self._queued = ([rest], rest.shape[1]) if rest.shape[1] else ([], 0)
        k = block.shape[1]
        mixed = mix_speech(block, self._overlapping(self.pos, self.pos + k), self._duck_db, OUT_RATE, self.pos)
        self.pos += k
        return mixed

    def _overlapping(self, lo: int, hi: int) -> list[tuple[float, np.ndarray, int]]:
        """The answers whose sound or fades reach into samples [lo, hi), in the order given."""
        while self._next < len(self._waiting) and self._waiting[self._next][0] - self._ramp < hi:
            _, order, start, samples, sr = self._waiting[self._next]
            self._next += 1
            samples = samples() if callable(samples) else samples
            samples = resample(np.asarray(samples, np.float32).reshape(-1), sr, OUT_RATE)
            self._sounding.append((order, start, samples))
        self._sounding = [c for c in self._sounding if round(c[1] * OUT_RATE) + len(c[2]) + self._ramp > lo]
        return [(start, samples, OUT_RATE) for _, start, samples in sorted(self._sounding, key=lambda c: c[0])]


def _camera_stream(container):
    """The first real video stream; cover art in an audio file (attached_pic) is not one."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _stream_ends(container, streams, t0: float) -> dict[int, float]:
    """Where each of `streams` ends, in seconds from t0: max(pts + duration) over its
    packets (a demux without decoding, cheap); stream metadata is often missing (webm)."""
    ends = {s.index: 0.0 for s in streams}
    for packet in container.demux(streams):
        if packet.pts is not None:
            end = float((packet.pts + (packet.duration or 0)) * packet.stream.time_base) - t0
            ends[packet.stream.index] = max(ends[packet.stream.index], end)
    return ends


def _source_audio(path: Path, t0: float) -> Iterator[np.ndarray]:
    """The first audio stream as (2, k) float32 blocks at 48 kHz, sample 0 at t0 (a stream
    that starts later is front-padded with silence, one that starts earlier is trimmed),
    cut where the container says it ends (the decoder returns AAC's end padding too, so
    samples past the end known so far wait until a later frame moves the end)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        # mono stays mono and is copied to both sides below: swresample's mono->stereo
        # matrix would put it 3 dB lower on each side
        mono = stream.codec_context.channels == 1
        resampler = av.AudioResampler(format="fltp", layout="mono" if mono else "stereo", rate=OUT_RATE)
        cut = _Cut()
        for frame in container.decode(stream):
            cut.note(frame, t0)
            for out in resampler.resample(frame):
                yield from cut.take(out.to_ndarray())
        for out in resampler.resample(None):
            yield from cut.take(out.to_ndarray())
        yield from cut.take(None)


class _Cut:
    """Places resampled samples on the timeline: shifted by the first frame's time, cut at
    the latest end a frame has announced (held back past it until the stream is done)."""

    def __init__(self):
        self.offset: int | None = None  # timeline sample of the first decoded sample
        self.end = 0.0  # seconds from t0 where the frames seen so far end
        self.at = 0  # timeline sample of held[0] (once offset is known)
        self.held: list[np.ndarray] = []
        self.done = 0  # timeline samples given out

    def note(self, frame, t0: float) -> None:
        if frame.time is None:
            return
        if self.offset is None:
            self.offset = self.at = round((frame.time - t0) * OUT_RATE)
        dur = frame.duration * frame.time_base if frame.duration else frame.samples / frame.sample_rate
        self.end = max(self.end, frame.time + float(dur) - t0)

    def take(self, samples: np.ndarray | None) -> Iterator[np.ndarray]:
        """Blocks ready to go out after `samples` (None: the stream is done, give out the rest)."""
        if samples is not None:
            self.held.append(samples)
            if self.offset is None:
                return  # no frame has said where the stream starts yet
        if self.offset is None:
            self.offset = 0
        data = np.concatenate(self.held, axis=1) if self.held else np.zeros((1, 0), np.float32)
        if self.at < 0:  # what starts before t0 is trimmed
            k = min(-self.at, data.shape[1])
            data, self.at = data[:, k:], self.at + k
        while self.done < self.at:  # what starts after t0 gets silence first
            pad = min(OUT_RATE, self.at - self.done)
            self.done += pad
            yield np.zeros((2, pad), np.float32)
        stop = data.shape[1]
        if self.end > 0:
            stop = max(0, min(stop, round(self.end * OUT_RATE) - self.at))
        self.held = [data[:, stop:]] if samples is not None and stop < data.shape[1] else []
        if stop:
            self.at = self.done = self.at + stop
            out = data[:, :stop]
            yield np.ascontiguousarray(np.repeat(out, 2, axis=0) if out.shape[0] == 1 else out, np.float32)


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


def _mux_audio(out, stream, track: Soundtrack, until: int | None) -> None:
    """Encode and mux whole AAC frames of `track` up to sample `until` (None: to the
    track's end, whose last frame may be shorter)."""
    while until is None or track.pos + AAC_FRAME <= until:
        pos = track.pos
        chunk = track.read(AAC_FRAME)
        if chunk.shape[1] == 0:
            return
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = OUT_RATE, pos, Fraction(1, OUT_RATE)
        out.mux(stream.encode(frame))
        if chunk.shape[1] < AAC_FRAME:
            return


def _progress_bar(enabled: bool, duration: float, name: str):
    """A tqdm bar over media time, or None; it counts whole milliseconds (no float drift
    past the total) and shows seconds."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=round(duration * 1000), unit="s", unit_scale=0.001, desc=f"render {name}",
                bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s")

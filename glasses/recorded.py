"""Recorded source: replays a clip file as the glasses' microphone and camera.

Why PyAV: one demuxer hands out the audio and the video of a clip with timestamps on one
clock, from any container and codec ffmpeg reads (mp4, mov, mkv, webm, flac, wav, ...).
OpenCV's VideoCapture has no audio, and decoding the sound with a second tool would leave
two clocks to reconcile. Both streams are decoded as they are demuxed, so a long clip never
sits in memory; a small reorder buffer merges them into one media-time-ordered iterator.

Why silence for a video-only clip: the session's clock is driven by audio chunks (the VAD
and endpointer count time in them), so a clip without sound still yields digital-silence
chunks over its whole duration; the frames then arrive at the right session times.

Bad input fails at construction with one `MediaError` line that says what is wrong; a
file that breaks part-way replays up to the break and says so in `warnings`.
"""
from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from core.messages import SAMPLE_RATE, AudioChunk, VideoFrame

PROBE_PACKETS = 2000  # packets read to find each stream's first decodable frame: bounds probe() on junk
MAX_SKEW = 2.0  # s: one stream may run this far ahead of the other in the file before we stop waiting
GAP = 0.1  # s: a jump in audio timestamps larger than this is filled with silence to keep sync
AVErrors = (av.FFmpegError, EOFError)


class MediaError(Exception):
    """One-line, user-facing message saying what is wrong and what to do."""


@dataclass(frozen=True)
class MediaInfo:
    path: str
    duration: float
    has_video: bool
    has_audio: bool
    width: int  # after rotation is applied; 0 if no video
    height: int
    fps: float
    rotation: int  # degrees counter-clockwise, as the display matrix says (-90: phone held upright)
    audio_rate: int  # of the source; 0 if no audio
    audio_channels: int
    still: bool = False  # the video is one picture (an image file, a one-frame clip): it never goes stale


def probe(path) -> MediaInfo:
    """What the clip holds; raises MediaError for anything that is not a playable clip."""
    return _probe(path)[0]


class RecordedSource:
    def __init__(self, path, max_side: int = 640, chunk_samples: int = 512):
        self.path, self.max_side, self.chunk_samples = str(path), max_side, chunk_samples
        self.info, self.warnings, self._streams = _probe(path)
        self._container = None

    def events(self) -> Iterator[AudioChunk | VideoFrame]:
        """Audio chunks and frames in media-time order; the caller handles the end."""
        self.close()
        self._container = _open(self.path)
        try:
            kinds = [AudioChunk] + ([VideoFrame] if self.info.has_video else [])
            newest = {kind: float("-inf") for kind in kinds}  # latest t decoded per stream
            pending: list = []  # heap of (t, seq, item): the reorder buffer
            seq, last = itertools.count(), float("-inf")
            for item in self._decoded(self._container):
                newest[type(item)] = item.t
                heapq.heappush(pending, (item.t, next(seq), item))
                # Release what no stream can undercut any more; stop waiting on a stream that lags
                # far behind in the file, so memory stays bounded even on badly interleaved files.
                ready = max(min(newest.values()), max(newest.values()) - MAX_SKEW)
                while pending and pending[0][0] <= ready:
                    last = self._emit_check(pending[0][0], last)
                    yield heapq.heappop(pending)[2]
            while pending:
                last = self._emit_check(pending[0][0], last)
                yield heapq.heappop(pending)[2]
        finally:
            self.close()

    def close(self):
        if self._container is not None:
            self._container.close()
            self._container = None

    # --- internals ------------------------------------------------------------------------
    def _decoded(self, container) -> Iterator[AudioChunk | VideoFrame]:
        """Items in file order (each stream in its own time order), then the end-of-file checks."""
        vindex, aindex = self._streams
        streams = [container.streams[i] for i in (vindex, aindex) if i is not None]
        origin = _origin(streams)
        if vindex is not None:
            container.streams[vindex].codec_context.thread_type = "AUTO"
        audio = _Chunker(self.chunk_samples, origin)
        period = 1 / self.info.fps if self.info.fps > 0 else 0.04
        reached, frames, error = 0.0, 0, None  # reached: media time covered by real data
        try:
            for packet in container.demux(*streams):
                for frame in packet.decode():
                    if packet.stream.index == vindex:
                        t = frame.time - origin if frame.time is not None else frames * period
                        if aindex is None:
                            yield from audio.silence_until(t)
                        frames += 1
                        reached = max(reached, t + period)
                        yield VideoFrame(t, self._image(frame))
                    else:
                        for chunk in audio.push(frame):
                            reached = max(reached, chunk.t + len(chunk.samples) / SAMPLE_RATE)
                            yield chunk
        except AVErrors as e:
            error = e
        tail = list(audio.flush()) if aindex is not None else []  # what was buffered before the end
        yield from tail
        reached = max([reached] + [c.t + self.chunk_samples / SAMPLE_RATE for c in tail])
        if frames == 0 and audio.sent == 0:
            raise MediaError(f"truncated or corrupt media: {self.path} (nothing decodes)")
        duration = self.info.duration
        if error is not None:
            self._warn(f"clip is truncated/corrupt after {reached:.1f} s; replayed up to there ({_why(error)})")
        elif reached < duration - max(0.5, 2 * period):
            self._warn(f"clip ends at {reached:.1f} s, not {duration:.1f} s as its header says (truncated?); "
                       "replayed up to there")
        else:
            reached = max(reached, duration)
        if aindex is None:  # silence covers the whole clip, so the session clock runs to its end
            yield from audio.silence_until(reached - 1e-9)

    def _image(self, frame) -> np.ndarray:
        """BGR, downscaled first (cheaper to rotate), then turned upright as the display matrix says."""
        image = frame.to_ndarray(format="bgr24")
        h, w = image.shape[:2]
        scale = self.max_side / max(h, w)
        if scale < 1:  # never upscale
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        turn = ROTATE.get(round(frame.rotation / 90) % 4)
        return cv2.rotate(image, turn) if turn is not None else image

    def _emit_check(self, t: float, last: float) -> float:
        if t < last - 1e-6:
            self._warn("audio and video lie far apart in the file; some events come out of order")
        return max(t, last)

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


# frame.rotation is counter-clockwise degrees; cv2 names the turn that undoes the display matrix
ROTATE = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}


class _Chunker:
    """Decoded audio -> 16 kHz mono float32 chunks of exactly `size` samples on a contiguous clock.

    Chunk times count samples from the first frame's timestamp rather than trusting every
    packet's timestamp, so they stay exactly contiguous; a real gap in the timestamps (dropped
    audio) is filled with silence so the frames after it stay in sync.
    """

    def __init__(self, size: int, origin: float):
        self.size, self.origin = size, origin
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        self.t0: float | None = None  # media time of the first sample
        self.buffer: list[np.ndarray] = []
        self.buffered = 0
        self.sent = 0  # samples already handed out in chunks

    def push(self, frame) -> Iterator[AudioChunk]:
        t = frame.time - self.origin if frame.time is not None else None
        if self.t0 is None:
            self.t0 = t or 0.0
        elif t is not None:
            gap = t - (self.t0 + (self.sent + self.buffered) / SAMPLE_RATE)
            if gap > GAP:
                self._add(np.zeros(int(gap * SAMPLE_RATE), np.float32))
        try:
            out = self.resampler.resample(frame)
        except ValueError:  # the source changed rate or layout mid-stream: start a new resampler
            out = self.resampler.resample(None)
            self.resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            out += self.resampler.resample(frame)
        for f in out:
            self._add(f.to_ndarray().reshape(-1))
        yield from self._chunks()

    def flush(self) -> Iterator[AudioChunk]:
        for f in self.resampler.resample(None):
            if f is not None:  # a passthrough resampler (source already 16 kHz mono flt) returns [None]
                self._add(f.to_ndarray().reshape(-1))
        yield from self._chunks()
        if self.buffered:  # only the very last chunk is zero-padded
            self._add(np.zeros(self.size - self.buffered, np.float32))
            yield from self._chunks()

    def silence_until(self, t: float) -> Iterator[AudioChunk]:
        """Digital-silence chunks starting at or before `t` (for clips without sound)."""
        if self.t0 is None:
            self.t0 = 0.0
        while self.t0 + self.sent / SAMPLE_RATE <= t:
            self._add(np.zeros(self.size, np.float32))
            yield from self._chunks()

    def _add(self, samples: np.ndarray) -> None:
        self.buffer.append(samples.astype(np.float32, copy=False))
        self.buffered += len(samples)

    def _chunks(self) -> Iterator[AudioChunk]:
        if self.buffered < self.size:
            return
        audio = np.concatenate(self.buffer)
        n = len(audio) // self.size * self.size
        for start in range(0, n, self.size):
            yield AudioChunk(self.t0 + (self.sent + start) / SAMPLE_RATE, audio[start : start + self.size].copy())
        self.sent += n
        self.buffer, self.buffered = [audio[n:]], len(audio) - n


# --- probing ------------------------------------------------------------------------------
def _open(path):
    p = Path(path)
    if not p.exists():
        raise MediaError(f"no such file: {path}")
    if p.is_dir():
        raise MediaError(f"a directory, not a media file: {path}")
    if not p.is_file():
        raise MediaError(f"not a regular file (a device or a pipe?): {path}")
    if p.stat().st_size == 0:
        raise MediaError(f"empty file (0 bytes): {path}")
    try:
        return av.open(str(p), metadata_errors="ignore")
    except PermissionError:
        raise MediaError(f"cannot read (permission denied): {path}") from None
    except (*AVErrors, OSError, UnicodeError) as e:
        if _has_media_signature(p):  # e.g. an mp4 cut short before its index (moov) was written
            raise MediaError(f"truncated or corrupt media: {path} ({_why(e)}); re-record or re-export it") from None
        raise MediaError(f"not a media file ffmpeg can read: {path} ({_why(e)})") from None


# how common containers begin: tells "a clip that is broken" from "not a clip at all"
SIGNATURES = (b"\x1a\x45\xdf\xa3", b"RIFF", b"OggS", b"fLaC", b"ID3")  # mkv/webm, wav, ogg, flac, mp3
MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")  # mp4/mov/m4a: box type at bytes 4..8


def _has_media_signature(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(12)
    return head.startswith(SIGNATURES) or head[4:8] in MP4_BOXES


def _probe(path) -> tuple[MediaInfo, list[str], tuple[int | None, int | None]]:
    """MediaInfo, warnings, and the (video, audio) stream indices to replay."""
    with _open(path) as container:
        video = next((s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic
                      and s.codec_context is not None), None)  # album art is a "video" stream too
        audio = next((s for s in container.streams.audio if s.codec_context is not None), None)
        if video is None and audio is None:
            raise MediaError(f"no audio or video track in: {path}")
        firsts = _first_frames(container, [s for s in (video, audio) if s is not None])
        if not firsts:
            raise MediaError(f"truncated or corrupt media: {path} (no frame decodes)")
        warnings = []
        if video is not None and video.index not in firsts:
            warnings.append("the video track does not decode; replaying the sound only")
            video = None
        if audio is not None and audio.index not in firsts:
            warnings.append("the audio track does not decode; replaying the frames only")
            audio = None
        if audio is None:
            warnings.append("no audio track: nothing to hear; use --ask to put questions")
        if video is None:
            warnings.append("audio only: no frames to look at")

        rotation, width, height, fps, still = 0, 0, 0, 0.0, False
        if video is not None:
            first = firsts[video.index]
            rotation = int(first.rotation)
            width, height = (first.height, first.width) if round(rotation / 90) % 2 else (first.width, first.height)
            rate = video.average_rate or video.guessed_rate or video.base_rate
            fps = float(rate) if rate else 0.0
            # an image file (png_pipe, image2, ...) or a clip whose video holds a single frame
            still = video.frames == 1 or container.format.name.endswith("_pipe") or container.format.name == "image2"
        rate = channels = 0
        if audio is not None:
            rate, channels = audio.codec_context.sample_rate, audio.codec_context.layout.nb_channels
        info = MediaInfo(str(path), _duration(container, path), video is not None, audio is not None,
                         width, height, fps, rotation, rate, channels, still)
        indices = (video.index if video is not None else None, audio.index if audio is not None else None)
        return info, warnings, indices


def _first_frames(container, streams) -> dict:
    """stream index -> its first decoded frame; proves the file decodes, and gives the rotation."""
    firsts = {}
    try:
        for packet in itertools.islice(container.demux(*streams), PROBE_PACKETS):
            if packet.stream.index not in firsts:
                for frame in packet.decode():
                    firsts.setdefault(packet.stream.index, frame)
            if len(firsts) == len(streams):
                break
    except AVErrors:
        pass  # judged by what decoded before the error
    return firsts


def _duration(container, path) -> float:
    if container.duration:
        return container.duration / av.time_base
    spans = [float(s.duration * s.time_base) for s in container.streams if s.duration and s.time_base]
    if spans:
        return max(spans)
    return _scan_duration(path)  # e.g. a raw stream without an index: read the packet times


def _scan_duration(path) -> float:
    try:
        with av.open(str(path)) as container:
            end = 0.0
            for packet in container.demux():
                if packet.pts is not None and packet.time_base:
                    end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
            return end
    except AVErrors:
        return 0.0


def _origin(streams) -> float:
    """The common zero of both streams: the earliest stream start, so A/V offsets survive."""
    starts = [float(s.start_time * s.time_base) for s in streams if s.start_time is not None and s.time_base]
    return min(starts, default=0.0)


def _why(error: Exception) -> str:
    return (getattr(error, "strerror", None) or str(error) or type(error).__name__).splitlines()[0]

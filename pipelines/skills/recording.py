"""Writing what the camera captures (pipelines/skills/capture.py) to files.

- Names are never reused: `reserve` creates the next number exclusively as NAME.part, the file
  is written there, and `publish` hard-links it to NAME (a name taken meanwhile moves it on), so
  a user's file is never overwritten and a crash leaves no half file under a real name.
- `Recording`: one video. `offer` queues frames from `start` to `stop` session seconds (frame.t,
  so a replay gives the same video); live it never waits: a full queue drops the frame and counts
  it. A worker thread blurs faces (pipelines/private_video.FaceBlur) and encodes with PyAV (H.264;
  mpeg4 without libx264), each frame at its own time, so a variable rate keeps its timing.
"""
from __future__ import annotations

import errno
import itertools
import math
import os
import queue
import re
import statistics
import threading
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import av
import cv2
import numpy as np

QUEUE_FRAMES = 24  # frames waiting for the encoder at most (~1 s live); more are dropped and counted
RATE_FRAMES = 8  # frames looked at to tell the video's nominal rate
TIME_BASE = Fraction(1, 1000)  # ms: fine for variable rates, and within mpeg4's limit
X264_OPTIONS = {"preset": "veryfast", "crf": "23", "bf": "0"}  # no B-frames: packets in order, dts == pts
MAX_TRIES = 10_000  # numbers tried for a free name


def reason_of(err: OSError) -> str:
    """A short spoken reason for a file error."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "the disk is full"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "the folder is not writable"
    if isinstance(err, (NotADirectoryError, FileExistsError)):
        return "a file is in the way of the folder"
    return (err.strerror or str(err) or type(err).__name__).lower()


def video_codec(available=None) -> str:
    """H.264 (libx264) where PyAV's ffmpeg has it, else mpeg4 (always built in)."""
    return "libx264" if "libx264" in (av.codecs_available if available is None else available) else "mpeg4"


def nominal_rate(times: Sequence[float], fallback: float = 30.0) -> Fraction:
    """Frames per second from the median gap between `times` (a dropped frame does not halve it)."""
    gaps = [b - a for a, b in zip(times, times[1:]) if b > a]
    fps = 1.0 / statistics.median(gaps) if gaps else fallback
    return Fraction(min(120.0, max(1.0, fps))).limit_denominator(1001)


def reserve(folder: Path, stem: str, ext: str) -> Path:
    """A new, empty `stem-NNNN.ext.part` in `folder`, created exclusively (a user's file is never
    truncated): the number after the highest there, moved on past any name taken."""
    folder.mkdir(parents=True, exist_ok=True)
    pattern = rf"{re.escape(stem)}-(\d+)\.{re.escape(ext)}(?:\.part)?"
    n = max((int(m.group(1)) for name in os.listdir(folder) if (m := re.fullmatch(pattern, name))), default=0)
    for n in range(n + 1, n + 1 + MAX_TRIES):
        final = folder / f"{stem}-{n:04d}.{ext}"
        try:
            if not final.exists():
                os.close(os.open(f"{final}.part", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                return Path(f"{final}.part")
        except FileExistsError:
            pass
    raise FileExistsError(errno.EEXIST, "no free file name", str(folder))


def publish(part: Path) -> Path:
    """`part` under its real name, or the next free number if that was taken meanwhile: a hard
    link, which fails rather than replace (a rename after a check where links are not allowed)."""
    stem, n, ext = re.fullmatch(r"(.+)-(\d+)\.([^.]+)\.part", part.name).groups()
    for n in range(int(n), int(n) + MAX_TRIES):
        final = part.parent / f"{stem}-{n:04d}.{ext}"
        if final != part.with_suffix("") and Path(f"{final}.part").exists():
            continue  # reserved by another writer
        try:
            os.link(part, final)
        except FileExistsError:
            continue
        except OSError:  # a filesystem without hard links (FAT)
            if final.exists():
                continue
            os.rename(part, final)
            return final
        part.unlink()
        return final
    raise FileExistsError(errno.EEXIST, "no free file name", str(part.parent))


# --- a video being written --------------------------------------------------------------------------
class Recording:
    """One video: `offer` queues frames from `start` to `stop` session seconds; a worker thread
    blurs and encodes them into `part`, publishes it, then calls `done(self)`."""

    def __init__(self, part: Path, start: float, stop: float, detector: Callable[[], tuple] | None,
                 done: Callable[["Recording"], None], queue_frames: int = QUEUE_FRAMES, wait: float = 0.0,
                 codec: str = ""):
        """`detector()`: (face detector or None, warning); None: faces are not blurred. `wait`:
        seconds `offer` may wait for room (0 live: drop instead; a replay waits, losing nothing).
        `codec`: "libx264" or "mpeg4"; "" picks (`video_codec`)."""
        self.part, self.start, self.stop, self.detector, self.done, self.wait = part, start, stop, detector, done, wait
        self.queue: queue.Queue = queue.Queue(maxsize=queue_frames)
        self.lock = threading.Lock()  # the first frames (ring, recent) go in before the camera's next
        self.ending = threading.Event()  # no more frames are taken
        self.end_t: float | None = None  # where the video ends (the stop time or the cut), when known
        self.last_t = -math.inf
        self.offered = self.dropped = self.frames = 0  # frames taken, dropped (queue full), written
        self.seconds, self.path, self.error, self.codec, self.faces = 0.0, None, "", codec or video_codec(), None
        self.thread = threading.Thread(target=self._run, name="capture-video", daemon=True)

    def offer(self, t: float, image: np.ndarray) -> None:
        with self.lock:
            self.take(t, image)

    def take(self, t: float, image: np.ndarray) -> None:
        """`offer` without the lock (its holder's)."""
        if self.ending.is_set() or t < self.start or t <= self.last_t:
            return
        if t >= self.stop:
            self.end(self.stop)
            return
        self.last_t, self.offered = t, self.offered + 1
        try:
            self.queue.put((t, image), timeout=self.wait) if self.wait else self.queue.put_nowait((t, image))
        except queue.Full:  # the encoder is behind: this frame is lost, the next ones keep their times
            self.dropped += 1

    def end(self, at: float | None = None) -> None:
        """Take no more frames; the video ends at `at` (later frames left out) or after its last frame."""
        if not self.ending.is_set():
            self.end_t = at
            self.ending.set()

    def _items(self) -> Iterator[tuple[float, np.ndarray, None]]:
        while True:
            try:
                t, image = self.queue.get(timeout=0.05)
            except queue.Empty:
                if self.ending.is_set() and self.queue.empty():
                    return
                continue
            if self.end_t is None or t < self.end_t:
                yield t, image, None

    def _run(self) -> None:
        items: Iterable = self._items()
        blur, why = None, ""
        try:
            if self.detector is not None:
                from pipelines.private_video import FaceBlur
                detector, why = self.detector()
                blur = FaceBlur(detector)  # no detector: every frame blurred whole (fail safe)
                items = blur(items)
            self.frames, self.seconds = self._write(items)
            if not self.frames:
                self.error = "no camera frames came"
            else:
                self.path = publish(self.part)
        except Exception as err:  # noqa: BLE001 - a full disk or a bad frame: logged, the session goes on
            self.error = reason_of(err) if isinstance(err, OSError) else f"{type(err).__name__}: {err}"
            self.end()
        finally:
            while not self.queue.empty():  # let go of frames still queued (after a failure)
                self.queue.get_nowait()
            self.part.unlink(missing_ok=True)
            if blur is not None:
                self.faces = {**blur.figures(), **({"warning": why} if why else {})}
            self.done(self)

    def _write(self, items: Iterable) -> tuple[int, float]:
        """(frames written, seconds long). Each frame is encoded once the next one's time is known,
        so every packet carries its own duration and the file ends where the video ends."""
        items = iter(items)
        first = list(itertools.islice(items, RATE_FRAMES))
        if not first:
            return 0, 0.0
        rate = nominal_rate([t for t, _, _ in first])
        (h, w), t0 = first[0][1].shape[:2], first[0][0]
        size = (w - w % 2, h - h % 2)  # yuv420p needs even sides
        with av.open(str(self.part), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            stream = out.add_stream(self.codec, rate=rate, options=X264_OPTIONS if self.codec == "libx264" else {})
            stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
            stream.time_base = stream.codec_context.time_base = TIME_BASE
            if self.codec == "mpeg4":
                stream.bit_rate = 4_000_000
            durations: dict[int, int] = {}
            pending, count = None, 0
            for t, image, _ in itertools.chain(first, items):
                pts = round((t - t0) / TIME_BASE)
                if pending is not None:
                    pts = max(pts, pending[0] + 1)  # strictly rising
                    self._encode(out, stream, pending, pts - pending[0], durations)
                if image.shape[1::-1] != size:
                    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                pending, count = (pts, image), count + 1
            typical = max(1, round(1 / rate / TIME_BASE))
            last = round((self.end_t - t0) / TIME_BASE) - pending[0] if self.end_t is not None else typical
            last = last if last > 0 else typical  # to the end even when the last frames were dropped
            self._encode(out, stream, pending, last, durations)
            self._mux(out, stream.encode(None), durations)
        return count, float((pending[0] + last) * TIME_BASE)

    def _encode(self, out, stream, pending: tuple[int, np.ndarray], duration: int, durations: dict) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pending[1][..., :3]), format="bgr24")
        frame.pts, frame.time_base = pending[0], TIME_BASE
        durations[pending[0]] = duration
        self._mux(out, stream.encode(frame), durations)

    @staticmethod
    def _mux(out, packets, durations: dict) -> None:
        for packet in packets:
            packet.duration = durations.pop(packet.pts, packet.duration)
            out.mux(packet)

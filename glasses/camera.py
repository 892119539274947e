"""Camera port for live mode: OpenCV capture in its own thread, newest frame wins.

Why one thread that keeps only the newest frame: a webcam delivers at its own rate
whether or not anyone reads, and OpenCV's driver buffer would otherwise hand out frames
from seconds ago once a model has kept the reader busy. Here the reader never waits on
anyone; the session, the window and the photo key each take `latest()` when they want
it, and frames nobody took are simply replaced. The thread also measures its own rate.

`--camera` is a device index, a stream URL or a video file; OpenCV opens all three. A
file stands in for a webcam: it is paced at its own frame rate (frames are skipped, not
delayed, when decoding falls behind) and its end ends the session. A device or stream
that stops delivering is *failing*, not ended: the thread keeps trying and the display
says so. The capture is released by the thread itself when it stops.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own lines ("Connection refused"): we say it once

import cv2  # noqa: E402 - after the line above: FFmpeg reads it when the backend loads
import numpy as np  # noqa: E402

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # probing indices must not spray warnings

log = logging.getLogger("camera")

MAX_INDEX = 8  # device indices probed when listing the cameras that work


class CameraError(Exception):
    """One user-facing line saying which camera could not be opened and what works."""


@dataclass(frozen=True)
class Frame:
    seq: int  # 1, 2, ... in capture order: a gap means frames nobody took
    t: float  # session time of capture
    image: np.ndarray  # (H, W, 3) uint8 BGR, downscaled to max_side


def parse_source(text: str) -> int | str:
    """'0' -> device index 0; anything else (URL or path) stays a string."""
    text = str(text).strip()
    return int(text) if text.isdigit() else text


def working_cameras(max_index: int = MAX_INDEX, open_=cv2.VideoCapture) -> list[int]:
    """Device indices that open and deliver a frame."""
    found = []
    for i in range(max_index):
        cap = open_(i)
        try:
            if cap.isOpened() and cap.read()[0]:
                found.append(i)
        finally:
            cap.release()
    return found


class Camera:
    """Capture thread over an opened cv2.VideoCapture (or anything with read/grab/get/release)."""

    def __init__(self, capture, *, kind: str, name: str = "", max_side: int = 640):
        assert kind in ("device", "stream", "file")
        self.capture, self.kind, self.name, self.max_side = capture, kind, name or kind, max_side
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0)
        self.source_fps = fps if math.isfinite(fps) and 1 <= fps <= 240 else 30.0
        self.ended = False  # a file camera reached its end
        self.failures = 0  # reads that gave no frame (device or stream)
        self.frames = 0
        self._latest: Frame | None = None
        self._times: deque[float] = deque(maxlen=120)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._now: Callable[[], float] = time.perf_counter

    @classmethod
    def open(cls, source: int | str, *, max_side: int = 640, open_=cv2.VideoCapture) -> "Camera":
        """Open `--camera`; raises CameraError with one line (listing working cameras for an index)."""
        if isinstance(source, int):
            cap = open_(source)
            if not (cap.isOpened() and cap.grab()):
                cap.release()
                works = working_cameras(open_=open_)
                have = f"cameras that work: {', '.join(map(str, works))}" if works else "no camera works on this machine"
                raise CameraError(f"no camera at index {source} ({have}); --camera also takes a video file or a stream URL")
            return cls(cap, kind="device", name=f"camera {source}", max_side=max_side)
        if "://" in source:
            cap = open_(source)
            if not cap.isOpened():
                cap.release()
                raise CameraError(f"cannot open the camera stream {source} (is the URL right and the stream up?)")
            return cls(cap, kind="stream", name=source, max_side=max_side)
        path = Path(source)
        if not path.is_file():
            raise CameraError(f"--camera {source}: no such file, and not a device index or stream URL")
        cap = open_(str(path))
        if not (cap.isOpened() and cap.get(cv2.CAP_PROP_FRAME_COUNT) != 0):
            cap.release()
            raise CameraError(f"--camera {source}: OpenCV cannot read video from this file")
        return cls(cap, kind="file", name=path.name, max_side=max_side)

    # --- the port -------------------------------------------------------------------------
    def start(self, now: Callable[[], float]) -> "Camera":
        """Start capturing; frames are stamped with `now()` (the session clock)."""
        self._now = now
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)
        self._thread.start()
        return self

    def latest(self) -> Frame | None:
        with self._cond:
            return self._latest

    def wait(self, after_seq: int, timeout: float) -> Frame | None:
        """The newest frame if it is newer than `after_seq`, waiting up to `timeout` for one."""
        with self._cond:
            self._cond.wait_for(lambda: (self._latest is not None and self._latest.seq > after_seq)
                                or self.ended or self._stop.is_set(), timeout)
            frame = self._latest
        return frame if frame is not None and frame.seq > after_seq else None

    @property
    def fps(self) -> float:
        """Frames delivered per second over the last ~4 s (0 when nothing is coming)."""
        with self._cond:
            times = list(self._times)
        if len(times) < 2 or self._now() - times[-1] > 1.0:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        else:
            self.capture.release()

    # --- the capture thread ---------------------------------------------------------------
    def _run(self) -> None:
        period = 1.0 / self.source_fps
        due = time.perf_counter()
        try:
            while not self._stop.is_set():
                if self.kind == "file":  # a file plays at its own rate, like a webcam would
                    delay = due - time.perf_counter()
                    if delay > 0 and self._stop.wait(delay):
                        break
                    while time.perf_counter() - due > period and self.capture.grab():  # behind: skip, don't lag
                        due += period
                    due += period
                try:
                    ok, image = self.capture.read()
                except cv2.error as err:  # a driver that throws is a camera that failed this once
                    log.warning("camera read failed: %s", str(err).strip().splitlines()[-1] if str(err) else err)
                    ok, image = False, None
                if not ok or image is None:
                    if self.kind == "file":
                        self.ended = True
                        break
                    self.failures += 1  # a device or stream that stopped: keep trying, the display says so
                    self._stop.wait(0.05)
                    continue
                try:
                    self._publish(image)
                except (cv2.error, ValueError) as err:  # one odd frame (a zero-size image): skip it, keep capturing
                    self.failures += 1
                    log.warning("camera frame skipped: %s", err)
        finally:
            self.capture.release()
            with self._cond:
                self._cond.notify_all()

    def _publish(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        scale = self.max_side / max(h, w)
        if scale < 1:
            image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        t = self._now()
        with self._cond:
            self.frames += 1
            self._latest = Frame(self.frames, t, image)
            self._times.append(t)
            self._cond.notify_all()

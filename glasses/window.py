"""The glasses' display as an OpenCV window: the camera view with the heads-up overlay.

One thread owns the window (every cv2 GUI call happens in it: Qt wants one GUI thread). It
draws the camera's newest frame with the newest DisplayState whenever either changes, and
polls keys every few milliseconds; it only ever reads two slots, so a model, the session
or the speaker can never hold it up. Camera frames it never drew are counted as dropped.

OpenCV's Qt backend aborts the whole process when it cannot reach an X display, so
`display_problem()` checks first and the caller turns it into one line (`--no-window`).

Import order matters on Linux: the PyAV and opencv-python wheels each bundle a libxcb-shm
under the same name (libxcb-shm-0be6dfbf.so.0.0.0) but linked to different libxcb copies.
Whichever is loaded first serves both; if it is PyAV's, Qt's window talks to two libxcb
instances and hangs for ever in xcb_shm_query_version. `import cv2` before `import av` (the
entry point does) loads OpenCV's copy first; `Window` refuses to start, with the reason,
rather than hang when the order was wrong.
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from glasses.display import draw_overlay
from core.messages import DisplayState


def xcb_clash() -> bool:
    """True when PyAV's bundled libxcb-shm was loaded before OpenCV's (see the module doc)."""
    try:
        return "av.libs/libxcb-shm" in Path("/proc/self/maps").read_text()
    except OSError:
        return False


def display_problem(env=None) -> str | None:
    """Why no window can open here (one phrase), or None. Only Linux/X11 needs checking."""
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux"):
        return None
    display = env.get("DISPLAY", "")
    if not display:
        return "no display available ($DISPLAY is not set)"
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        return f"cannot understand $DISPLAY={display!r}"
    try:
        if host in ("", "unix"):
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(1.0)
                try:
                    s.connect(f"/tmp/.X11-unix/X{number}")
                except OSError:
                    s.connect(f"\0/tmp/.X11-unix/X{number}")  # the abstract socket some servers use
        else:
            socket.create_connection((host, 6000 + int(number)), timeout=1.0).close()
    except OSError:
        return f"no display available (cannot reach the X display $DISPLAY={display})"
    return None


class Window:
    """`start(frame_fn, state_fn, on_key, on_tick)`; `close()`; counters `drawn`, `dropped`."""

    def __init__(self, title: str = "glasses", size: tuple[int, int] = (640, 360), poll_ms: int = 5):
        if xcb_clash():
            raise RuntimeError("PyAV was imported before OpenCV, so an OpenCV window would hang "
                               "(see glasses/window.py): import cv2 before av")
        self.title, self.poll_ms = title, poll_ms
        self.blank = np.full((size[1], size[0], 3), 40, np.uint8)  # no camera: a dark view
        self.drawn = 0  # images shown
        self.dropped = 0  # camera frames that came and went without being drawn
        self.frames_seen = 0
        self.draw_s: list[float] = []  # seconds per draw (overlay + imshow), recent
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, frame_fn: Callable, state_fn: Callable[[], DisplayState], on_key: Callable[[int], None],
              on_tick: Callable[[], None] = lambda: None) -> "Window":
        self._thread = threading.Thread(target=self._run, args=(frame_fn, state_fn, on_key, on_tick),
                                        name="window", daemon=True)
        self._thread.start()
        return self

    def _run(self, frame_fn, state_fn, on_key, on_tick) -> None:
        os.environ.setdefault("QT_LOGGING_RULES", "*.warning=false")  # Qt's font/timer chatter is not for users
        cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)  # no Qt toolbar: the view only
        seq, state, last_draw = 0, None, 0.0
        try:
            while not self._stop.is_set():
                frame, new_state = frame_fn(), state_fn()
                new_frame = frame is not None and frame.seq != seq
                if new_frame or new_state != state or time.perf_counter() - last_draw > 0.5:
                    if new_frame:
                        if seq and frame.seq > seq + 1:
                            self.dropped += frame.seq - seq - 1
                        self.frames_seen += 1
                        seq = frame.seq
                    t0 = time.perf_counter()
                    cv2.imshow(self.title, draw_overlay(frame.image if frame is not None else self.blank, new_state))
                    last_draw = time.perf_counter()
                    self.draw_s = (self.draw_s + [last_draw - t0])[-300:]
                    self.drawn += 1
                    state = new_state
                key = cv2.waitKey(self.poll_ms)
                if key != -1:
                    on_key(key & 0xFF)
                on_tick()
                if self.drawn and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                    on_key(ord("q"))  # the window was closed: same as quitting
                    break
        finally:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass  # already closed by the user

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

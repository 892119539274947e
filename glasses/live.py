"""Live mode's ports: the laptop plays the glasses.

- `LiveSource`: camera + microphone as one Source (the same contract as the recorded clip),
  events stamped with session time at capture; the self-hearing filter (echo canceller or
  gate) sits on its audio.
- The speakers (`SoundDeviceSpeaker`, `TextSpeaker`) are in glasses/speaker.py.
- `LiveDisplay`: the session's display port; keeps the newest state for the window and prints
  what was heard and answered to the terminal.
- `Buttons`: the temple touchpad as keys; `TypedQuestions`: questions typed in the terminal.
"""
from __future__ import annotations

import logging
import math
import os
import select
import sys
import threading
from dataclasses import dataclass, replace
from typing import Callable

from core.messages import AudioChunk, DisplayState, ModeSwitch, PushToTalk, VideoFrame

log = logging.getLogger("live")


@dataclass(frozen=True)
class LiveInfo:
    duration: float = math.inf
    has_video: bool = True
    has_audio: bool = True


class LiveSource:
    """Camera frames and microphone chunks in capture order, until `close()`.

    Never blocks for long: it polls the microphone with a short timeout, so a silent or
    missing microphone cannot hold the session's source thread, and frames are taken from
    the camera's newest-frame slot (frames nobody took are simply gone)."""

    def __init__(self, camera=None, mic=None, gate=None):
        self.camera, self.mic, self.gate = camera, mic, gate
        self.info = LiveInfo(has_video=camera is not None, has_audio=mic is not None)
        self.warnings: list[str] = []
        self._stop = threading.Event()
        self.reported_drops = 0
        self._filter_failed = False

    def events(self):
        seq = 0
        while not self._stop.is_set():
            got = self.mic.read(0.05) if self.mic is not None else None
            if self.camera is not None:
                frame = self.camera.latest() if self.mic is not None else self.camera.wait(seq, 0.05)
                if frame is not None and frame.seq > seq:
                    seq = frame.seq
                    yield VideoFrame(frame.t, frame.image)
            elif self.mic is None:
                self._stop.wait(0.05)
            if got is not None:  # the filter may hold audio back a moment (the canceller's 10 ms frames)
                settled = getattr(self.gate, "settled", True)  # a canceller still converging may leak echo
                for t, samples in self._filtered(got):
                    yield AudioChunk(t, samples, settled)
            if self.mic is not None and self.mic.dropped > self.reported_drops:  # logged here, never in the callback
                log.warning("microphone queue full: dropped %d chunks of 32 ms so far", self.mic.dropped)
                self.reported_drops = self.mic.dropped

    def _filtered(self, got):
        """The self-hearing filter's output for one chunk; a filter that throws passes the chunk on
        as it is (one warning), so one bad chunk cannot end the session."""
        if self.gate is None:
            return [got]
        try:
            return self.gate.process(*got)
        except Exception as err:  # noqa: BLE001 - the canceller and gate fall back by themselves; this is the last guard
            if not self._filter_failed:
                log.warning("self-hearing filter failed on a chunk (%s): passing the microphone through", err)
            self._filter_failed = True
            return [got]

    def close(self) -> None:
        self._stop.set()
        for port in (self.camera, self.mic):
            if port is not None:
                port.close()


# --- display ------------------------------------------------------------------------------------
class LiveDisplay:
    """The session's display port: newest state for the window, plain lines for the terminal.

    The session marks a turn idle once all its audio is handed to the speaker; a live speaker
    is still sounding then, so while it is, the state reads "speaking" with the light on."""

    def __init__(self, speaker, now: Callable[[], float], echo: Callable[[str], None] | None = print):
        self.speaker, self._now, self._echo = speaker, now, echo
        self._state = DisplayState()
        self._lock = threading.Lock()
        self._said = ("", "")  # (caption, answer) last printed

    def show(self, state: DisplayState) -> None:
        with self._lock:  # called from several session threads
            self._state = state
            if self._echo is None:
                return
            caption, answer = self._said
            if state.caption and state.caption != caption:
                self._echo(f"heard:  {state.caption}")
            if state.status == "idle" and state.answer and state.answer != answer:
                self._echo(f"answer: {state.answer}")
                answer = state.answer
            self._said = (state.caption, answer)

    def current(self) -> DisplayState:
        with self._lock:
            state = self._state
        if state.status == "idle" and self.speaker.busy_until() > self._now():
            return replace(state, status="speaking", light=True)
        return state


# --- buttons and typing -------------------------------------------------------------------------
SPACE, ESC = 32, 27


class Buttons:
    """The temple touchpad as keys: space push-to-talk, p photo, m mode, q or Esc quit.

    Push-to-talk `toggle` (default): one press starts the question, the next ends it. `hold`:
    OpenCV reports key presses but never releases, so a held key is seen through its
    auto-repeat, and the question ends `release_after` s after the last repeat (X11 and macOS
    first repeat after about 0.5 s)."""

    def __init__(self, now: Callable[[], float], submit: Callable[[object], None], photo: Callable[[], None],
                 quit_: Callable[[], None], ptt: str = "toggle", release_after: float = 0.6):
        if ptt not in ("toggle", "hold"):
            raise ValueError(f"push-to-talk must be 'toggle' or 'hold', not {ptt!r}")
        self.now, self.submit, self.photo, self.quit, self.ptt = now, submit, photo, quit_, ptt
        self.release_after = release_after
        self.held = False
        self._last = 0.0  # last space event (press or auto-repeat)

    def key(self, code: int) -> None:
        t = self.now()
        if code == SPACE:
            if self.ptt == "toggle" or not self.held:
                self.held = not self.held
                self.submit(PushToTalk(t, self.held))
            self._last = t
        elif code in (ord("p"), ord("P")):
            self.photo()
        elif code in (ord("m"), ord("M")):
            self.submit(ModeSwitch(t, "next"))
        elif code in (ord("q"), ord("Q"), ESC):
            self.quit()

    def tick(self) -> None:
        """Called often (the window's loop): ends a held question when the repeats stop."""
        if self.ptt == "hold" and self.held and self.now() - self._last > self.release_after:
            self.held = False
            self.submit(PushToTalk(self._last + 0.05, False))


class TypedQuestions:
    """Lines typed in the terminal become questions. select() with a timeout, so closing never
    waits on a blocked read; the end of input (Ctrl+D, or a pipe that closed) sets `ended`."""

    def __init__(self, stream, on_line: Callable[[str], None]):
        self.fd = stream.fileno() if hasattr(stream, "fileno") else stream
        self.on_line = on_line
        self.ended = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="typed", daemon=True)

    def start(self) -> "TypedQuestions":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._read()
        finally:
            self.ended = True

    def _read(self) -> None:
        pending = b""
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.2)
                if not ready:
                    continue
                data = os.read(self.fd, 4096)
            except (OSError, ValueError):
                return
            if not data:
                text = pending.decode("utf-8", "replace").strip()  # a last line without its newline
                if text:
                    self.on_line(text)
                return
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                text = line.decode("utf-8", "replace").strip()
                if text:
                    self.on_line(text)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(1.0)


def stdin_usable() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.fileno() >= 0
    except (OSError, ValueError):
        return False

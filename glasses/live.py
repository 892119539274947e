"""Live mode's ports: the laptop plays the glasses.

- `LiveSource`: camera + microphone as one Source (the same contract as the recorded clip),
  events stamped with session time at capture; the self-hearing filter (echo canceller or
  gate) sits on its audio.
- `SoundDeviceSpeaker`: answer audio through a sounddevice OutputStream whose callback reads
  a buffer in 10 ms blocks; `clear()` empties the buffer, so sound stops within one block
  (barge-in). It reports the peak of every block it sends (the gate's "known playback
  signal") and, once asked, hands out the blocks themselves stamped with the session time
  they are heard (the echo canceller's reference).
- `TextSpeaker`: no output device; nothing is heard, answers are shown as text.
- `LiveDisplay`: the session's display port; keeps the newest state for the window and prints
  what was heard and answered to the terminal.
- `Buttons`: the temple touchpad as keys; `TypedQuestions`: questions typed in the terminal.
"""
from __future__ import annotations

import logging
import math
import os
import queue
import select
import sys
import threading
from collections import deque
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from core.audio import resample
from core.messages import AudioChunk, DisplayState, ModeSwitch, PushToTalk, SpeechAudio, VideoFrame

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
                for t, samples in self._filtered(got):
                    yield AudioChunk(t, samples)
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


# --- speakers -----------------------------------------------------------------------------------
class SoundDeviceSpeaker:
    """Plays answers on an output device; `clear()` silences it within one block.

    The callback runs on PortAudio's thread: it copies from the pending buffers under a lock
    held for microseconds (play/clear only append or empty a deque), pads with silence on
    underrun, and records (time, peak) of what it sent; once `heard_blocks()` has been
    called it also copies each block into a bounded queue (`put_nowait`, drops counted) for
    the echo canceller. `stream_factory` lets tests and the benchmark drive the same
    callback without a sound card.

    When a block is heard: the callback's time plus the output latency, from the DAC time
    PortAudio gives the callback; some host APIs give zeros, and then the latency the stream
    reported when it opened (`latency`, None when it reported none: then 0 is assumed)."""

    TAP_BLOCKS = 200  # 2 s of 10 ms blocks between the callback and the echo canceller

    def __init__(self, device: dict | None, now: Callable[[], float], *, rate: int | None = None,
                 block_s: float = 0.01, stream_factory=None):
        self.name = device["name"] if device else "default"
        self.rate = int(rate or (device or {}).get("default_samplerate") or 48000)
        self.block = max(16, int(self.rate * block_s))
        self._now = now
        self._lock = threading.Lock()
        self._pending: deque[np.ndarray] = deque()
        self._offset = 0  # samples of _pending[0] already sent
        self._until = 0.0  # session time the queued audio ends
        self._levels: deque[tuple[float, float, float]] = deque(maxlen=3000)  # (t0, t1, peak) per block sent
        self._cleared = False
        self.clears: deque[float] = deque(maxlen=1000)  # session times clear() was called (the last ones)
        self.silenced: deque[float] = deque(maxlen=1000)  # session times the first block after a clear reached the device
        self._tap: queue.Queue = queue.Queue(maxsize=self.TAP_BLOCKS)
        self._tapping = False
        self.tap_dropped = 0
        self.timed = True  # whether the callbacks carry DAC times (else the stream's latency is used)
        if stream_factory is None:
            import sounddevice as sd

            stream_factory = sd.OutputStream
        self._stream = stream_factory(samplerate=self.rate, blocksize=self.block, channels=1, dtype="float32",
                                      device=device["index"] if device else None, callback=self._callback,
                                      latency="low")  # what is queued in the device cannot be cleared
        reported = getattr(self._stream, "latency", None)
        self.latency: float | None = float(reported) if isinstance(reported, (int, float)) and reported >= 0 else None
        self._stream.start()

    def _heard_at(self, time_info) -> float:
        now = self._now()
        dac, current = getattr(time_info, "outputBufferDacTime", 0.0), getattr(time_info, "currentTime", 0.0)
        if dac > 0 and current > 0 and 0 <= dac - current < 1.0:
            return now + dac - current
        self.timed = False
        return now + (self.latency or 0.0)

    def _callback(self, outdata, frames, time_info, status) -> None:
        out = outdata[:, 0]
        n = 0
        t = self._heard_at(time_info)  # when this block will be heard
        with self._lock:
            while n < frames and self._pending:
                head = self._pending[0]
                take = min(frames - n, len(head) - self._offset)
                out[n : n + take] = head[self._offset : self._offset + take]
                n, self._offset = n + take, self._offset + take
                if self._offset >= len(head):
                    self._pending.popleft()
                    self._offset = 0
            out[n:] = 0.0
            if n:
                self._levels.append((t, t + frames / self.rate, float(np.max(np.abs(out[:n])))))
            if self._cleared:
                self._cleared = False
                self.silenced.append(t)
        if self._tapping:  # silence too: the canceller needs the far end as one unbroken stream
            try:
                self._tap.put_nowait((t, out.copy()))
            except queue.Full:
                self.tap_dropped += 1

    def heard_blocks(self) -> list[tuple[float, np.ndarray]]:
        """The blocks sent to the device since the last call, (session time heard, samples at
        `rate`). Nothing is kept before the first call, so a session without a canceller
        copies nothing."""
        self._tapping = True
        blocks = []
        while True:
            try:
                blocks.append(self._tap.get_nowait())
            except queue.Empty:
                return blocks

    def play(self, audio: SpeechAudio, at: float) -> tuple[float, float]:
        samples = resample(np.asarray(audio.samples, np.float32), audio.rate, self.rate)  # outside the lock
        with self._lock:
            start = max(self._now(), self._until)
            self._until = start + len(samples) / self.rate
            self._pending.append(samples)
            return start, self._until

    def clear(self, at: float) -> None:
        with self._lock:
            now = self._now()
            self._pending.clear()
            self._offset = 0
            self._until = min(self._until, now)
            self._cleared = True
            self.clears.append(now)

    def busy_until(self) -> float:
        with self._lock:
            return self._until

    def played(self, t0: float, t1: float) -> float:
        """Peak of what was sent to the device for session times [t0, t1] (the gate's far end)."""
        peak = 0.0
        with self._lock:
            for a, b, p in reversed(self._levels):
                if b < t0:
                    break
                if a <= t1:
                    peak = max(peak, p)
        return peak

    def close(self) -> None:
        self.clear(self._now())
        self._stream.stop()
        self._stream.close()


class TextSpeaker:
    """No output device: nothing is heard; the answer stays on the display (and the terminal)
    for as long as it would take to say, so turn-taking keeps the same rhythm."""

    name = "none (text only)"

    def __init__(self, now: Callable[[], float]):
        self._now = now
        self._until = 0.0
        self._lock = threading.Lock()
        self.clears: deque[float] = deque(maxlen=1000)

    def play(self, audio: SpeechAudio, at: float) -> tuple[float, float]:
        with self._lock:
            start = max(self._now(), self._until)
            self._until = start + len(audio.samples) / audio.rate
            return start, self._until

    def clear(self, at: float) -> None:
        with self._lock:
            self._until = min(self._until, self._now())
            self.clears.append(self._now())

    def busy_until(self) -> float:
        with self._lock:
            return self._until

    def played(self, t0: float, t1: float) -> float:
        return 0.0

    def close(self) -> None:
        pass


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

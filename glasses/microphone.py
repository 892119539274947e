"""Microphone ports for live mode, and the gate that keeps the assistant from hearing itself.

Every microphone hands out 16 kHz mono float32 chunks of 512 samples, stamped with session
time, through one bounded queue. The sounddevice callback runs on PortAudio's real-time
thread, so it only copies into that queue with `put_nowait`; when the queue is full it
counts the chunk as dropped (the reader logs the count: logging could block the callback).

`--mic` takes a sounddevice input device (index or name), an audio file played in real time
as if it were the microphone (for tests and demos), or `none`.

Self-hearing. On laptop speakers the microphone hears the answer being spoken; without care
the assistant would barge in on itself, or answer its own words. `--self-hearing` chooses
what stands between microphone and session:

- `aec` (default): WebRTC's echo canceller subtracts the echo it predicts from what the
  speaker played (glasses/echo.py); the wearer need not be louder than the answer.
- `gate`: `SelfHearingGate` below, a Geigel double-talk detector, the classic rule of
  telephone echo cancellers. While the assistant speaks, a chunk passes only if its peak is
  louder than `ratio` x the loudest sample played in the last `tail` seconds (the echo path:
  output latency and room reverb); otherwise it is replaced by silence. The wearer speaking
  up over the answer passes (barge-in, "stop"); the answer's own echo does not. The ratio
  is the one figure to tune: the loudest the echo can be relative to what is played (1.0
  means "the echo is never louder than the signal we sent", true for laptop speakers at
  normal volume; raise it if the assistant still interrupts itself, lower it if barge-in
  is hard). It is also what `aec` falls back to when the canceller cannot run.
- `mute`: silence the microphone whenever the assistant is speaking (and `tail` after). Safe
  on any hardware, but only the push-to-talk key can interrupt.
- `off`: headphones; nothing to keep out.

Times. A device stamps each block from its callback; `StreamClock` turns those jittery
stamps into a sample-exact timeline that stays on session time, which both the echo
canceller and the resampler below rely on.
"""
from __future__ import annotations

import itertools
import logging
import queue
import statistics
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from core.messages import SAMPLE_RATE

log = logging.getLogger("microphone")

CHUNK = 512  # samples per chunk (32 ms), one Silero VAD window
QUEUE_CHUNKS = 64  # ~2 s of slack between the callback and the session


class DeviceError(Exception):
    """One user-facing line: which audio device could not be opened and which exist."""


class MicrophoneError(DeviceError):
    """The microphone (a device or a file) could not be opened."""


class Microphone:
    """The port: `start(now)`, `read(timeout) -> (t, samples) | None`, `dropped`, `close()`."""

    ended = False  # a file microphone has played its file (it goes on with silence)

    def __init__(self, name: str, maxsize: int = QUEUE_CHUNKS):
        self.name = name
        self.dropped = 0
        self._q: queue.Queue = queue.Queue(maxsize=maxsize)
        self._now: Callable[[], float] = time.perf_counter

    def start(self, now: Callable[[], float]) -> "Microphone":
        self._now = now
        return self

    def read(self, timeout: float) -> tuple[float, np.ndarray] | None:
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None

    def _offer(self, t: float, samples: np.ndarray) -> None:
        """Never blocks: a full queue drops the chunk and counts it."""
        try:
            self._q.put_nowait((t, samples))
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        pass


class StreamClock:
    """Session time of every block of a continuous stream of samples.

    Device callbacks run late or in bursts, so their stamps jitter by milliseconds; counting
    samples is exact but follows the device's crystal, which drifts from the session clock
    (tens of ppm: about a tenth of a second an hour). An echo canceller needs a timeline
    that is both jitter-free and on session time, so this counts samples and moves the
    count onto the stamps only when they disagree: at once when they differ by more than
    `jump` (blocks lost, a stream restarted: `restarted`), else when the median offset of
    the last `window` blocks exceeds `tol` (drift: `moved` says by how much)."""

    def __init__(self, rate: int, tol: float = 0.01, jump: float = 0.1, window: int = 48):
        self.rate, self.tol, self.jump = rate, tol, jump
        self.moves = self.restarts = 0
        self.moved, self.restarted = 0.0, False  # what the last stamp() did
        self._next: float | None = None  # counted session time of the next sample
        self._offsets: deque[float] = deque(maxlen=window)

    def stamp(self, t: float, n: int) -> float:
        """The counted session time of a block of `n` samples that its device stamped `t`."""
        first = self._next is None
        self.moved, self.restarted = 0.0, False
        if first or abs(t - self._next) > self.jump:
            self.restarted = not first
            self.restarts += not first
            self._next = t
            self._offsets.clear()
        else:
            self._offsets.append(t - self._next)
            if len(self._offsets) == self._offsets.maxlen:
                drift = statistics.median(self._offsets)
                if abs(drift) > self.tol:
                    self._next, self.moved = self._next + drift, drift
                    self.moves += 1
                    self._offsets.clear()
        start = self._next
        self._next = start + n / self.rate
        return start


class Rechunker:
    """Device blocks (any rate, any size) -> CHUNK-sample 16 kHz chunks on the session timeline.

    One soxr.ResampleStream for the whole stream: resampling block by block, as this did
    before, filters each block as if silence surrounded it and leaves a seam at every
    boundary. The stream holds back the last ~20 ms until more arrives, but soxr removes its
    filter delay, so output sample k is input time k / 16 kHz: chunks are stamped by
    counting. A jump in the stamps (blocks lost) starts a fresh stream."""

    def __init__(self, rate: int):
        self.rate = rate
        self.clock = StreamClock(rate)
        self._started = False
        self._stream = None  # soxr's stream; None at 16 kHz
        self._rest = np.zeros(0, np.float32)  # resampled samples waiting to fill a chunk
        self._t = 0.0  # session time of _rest[0]

    def push(self, t: float, samples: np.ndarray) -> list[tuple[float, np.ndarray]]:
        start = self.clock.stamp(t, len(samples))
        if self.clock.restarted or not self._started:
            self._started, self._stream = True, self._new_stream()
            self._rest, self._t = np.zeros(0, np.float32), start
        self._t += self.clock.moved
        audio = self._stream.resample_chunk(samples) if self._stream is not None else samples
        audio = np.concatenate([self._rest, audio.astype(np.float32, copy=False)])
        n = len(audio) // CHUNK
        chunks = [(self._t + i * CHUNK / SAMPLE_RATE, audio[i * CHUNK : (i + 1) * CHUNK]) for i in range(n)]
        self._rest, self._t = audio[n * CHUNK :], self._t + n * CHUNK / SAMPLE_RATE
        return chunks

    def _new_stream(self):
        if self.rate == SAMPLE_RATE:
            return None
        import soxr

        return soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")


class PacedMicrophone(Microphone):
    """Plays 16 kHz chunks from an iterator in real time, then silence: a file (or a script) as the mic.

    `echo(t, n)`, if given, returns what the room adds at session time t (a fake speaker's
    output): tests use it to check that the assistant does not answer its own voice.
    """

    def __init__(self, chunks: Iterable[np.ndarray], name: str = "file", echo=None, maxsize: int = QUEUE_CHUNKS):
        super().__init__(name, maxsize)
        self._chunks, self._echo = chunks, echo
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, now: Callable[[], float]) -> "PacedMicrophone":
        super().start(now)
        self._thread = threading.Thread(target=self._run, name="mic-file", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        t0 = self._now()
        source: Iterator[np.ndarray] = iter(self._chunks)
        for i in itertools.count():
            t = t0 + i * CHUNK / SAMPLE_RATE
            wait = t + CHUNK / SAMPLE_RATE - self._now()  # a chunk exists once its last sample was "heard"
            if wait > 0 and self._stop.wait(wait):
                return
            if self._stop.is_set():
                return
            try:
                samples = next(source, None)
            except Exception as err:  # noqa: BLE001 - a file that breaks part-way ends like one that ended
                log.warning("microphone file stopped decoding (%s): it has ended", err)
                samples = None
            if samples is None:
                self.ended, samples = True, np.zeros(CHUNK, np.float32)
                source = iter(())
            if self._echo is not None:
                samples = samples + self._echo(t, CHUNK)
            self._offer(t, samples.astype(np.float32, copy=False))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)


def array_chunks(audio: np.ndarray) -> Iterator[np.ndarray]:
    """16 kHz samples -> CHUNK-sized pieces (the last zero-padded)."""
    for start in range(0, len(audio), CHUNK):
        piece = audio[start : start + CHUNK]
        yield np.pad(piece, (0, CHUNK - len(piece))) if len(piece) < CHUNK else piece


def file_microphone(path: str | Path) -> PacedMicrophone:
    """An audio (or video) file's sound, decoded lazily by PyAV, as a real-time microphone."""
    from glasses.recorded import MediaError, RecordedSource
    from core.messages import AudioChunk

    try:
        source = RecordedSource(path, chunk_samples=CHUNK)
    except MediaError as err:
        raise MicrophoneError(f"--mic: {err}") from err
    if not source.info.has_audio:
        raise MicrophoneError(f"--mic {path}: the file has no sound")
    return PacedMicrophone((ev.samples for ev in source.events() if isinstance(ev, AudioChunk)), name=Path(path).name)


# --- sounddevice ------------------------------------------------------------------------------
def _sounddevice():
    try:
        import sounddevice
    except OSError as err:  # PortAudio library missing
        raise DeviceError(f"sounddevice cannot load PortAudio ({err}); install libportaudio2") from err
    return sounddevice


def list_devices(kind: str) -> list[str]:
    """'index: name' of every device with `kind` ('input' or 'output') channels."""
    try:
        sd = _sounddevice()
        devices = sd.query_devices()
    except Exception:  # noqa: BLE001 - no PortAudio, no devices
        return []
    key = "max_input_channels" if kind == "input" else "max_output_channels"
    return [f"{d['index']}: {d['name']}" for d in devices if d[key] > 0]


def find_device(spec: str | int | None, kind: str) -> dict:
    """The sounddevice device dict for an index, a (part of a) name, or None = the default.

    Raises MicrophoneError with one line naming the devices that exist."""
    sd = _sounddevice()
    try:
        target = int(spec) if isinstance(spec, str) and spec.isdigit() else spec
        return sd.query_devices(target, kind=kind)
    except (ValueError, sd.PortAudioError) as err:
        have = list_devices(kind)
        listed = "; ".join(have) if have else "none found"
        what = f"no {kind} device matching {spec!r}" if spec is not None else f"no default {kind} device"
        raise DeviceError(f"{what}; {kind} devices: {listed}") from err


class DeviceMicrophone(Microphone):
    """A sounddevice InputStream; the callback copies into the bounded queue and nothing else.

    The stream opens at construction (a busy or broken device fails before models load) but
    its chunks are thrown away until `start()`, so the queue is not full of stale audio.
    `read()` turns the device's blocks into 16 kHz chunks (`Rechunker`), outside the callback."""

    def __init__(self, device: dict):
        super().__init__(device["name"])
        self.device = device
        self._live = False
        self.timed = True  # whether the host API reports capture times (else: the block ends "now")
        self._ready: deque[tuple[float, np.ndarray]] = deque()  # at most one block's chunks
        sd = _sounddevice()
        self._rate = SAMPLE_RATE
        try:  # 16 kHz if the device (or its host API) takes it, else its own rate, resampled in read()
            sd.check_input_settings(device["index"], samplerate=SAMPLE_RATE, channels=1, dtype="float32")
        except Exception:  # noqa: BLE001 - PortAudio says why in several ways
            self._rate = int(device["default_samplerate"])
        self._rechunk = Rechunker(self._rate)
        try:
            self._stream = sd.InputStream(device=device["index"], samplerate=self._rate, channels=1, dtype="float32",
                                          blocksize=int(round(CHUNK * self._rate / SAMPLE_RATE)), callback=self._callback)
            self._stream.start()
        except Exception as err:  # noqa: BLE001
            raise MicrophoneError(f"cannot open microphone {self.name!r}: {str(err).splitlines()[0]}") from err

    def start(self, now: Callable[[], float]) -> "DeviceMicrophone":
        super().start(now)
        self._live = True
        return self

    def _callback(self, indata, frames, time_info, status) -> None:
        # PortAudio's thread: copy, stamp, offer. Nothing here may block.
        if self._live:
            self._offer(self._captured_at(time_info, frames), indata[:, 0].copy())

    def _captured_at(self, time_info, frames: int) -> float:
        """Session time of the block's first sample: its ADC time, on PortAudio's clock, taken
        back from now. Some host APIs report zeros: then the block ended about now."""
        now = self._now()
        adc, current = getattr(time_info, "inputBufferAdcTime", 0.0), getattr(time_info, "currentTime", 0.0)
        if adc > 0 and current > 0 and 0 <= current - adc < 1.0:
            return now - (current - adc)
        self.timed = False
        return now - frames / self._rate

    def read(self, timeout: float) -> tuple[float, np.ndarray] | None:
        while not self._ready:  # a block may not fill a chunk (the resampler holds ~20 ms back)
            got = super().read(timeout)
            if got is None:
                return None
            self._ready.extend(self._rechunk.push(*got))
        return self._ready.popleft()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None


def open_microphone(spec: str | None) -> Microphone | None:
    """`--mic`: None/'default' -> the default input; 'none' -> None; a file; an index; a name."""
    if spec is not None and spec.lower() == "none":
        return None
    if spec is not None and Path(spec).is_file():
        return file_microphone(spec)
    if spec is not None and ("/" in spec or Path(spec).suffix):
        raise MicrophoneError(f"--mic {spec}: no such file (and no input device has that name)")
    return DeviceMicrophone(find_device(None if spec in (None, "default") else spec, "input"))


# --- self-hearing -----------------------------------------------------------------------------
class SelfHearingGate:
    """Keeps the speaker's own sound out of what the session hears (see the module doc).

    `played(t0, t1)` is the loudest sample the speaker sent in session times [t0, t1]."""

    MODES = ("gate", "mute", "off")

    def __init__(self, mode: str, played: Callable[[float, float], float], ratio: float = 1.0,
                 tail: float = 0.3, hold: float = 0.25):
        if mode not in self.MODES:
            raise ValueError(f"self-hearing mode must be one of {self.MODES}, not {mode!r}")
        self.mode, self.played, self.ratio, self.tail, self.hold = mode, played, ratio, tail, hold
        self.gated = 0  # chunks replaced by silence
        self._open_until = -1.0  # near-end speech seen: pass this long even if it dips (hangover)

    def process(self, t: float, samples: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """The self-hearing port LiveSource calls: chunks in, chunks out (here one for one)."""
        return [(t, self(t, samples))]

    def stats(self) -> dict:
        return {"mode": self.mode, "gated_chunks": self.gated}

    def __call__(self, t: float, samples: np.ndarray) -> np.ndarray:
        if self.mode == "off":
            return samples
        far = self.played(t - self.tail, t + len(samples) / SAMPLE_RATE)
        if far <= 1e-4:
            return samples
        if self.mode == "gate":
            if float(np.max(np.abs(samples))) > self.ratio * far:
                self._open_until = t + self.hold
            if t <= self._open_until:
                return samples
        self.gated += 1
        return np.zeros_like(samples)

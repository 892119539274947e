"""Microphone ports for live mode, and the gate that keeps the assistant from hearing itself.

Every microphone hands out 16 kHz mono float32 chunks of 512 samples, stamped with session
time, through one bounded queue. The sounddevice callback runs on PortAudio's real-time
thread, so it only copies into that queue with `put_nowait`; when the queue is full it
counts the chunk as dropped (the reader logs the count: logging could block the callback).

`--mic` takes a sounddevice input device (index or name), an audio file played in real time
as if it were the microphone (for tests and demos), or `none`.

Self-hearing. On laptop speakers the microphone hears the answer being spoken; without care
the assistant would barge in on itself, or answer its own words. `SelfHearingGate` stands
between microphone and session and knows exactly what the speaker played and when (the
speaker reports the peak of every block it sends to the device):

- `gate` (default): a Geigel double-talk detector, the classic rule of telephone echo
  cancellers. While the assistant speaks, a chunk passes only if its peak is louder than
  `ratio` x the loudest sample played in the last `tail` seconds (the echo path: output
  latency and room reverb); otherwise it is replaced by silence. The wearer speaking up
  over the answer passes (barge-in, "stop"); the answer's own echo does not. The ratio is
  the one figure to tune: the loudest the echo can be relative to what is played (1.0 means
  "the echo is never louder than the signal we sent", true for laptop speakers at normal
  volume; raise it if the assistant still interrupts itself, lower it if barge-in is hard).
- `mute`: silence the microphone whenever the assistant is speaking (and `tail` after). Safe
  on any hardware, but only the push-to-talk key can interrupt.
- `off`: headphones; nothing to keep out.
An adaptive echo canceller would let quieter speech through, but no well-kept one installs
from PyPI on every platform this runs on (speexdsp and webrtc-audio-processing bindings need
compilers and system libraries), so it is not offered.
"""
from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from core.audio import resample
from core.messages import SAMPLE_RATE

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
            samples = next(source, None)
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
    its chunks are thrown away until `start()`, so the queue is not full of stale audio."""

    def __init__(self, device: dict):
        super().__init__(device["name"])
        self.device = device
        self._live = False
        self._rest = np.zeros(0, np.float32)  # resampled samples waiting to fill a chunk
        self._ready: deque[tuple[float, np.ndarray]] = deque()
        sd = _sounddevice()
        self._rate = SAMPLE_RATE
        try:  # 16 kHz if the device (or its host API) takes it, else its own rate, resampled in read()
            sd.check_input_settings(device["index"], samplerate=SAMPLE_RATE, channels=1, dtype="float32")
        except Exception:  # noqa: BLE001 - PortAudio says why in several ways
            self._rate = int(device["default_samplerate"])
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
            t = self._now() - max(0.0, time_info.currentTime - time_info.inputBufferAdcTime) - frames / self._rate
            self._offer(t, indata[:, 0].copy())

    def read(self, timeout: float) -> tuple[float, np.ndarray] | None:
        if self._rate == SAMPLE_RATE:
            return super().read(timeout)
        if not self._ready:  # a device that cannot do 16 kHz: resample here, outside the callback
            got = super().read(timeout)
            if got is None:
                return None
            t, samples = got
            start = t - len(self._rest) / SAMPLE_RATE  # the leftover came just before this block
            audio = np.concatenate([self._rest, resample(samples, self._rate, SAMPLE_RATE)])
            n = len(audio) // CHUNK
            self._ready.extend((start + i * CHUNK / SAMPLE_RATE, audio[i * CHUNK : (i + 1) * CHUNK]) for i in range(n))
            self._rest = audio[n * CHUNK :]
        return self._ready.popleft() if self._ready else None

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

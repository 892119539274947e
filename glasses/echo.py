"""Echo cancellation for live mode: WebRTC's audio processing module between microphone and session.

On laptop speakers the microphone hears every answer. The Geigel gate (glasses/microphone.py)
lets the wearer through only when they are louder than what is played; an adaptive canceller
subtracts the echo it predicts from what the speaker played, so the echo goes (ERLE ~60 dB)
and a wearer quieter than the answer can still be heard. Not at any level: during double
talk AEC3's suppressor still cuts the wearer's syllables that are weaker than the echo, so
interrupting a loud answer takes longer (benchmarks/echo.py has the figures). The module is
WebRTC's AudioProcessingModule (AEC3 and its residual-echo suppressor, a high-pass filter),
compiled into the `livekit` wheel: no compiler, every platform livekit ships for. It takes
10 ms int16 frames: the far end (what was played) through `process_reverse_stream`, then
the near end (the microphone) through `process_stream`, processed in place.

Aligning the two ends. AEC3 searches for the echo's delay itself, but only a causal one:
an echo that reaches the microphone before its reference reached the canceller is not
cancelled (measured: 16 dB instead of 50 when the reference is 20 ms late). So:
- The speaker hands out every block it sent, silence included, stamped with the session
  time it is heard (callback time + output latency). `Reference` lays them on a 2 s ring
  indexed by session time, at the device's rate when the module takes it (16/32/48 kHz).
- A microphone chunk carries the capture time of its first sample. For each 10 ms frame
  captured at t the canceller feeds the reference heard at [t + LEAD, t + LEAD + 10 ms),
  then the frame: one far frame per near frame, always LEAD apart, which is also the delay
  hint (`set_stream_delay_ms`). LEAD is the margin for devices that report more latency
  than they have; an echo later than its stamp is found up to 250 ms out (measured).
- Both stamps are smoothed by `StreamClock` (jitter-free, drift followed), so the lead is
  steady to the sample and the canceller's filter stays converged.
- A frame waits until the reference it needs has arrived (at most MAX_WAIT). On real
  devices it already has: a block reaches the tap an output latency before it is heard.
- The module returns each frame 8 ms late (14 ms with noise suppression; measured): the
  chunks handed on are stamped with the capture time of what they hold, 22 ms after capture.

Faults: livekit missing or the module failing, at start or later: one warning line, and the
Geigel gate takes over. Never a crash.
"""
from __future__ import annotations

import logging
import math
import time

import numpy as np

from core.messages import SAMPLE_RATE
from glasses.microphone import CHUNK, SelfHearingGate, StreamClock

log = logging.getLogger("echo")

FRAME = SAMPLE_RATE // 100  # the module's 10 ms frame at 16 kHz
LEAD = 0.03  # seconds the reference is fed ahead of the near frame it belongs to
MAX_WAIT = 0.15  # near-end audio held back at most waiting for its reference
# A 32 ms chunk ends mid-frame: up to 128 samples wait for the next chunk. Starting the output
# that much early lets every output chunk go out with the input chunk that completes it
# (22 ms after capture, not a chunk later).
SLACK = FRAME - math.gcd(CHUNK, FRAME)
APM_DELAY = {"aec": 128, "ns": 96}  # samples (16 kHz) each stage delays the near end, measured
MODES = ("aec", *SelfHearingGate.MODES)
# Far-end audio (what was played, above -50 dBFS) the module must have heard before its output
# is trusted for a quick hint of speech: until then its filter leaks echo the VAD takes for a
# voice now and then (benchmarks/echo.py, cold starts: false hints up to 3.2 s into the first answer).
SETTLE_S = 5.0
FAR_ACTIVE = 10 ** (-50 / 20)


class EchoUnavailable(Exception):
    """The canceller cannot run here (livekit missing, or its module refused to start)."""


def preload() -> None:
    """Import livekit now (~0.7 s the first time), before a session clock starts; quietly,
    as open_apm will say what is wrong."""
    try:
        import livekit.rtc  # noqa: F401
    except Exception:  # noqa: BLE001
        pass


def open_apm(noise_suppression: bool = False):
    """WebRTC's module with AEC3 and the high-pass filter.

    Noise suppression stays off: it adds nothing against the echo (same false barge-ins,
    ERLE 61 instead of 63 dB, benchmarks/echo.py), and what it does to the wearer's voice
    (and the tests' noise-burst stand-ins for speech) is a question for ASR, not for echo."""
    try:
        from livekit import rtc

        return rtc.AudioProcessingModule(echo_cancellation=True, noise_suppression=noise_suppression,
                                         high_pass_filter=True)
    except Exception as err:  # noqa: BLE001 - ImportError, or the native library failing to load
        raise EchoUnavailable(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")) from err


class Reference:
    """What the speaker played, on session time: a ring of the last `keep` seconds.

    Kept at the device's rate when the module takes it (16, 32 or 48 kHz: nothing to
    resample, nothing held back); any other rate (44.1 kHz) goes to 48 kHz through one soxr
    stream, which holds back ~5 ms."""

    RATES = (16000, 32000, 48000)

    def __init__(self, rate: int, keep: float = 2.0):
        self.rate = rate  # what the speaker hands out
        self.apm_rate = rate if rate in self.RATES else 48000  # what the module gets
        self.clock = StreamClock(rate)
        self._ring = np.zeros(int(keep * self.apm_rate), np.float32)
        self._origin: float | None = None  # session time of ring index 0
        self._end = 0  # absolute index after the last sample written
        self._stream = None

    def add(self, t: float, block: np.ndarray) -> None:
        start = self.clock.stamp(t, len(block))
        if self._origin is None or self.clock.restarted:
            if self._origin is None:
                self._origin = start
            self._stream = self._new_stream()
            self._jump(int(round((start - self._origin) * self.apm_rate)))
        elif self.clock.moved:
            self._jump(self._end + int(round(self.clock.moved * self.apm_rate)))
        out = self._stream.resample_chunk(block) if self._stream is not None else block
        self._write(np.asarray(out, np.float32))

    def until(self) -> float:
        """Session time up to which the reference is known."""
        return -np.inf if self._origin is None else self._origin + self._end / self.apm_rate

    def read(self, t: float, n: int) -> np.ndarray:
        """`n` samples heard from session time t on; zeros for what is not (or no longer) known."""
        out = np.zeros(n, np.float32)
        if self._origin is None:
            return out
        a = int(round((t - self._origin) * self.apm_rate))
        lo, hi = max(a, self._end - len(self._ring), 0), min(a + n, self._end)
        if lo < hi:
            out[lo - a : hi - a] = self._ring[np.arange(lo, hi) % len(self._ring)]
        return out

    def _jump(self, position: int) -> None:
        """Move the write position to where the stamps say; a gap forward is silence."""
        gap = min(position - self._end, len(self._ring))
        if gap > 0:
            self._write(np.zeros(gap, np.float32), at=position - gap)
        self._end = position

    def _write(self, samples: np.ndarray, at: int | None = None) -> None:
        at = self._end if at is None else at
        samples = samples[-len(self._ring) :]
        self._ring[np.arange(at, at + len(samples)) % len(self._ring)] = samples
        self._end = at + len(samples)

    def _new_stream(self):
        if self.rate == self.apm_rate:
            return None
        import soxr

        return soxr.ResampleStream(self.rate, self.apm_rate, 1, dtype="float32", quality="MQ")


class EchoCanceller:
    """The `aec` self-hearing filter: `process(t, samples)` -> chunks of processed audio.

    `speaker` is the far-end port: `rate` and `heard_blocks()`. `fallback` (a Geigel gate)
    takes over for good if the module fails."""

    mode = "aec"

    def __init__(self, speaker, fallback: SelfHearingGate, *, lead: float = LEAD, max_wait: float = MAX_WAIT,
                 noise_suppression: bool = False, apm=None):
        self.speaker, self.fallback, self.lead, self.max_wait = speaker, fallback, lead, max_wait
        self.apm = apm if apm is not None else open_apm(noise_suppression)
        from livekit import rtc  # open_apm succeeded, so this import does

        self._frame = rtc.AudioFrame
        self.reference = Reference(speaker.rate)
        self.near = StreamClock(SAMPLE_RATE)
        self.delay = APM_DELAY["aec"] + APM_DELAY["ns"] * noise_suppression
        self._pending = np.zeros(0, np.float32)  # near-end samples not processed yet
        self._pending_t = 0.0  # session time of _pending[0]
        self._out = np.zeros(0, np.float32)  # processed samples not handed on yet
        self._out_t = 0.0  # capture time of what _out[0] holds
        self._started = False
        self.frames = self.late = 0  # frames processed; of them, processed without their reference
        self.far_frames = 0  # frames whose reference held sound (the filter learns only from those)
        self.cpu_s = 0.0
        self.failed: str | None = None

    def process(self, t: float, samples: np.ndarray) -> list[tuple[float, np.ndarray]]:
        if self.failed is None:
            try:
                return self._process(t, samples)
            except Exception as err:  # noqa: BLE001 - whatever the module raises, the session goes on
                self.failed = f"{type(err).__name__}: {err}"
                log.warning("echo cancellation failed (%s): the gate takes over", self.failed)
        return self.fallback.process(t, samples)

    @property
    def settled(self) -> bool:
        """The filter has heard enough of the speaker to cancel it: its output is the wearer, not a leak."""
        return self.failed is not None or self.far_frames >= SETTLE_S * 100

    def stats(self) -> dict:
        return {"mode": "aec" if self.failed is None else "gate (aec failed)", "frames": self.frames,
                "settled": self.settled,
                "late_reference_frames": self.late, "reference_dropped_blocks": getattr(self.speaker, "tap_dropped", 0),
                "clock_moves": self.near.moves + self.reference.clock.moves,
                "clock_restarts": self.near.restarts + self.reference.clock.restarts,
                "cpu_s": round(self.cpu_s, 3), "failed": self.failed, "gated_chunks": self.fallback.gated}

    def _process(self, t: float, samples: np.ndarray) -> list[tuple[float, np.ndarray]]:
        started = time.perf_counter()
        start = self.near.stamp(t, len(samples))
        if not self._started or self.near.restarted:  # the stream (re)starts here: drop what was before the gap
            self._started = True
            self._pending, self._out = np.zeros(0, np.float32), np.zeros(SLACK, np.float32)
            self._out_t = start - (self.delay + SLACK) / SAMPLE_RATE
        self._out_t += self.near.moved
        self._pending = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        self._pending_t = start + len(samples) / SAMPLE_RATE - len(self._pending) / SAMPLE_RATE
        for heard, block in self.speaker.heard_blocks():
            self.reference.add(heard, block)
        newest = start + len(samples) / SAMPLE_RATE
        done = []
        while len(self._pending) - len(done) * FRAME >= FRAME:
            at = self._pending_t + len(done) * FRAME / SAMPLE_RATE
            ready = self.reference.until() >= at + self.lead + FRAME / SAMPLE_RATE
            if not ready and newest - at < self.max_wait:
                break  # its reference is on the way: wait for the next chunk
            self.late += not ready
            near = self._pending[len(done) * FRAME : (len(done) + 1) * FRAME]
            done.append(self._cancel(self.reference.read(at + self.lead, self.reference.apm_rate // 100), near))
        if done:
            self._pending = self._pending[len(done) * FRAME :]
            self._out = np.concatenate([self._out, *done])
        chunks = []
        while len(self._out) >= CHUNK:
            chunks.append((self._out_t, self._out[:CHUNK]))
            self._out, self._out_t = self._out[CHUNK:], self._out_t + CHUNK / SAMPLE_RATE
        self.cpu_s += time.perf_counter() - started
        return chunks

    def _cancel(self, far: np.ndarray, near: np.ndarray) -> np.ndarray:
        """One 10 ms frame through the module: the reference first, then the microphone."""
        reverse = self._frame(_pcm(far), self.reference.apm_rate, 1, len(far))
        self.apm.process_reverse_stream(reverse)
        self.apm.set_stream_delay_ms(int(round(self.lead * 1000)))
        frame = self._frame(_pcm(near), SAMPLE_RATE, 1, FRAME)
        self.apm.process_stream(frame)
        self.frames += 1
        self.far_frames += bool(np.max(np.abs(far)) > FAR_ACTIVE)
        return np.frombuffer(frame.data, np.int16).astype(np.float32) / 32768.0


def _pcm(samples: np.ndarray) -> bytearray:
    return bytearray(np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16).tobytes())


def open_self_hearing(mode: str, speaker, ratio: float = 1.0, **canceller) -> tuple[object, str | None]:
    """The filter for `--self-hearing MODE` on this speaker, and a warning line if `aec`
    could not be had (then it is the gate). A speaker that plays nothing has no echo."""
    if mode not in MODES:
        raise ValueError(f"self-hearing mode must be one of {MODES}, not {mode!r}")
    gate = SelfHearingGate("gate" if mode == "aec" else mode, speaker.played, ratio=ratio)
    if mode != "aec" or not hasattr(speaker, "heard_blocks"):
        return gate, None
    try:
        return EchoCanceller(speaker, gate, **canceller), None
    except Exception as err:  # noqa: BLE001 - EchoUnavailable, or the module failing its first call
        return gate, f"echo cancellation unavailable ({err}): using --self-hearing gate"

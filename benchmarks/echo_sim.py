"""The echo benchmark's simulation, in simulated time and deterministic.

1. Play: the real SoundDeviceSpeaker plays the answers; a stand-in stream calls its
   callback every 10 ms with PortAudio-style DAC times, and its tap (`heard_blocks`) is
   read after every block: exactly what the canceller would get, and when.
2. Room: the device's output, soft-clipped and through the room's impulse response, reaches
   the microphone `error` seconds later than its stamps say (latencies a device misreports,
   plus the air); the wearer's speech and a noise floor are added.
3. Hear: microphone chunks of 32 ms reach the filter (aec, gate or off) when their last
   sample has been captured plus the input latency; the filter's output goes through the
   session's own hearing (pipelines.hearing.Hearing: Silero VAD, the endpointer and the
   barge-in rule, voiced >= 0.4 s). Every SpeechStarted and SpeechHint (the quick sign at
   which an answer pauses) is noted with the simulated time the chunk that caused it
   reached the session; the canceller's `settled` rides on its chunks, as in live mode.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from core.messages import SAMPLE_RATE, AudioChunk, SpeechAudio, SpeechHint, SpeechHintEnded, SpeechStarted, Utterance
from glasses.microphone import CHUNK

from benchmarks.echo_room import Piece, Room, noise_floor


@dataclass(frozen=True)
class Devices:
    speaker_rate: int = 48000
    out_latency: float = 0.025  # what the output device reports
    in_latency: float = 0.010  # a microphone chunk reaches the session this long after its last sample
    error: float = 0.010  # the echo arrives this much later than the stamps say


@dataclass
class Program:
    """Answers (start, audio) on session time, and what the wearer says over them."""

    answers: list[tuple[float, SpeechAudio]]
    near: list[tuple[float, Piece, float]] = field(default_factory=list)  # (start, piece, gain)
    seconds: float = 0.0


@dataclass
class Playback:
    rate: int
    stamps: np.ndarray  # heard time of each block, as the speaker stamped it
    calls: np.ndarray  # simulated time each block's callback ran (it reaches the tap then)
    samples: np.ndarray  # the device's output, all blocks in a row
    block: int
    answers: list[tuple[float, float]]  # heard [start, end) of each answer


class _Stream:
    def __init__(self, latency):
        self.latency = latency

    def start(self):
        """Driven by `play` instead."""

    stop = close = start


def play(program: Program, devices: Devices) -> Playback:
    from glasses.speaker import SoundDeviceSpeaker

    now = [0.0]
    speaker = SoundDeviceSpeaker(None, lambda: now[0], rate=devices.speaker_rate, block_s=0.01,
                                 stream_factory=lambda **kw: _Stream(devices.out_latency))
    n = int(program.seconds * 100)
    out = np.zeros((speaker.block, 1), np.float32)
    samples = np.zeros(n * speaker.block, np.float32)
    stamps, calls, heard = np.zeros(n), np.zeros(n), []
    queue = sorted(program.answers, key=lambda a: a[0])
    speaker.heard_blocks()  # start the tap
    for k in range(n):
        now[0] = k * speaker.block / speaker.rate
        while queue and queue[0][0] - devices.out_latency <= now[0]:
            start, end = speaker.play(queue.pop(0)[1], now[0])
            heard.append((start + devices.out_latency, end + devices.out_latency))
        info = SimpleNamespace(currentTime=100.0 + now[0], outputBufferDacTime=100.0 + now[0] + devices.out_latency)
        speaker._callback(out, speaker.block, info, None)
        ((stamps[k], block),) = speaker.heard_blocks()
        calls[k], samples[k * speaker.block : (k + 1) * speaker.block] = now[0], block
    return Playback(speaker.rate, stamps, calls, samples, speaker.block, heard)


def microphone(program: Program, playback: Playback, room: Room, devices: Devices,
               noise_db: float | None = -55.0) -> tuple[np.ndarray, np.ndarray, list[tuple[float, float]]]:
    """(microphone, its echo alone, [(onset, end)] of the wearer's speech), 16 kHz from time 0.

    The wearer's level is relative to the echo heard over the same second (`program.near`
    holds (start, piece, signal-to-echo dB)), so a barge-in at -5 dB is 5 dB under the echo."""
    from core.audio import resample

    from benchmarks.echo_room import active_rms

    n = int(program.seconds * SAMPLE_RATE)
    heard = room.echo(resample(playback.samples, playback.rate, SAMPLE_RATE))
    at = int(round((playback.stamps[0] + devices.error) * SAMPLE_RATE))
    heard = heard[max(0, -at) : max(0, -at) + n - max(at, 0)]
    echo = np.zeros(n, np.float32)
    echo[max(at, 0) : max(at, 0) + len(heard)] = heard
    mic, spans = echo.copy(), []
    for start, piece, ser_db in program.near:
        a, onset = int(start * SAMPLE_RATE), start + piece.onset
        o = int(onset * SAMPLE_RATE)
        local = active_rms(echo[o : o + SAMPLE_RATE]) or 10 ** (-30 / 20)
        gain = 10 ** (ser_db / 20) * local / active_rms(piece.samples)
        mic[a : a + len(piece.samples)] += gain * piece.samples[: n - a]
        spans.append((onset, start + len(piece.samples) / SAMPLE_RATE))
    floor = noise_floor(program.seconds, noise_db) if noise_db is not None else \
        np.random.default_rng(2).standard_normal(n).astype(np.float32) * 1e-5
    return mic + floor, echo, spans


class ReplaySpeaker:
    """The far-end port over a recorded playback: blocks reach the tap when their callback ran."""

    def __init__(self, playback: Playback):
        self.playback, self.rate, self.now = playback, playback.rate, 0.0
        self.tap_dropped, self._next = 0, 0
        blocks = playback.samples.reshape(-1, playback.block)
        self._peaks = np.abs(blocks).max(axis=1)
        self._ends = playback.stamps + playback.block / playback.rate

    def heard_blocks(self):
        end = int(np.searchsorted(self.playback.calls, self.now, side="right"))
        b = self.playback.block
        got = [(self.playback.stamps[k], self.playback.samples[k * b : (k + 1) * b]) for k in range(self._next, end)]
        self._next = max(self._next, end)
        return got

    def played(self, t0: float, t1: float) -> float:
        """What SoundDeviceSpeaker.played says: the peak sent for heard times [t0, t1], so far."""
        lo = int(np.searchsorted(self._ends, t0))
        sent = int(np.searchsorted(self.playback.calls, self.now, side="right"))  # blocks whose callback has run
        hi = min(int(np.searchsorted(self.playback.stamps, t1, side="right")), sent)
        return float(self._peaks[lo:hi].max()) if hi > lo else 0.0


@dataclass
class Heard:
    output: np.ndarray  # the filter's output on the microphone's timeline
    starts: list[tuple[float, float]]  # SpeechStarted: (speech start, simulated time it reached the session)
    hints: list[tuple[float, float]]  # SpeechHint: (its start, simulated time it reached the session)
    hint_ends: list[float]  # SpeechHintEnded: simulated time (a paused answer would go on)
    utterances: list[tuple[float, float]]  # final utterances: (start, end)
    filter_s: float  # CPU seconds in the filter
    stats: dict


def make_filter(mode: str, speaker):
    from glasses.echo import EchoCanceller
    from glasses.microphone import SelfHearingGate

    if mode == "aec":
        return EchoCanceller(speaker, SelfHearingGate("gate", speaker.played))
    return SelfHearingGate(mode, speaker.played)


def hear(mode: str, mic: np.ndarray, playback: Playback, devices: Devices) -> Heard:
    from core.clock import MediaClock
    from pipelines.hearing import Hearing, HearingConfig
    from pipelines.vad import SileroVAD

    speaker = ReplaySpeaker(playback)
    filt = make_filter(mode, speaker)
    hearing = Hearing(HearingConfig(), SileroVAD(), MediaClock())
    output = np.zeros(len(mic), np.float32)
    starts, hints, hint_ends, utterances, spent = [], [], [], [], 0.0
    for k in range(len(mic) // CHUNK):
        t = k * CHUNK / SAMPLE_RATE
        arrives = t + CHUNK / SAMPLE_RATE + devices.in_latency
        speaker.now = arrives
        began = time.perf_counter()
        chunks = filt.process(t, mic[k * CHUNK : (k + 1) * CHUNK])
        spent += time.perf_counter() - began
        settled = getattr(filt, "settled", True)
        for t_out, samples in chunks:
            a = int(round(t_out * SAMPLE_RATE))
            lo = max(0, -a)
            output[a + lo : a + len(samples)] = samples[lo : len(output) - a]
            for ev in hearing.feed(AudioChunk(t_out, samples, settled)):
                if isinstance(ev, SpeechStarted):
                    starts.append((ev.t, arrives))
                elif isinstance(ev, SpeechHint):
                    hints.append((ev.start, arrives))
                elif isinstance(ev, SpeechHintEnded):
                    hint_ends.append(arrives)
                elif isinstance(ev, Utterance) and not ev.early:
                    utterances.append((ev.start, ev.end))
    return Heard(output, starts, hints, hint_ends, utterances, spent, filt.stats())

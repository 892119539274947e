"""Echo cancellation (glasses/echo.py), the streams' clocks and the microphone's resampler.

The canceller runs the real WebRTC module (livekit) on a synthetic voice through a synthetic
echo path; its far end is a stand-in speaker that hands out 10 ms blocks stamped with the
time they are heard. The live session at the end runs on the project's fake ports.
"""
import logging
import sys

import numpy as np
import pytest

from core.messages import SAMPLE_RATE as SR
from glasses.echo import SLACK, EchoCanceller, Reference, open_self_hearing
from glasses.echo import preload
from glasses.microphone import CHUNK, Rechunker, SelfHearingGate, StreamClock

preload()  # livekit's first import takes ~0.7 s: not inside a live session whose clock already runs


def voice(seconds: float, seed: int, lo: float = 100, hi: float = 170) -> np.ndarray:
    """Speech-like sound: a gliding harmonic tone in syllable-length bursts, with some hiss."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    phase = 2 * np.pi * np.cumsum(lo + (hi - lo) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.6 * t + seed))) / SR
    tone = sum(np.sin(k * phase) * np.exp(-k / 12) for k in range(1, 40))
    on = np.repeat(rng.uniform(size=n // 2400 + 1) > 0.35, 2400)[:n].astype(float)
    hiss = rng.standard_normal(n) * np.repeat(rng.uniform(size=n // 1600 + 1) > 0.8, 1600)[:n] * 0.3
    y = (tone + hiss) * np.convolve(on, np.ones(320) / 320, "same")
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


class Speaker:
    """The far-end port: `far` (at `rate`) is heard from session time 0; each 10 ms block
    reaches the tap `latency` s before it is heard (negative: after, as from a late callback)."""

    def __init__(self, far: np.ndarray, rate: int = SR, latency: float = 0.05, stamp_error: float = 0.0):
        self.far, self.rate, self.latency, self.stamp_error = far, rate, latency, stamp_error
        self.now, self.sent = 0.0, 0

    def heard_blocks(self):
        block, out = self.rate // 100, []
        while self.sent * 0.01 - self.latency <= self.now and (self.sent + 1) * block <= len(self.far):
            out.append((self.sent * 0.01 + self.stamp_error, self.far[self.sent * block : (self.sent + 1) * block]))
            self.sent += 1
        return out

    def played(self, t0, t1):
        return 0.0


def cancel(mic: np.ndarray, speaker: Speaker, **options):
    """Feed the microphone in 32 ms chunks as they would arrive; the output on the same timeline."""
    canceller = EchoCanceller(speaker, SelfHearingGate("gate", speaker.played), **options)
    out = np.zeros(len(mic), np.float32)
    for k in range(len(mic) // CHUNK):
        t = k * CHUNK / SR
        speaker.now = t + CHUNK / SR
        for t_out, samples in canceller.process(t, mic[k * CHUNK : (k + 1) * CHUNK]):
            a = int(round(t_out * SR))
            out[max(a, 0) : a + len(samples)] = samples[max(-a, 0) : len(out) - a]
    return out, canceller


def room(far: np.ndarray, delay: float = 0.0) -> np.ndarray:
    """A laptop-like echo path: direct sound, two reflections, `delay` s later than stamped."""
    path = np.zeros(400, np.float32)
    path[20], path[90], path[300] = 0.6, -0.25, 0.1
    echo = np.convolve(far, path)[: len(far)]
    d = int(delay * SR)
    return np.concatenate([np.zeros(d, np.float32), echo[: len(echo) - d]]).astype(np.float32)


def db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-15))


def erle(echo, out, a=3.0, b=9.0):
    return db(echo[int(a * SR) : int(b * SR)]) - db(out[int(a * SR) : int(b * SR)])


@pytest.fixture(scope="module")
def far():
    far = voice(12.0, seed=1)
    far[9 * SR :] = 0.0  # the assistant is quiet from 9 s: the wearer alone
    return far


# --- the canceller ---------------------------------------------------------------------------
def test_the_canceller_removes_the_echo_and_keeps_the_wearer(far):
    near = np.zeros_like(far)
    near[9 * SR : 11 * SR] = voice(2.0, seed=2, lo=180, hi=260)
    echo = room(far)
    out, canceller = cancel(echo + near, Speaker(far))
    assert erle(echo, out) > 35  # measured ~70 dB
    wearer = slice(int(9.2 * SR), 11 * SR)
    assert abs(db(near[wearer]) - db(out[wearer])) < 1.5  # measured 0.4 dB
    lag = np.argmax([np.dot(out[wearer.start + d : wearer.stop + d], near[wearer]) for d in range(-40, 40)]) - 40
    assert abs(lag) <= 4  # the output is stamped with the capture time of what it holds
    assert canceller.late == 0 and canceller.failed is None


def test_the_canceller_is_settled_once_it_has_heard_five_seconds_of_the_speaker(far):
    quiet = np.zeros(6 * SR, np.float32)
    assert not cancel(quiet, Speaker(quiet))[1].settled  # silence teaches the filter nothing
    short = far[: int(3.5 * SR)]
    assert not cancel(room(short), Speaker(short))[1].settled  # ~2.3 s of voiced far end (its bursts)
    _, canceller = cancel(room(far), Speaker(far))
    assert canceller.settled and canceller.stats()["settled"] and canceller.far_frames >= 500


def test_a_48k_and_a_44k_speaker_are_cancelled_alike(far):
    from core.audio import resample

    echo = room(far)
    for rate in (48000, 44100):
        out, _ = cancel(echo, Speaker(resample(far, SR, rate), rate=rate))
        assert erle(echo, out) > 35, rate


def test_the_reference_is_aligned_by_its_stamps_not_by_when_it_arrives(far):
    echo = room(far)
    # Blocks reach the tap 80 ms after they are heard (a late callback): frames wait for them.
    out, canceller = cancel(echo, Speaker(far, latency=-0.08))
    assert erle(echo, out) > 35 and canceller.late == 0
    # The device says its latency is 150 ms shorter than it is: the canceller's search finds it.
    assert erle(room(far, delay=0.15), cancel(room(far, delay=0.15), Speaker(far))[0]) > 30
    # Stamps 60 ms late (the echo arrives before its reference): that is what alignment prevents.
    assert erle(echo, cancel(echo, Speaker(far, stamp_error=0.06))[0]) < 15


def test_the_reference_ring_lays_jittery_blocks_on_exact_sample_times():
    ramp = np.arange(48000 * 3, dtype=np.float32) / 1e6
    ref = Reference(48000)
    rng = np.random.default_rng(0)
    for k in range(300):  # 3 s of 10 ms blocks, stamps jittered by up to 2 ms
        ref.add(k * 0.01 + rng.uniform(-0.002, 0.002), ramp[k * 480 : (k + 1) * 480])
    first = ref.clock._next - 3.0  # the counted time of sample 0
    got = ref.read(first + 1.0, 480)
    assert np.array_equal(got, ramp[48000:48480])  # to the sample
    assert not ref.read(first + 5.0, 10).any() and ref.until() == pytest.approx(first + 3.0)


def test_stream_clock_smooths_jitter_follows_drift_and_restarts_on_a_gap():
    clock = StreamClock(16000)
    rng = np.random.default_rng(1)
    times = [clock.stamp(k * 0.032 + rng.uniform(-0.003, 0.003), 512) for k in range(200)]
    assert np.allclose(np.diff(times), 0.032) and clock.moves == 0  # jitter: counted, not followed
    drifting = StreamClock(16000)
    for k in range(2000):  # the device runs 0.05 % fast: 32 ms in 64 s
        drifting.stamp(k * 0.032 * 1.0005, 512)
    assert drifting.moves >= 2 and abs(drifting._next - 2000 * 0.032 * 1.0005) < 0.015
    assert clock.stamp(200 * 0.032 + 0.5, 512) == pytest.approx(200 * 0.032 + 0.5) and clock.restarted


# --- faults: the gate takes over ------------------------------------------------------------
def test_without_livekit_aec_falls_back_to_the_gate_with_one_line(monkeypatch, far):
    monkeypatch.setitem(sys.modules, "livekit", None)  # `import livekit` raises ImportError
    speaker = Speaker(far)
    chosen, warning = open_self_hearing("aec", speaker, ratio=1.5)
    assert isinstance(chosen, SelfHearingGate) and chosen.mode == "gate" and chosen.ratio == 1.5
    assert warning.startswith("echo cancellation unavailable") and "\n" not in warning
    assert "gate" in warning


def test_a_module_that_fails_while_running_hands_over_to_the_gate(caplog, far):
    class Broken:
        calls = 0

        def process_reverse_stream(self, frame):
            """The far end is accepted; only the near end fails."""

        def set_stream_delay_ms(self, ms):
            """Accepted: the delay does not matter to a module that fails."""

        def process_stream(self, frame):
            Broken.calls += 1
            if Broken.calls > 50:
                raise RuntimeError("apm gone")

    speaker = Speaker(far)
    with caplog.at_level(logging.WARNING, logger="echo"):
        out, canceller = cancel(room(far), speaker, apm=Broken())
    assert canceller.failed.startswith("RuntimeError") and canceller.stats()["mode"] == "gate (aec failed)"
    assert len([r for r in caplog.records if "echo cancellation failed" in r.message]) == 1
    assert canceller.fallback.gated == 0  # this Speaker never reports playing: the gate lets all through
    assert np.abs(out[4 * SR : 5 * SR]).max() > 0.05


def test_modes_other_than_aec_and_speakers_that_play_nothing_get_the_gate(far):
    class Silent:
        def played(self, t0, t1):
            return 0.0

    assert isinstance(open_self_hearing("aec", Silent())[0], SelfHearingGate)
    assert open_self_hearing("mute", Speaker(far))[0].mode == "mute"
    with pytest.raises(ValueError, match="aec"):
        open_self_hearing("loud", Speaker(far))


# --- the microphone's streaming resampler ----------------------------------------------------
@pytest.mark.parametrize("rate", [48000, 44100])
def test_the_microphone_resamples_as_one_stream_without_seams(rate):
    import soxr

    t = np.arange(rate * 2) / rate
    tone = (0.5 * np.sin(2 * np.pi * 997 * t)).astype(np.float32)
    rechunk, chunks, at = Rechunker(rate), [], 0
    for size in np.random.default_rng(0).integers(rate // 50, rate // 20, 100):  # uneven device blocks
        if at >= len(tone):
            break
        chunks += rechunk.push(1.0 + at / rate, tone[at : at + size])
        at += size
    times = [c[0] for c in chunks]
    assert times[0] == pytest.approx(1.0) and np.allclose(np.diff(times), CHUNK / SR)
    assert all(len(c[1]) == CHUNK for c in chunks)
    got = np.concatenate([c[1] for c in chunks])
    whole = soxr.resample(tone, rate, SR, quality="HQ")[: len(got)]
    assert np.max(np.abs(got[200:] - whole[200:])) < 1e-3  # the same as resampling it all at once: no seams


def test_the_canceller_output_keeps_the_chunk_contract(far):
    out_chunks = []
    speaker = Speaker(far)
    canceller = EchoCanceller(speaker, SelfHearingGate("gate", speaker.played))
    for k in range(40):
        speaker.now = (k + 1) * CHUNK / SR
        out_chunks += canceller.process(k * CHUNK / SR, far[k * CHUNK : (k + 1) * CHUNK])
    assert all(len(s) == CHUNK for _, s in out_chunks) and len(out_chunks) >= 38
    assert out_chunks[0][0] == pytest.approx(-(canceller.delay + SLACK) / SR)
    assert np.allclose(np.diff([t for t, _ in out_chunks]), CHUNK / SR)


# --- a live session on fake ports ------------------------------------------------------------
def live_with_echo(tmp_path, seconds, bursts, script, mode):
    """The real speaker on a fake output stream; the microphone hears the wearer's `bursts` and
    what the stream played, at half its level, the moment it played it."""
    from core.clock import WallClock
    from glasses.camera import Camera
    from glasses.fakes import FakeCapture, FakeOutputStream, scripted_microphone, tone_track
    from glasses.speaker import SoundDeviceSpeaker
    from pipelines.app import LiveOptions, live
    from tests.fakes import EnergyVAD, FakeTTS, FakeVLM, ScriptedASR

    clock, streams = WallClock(), []

    def output(**kw):
        streams.append(FakeOutputStream(**kw, now=clock.now))
        return streams[-1]

    speaker = SoundDeviceSpeaker(None, clock.now, rate=SR, stream_factory=output)
    mic = scripted_microphone(tone_track(seconds, bursts), echo=lambda t, n: 0.5 * streams[0].sound(t, n))
    image = np.full((90, 120, 3), 128, np.uint8)
    camera = Camera(FakeCapture(lambda i: image, fps=30, frames=int(seconds * 30), paced=False), kind="file")
    result = live(LiveOptions(window=False, out=tmp_path / "out", echo=False, self_hearing=mode),
                  camera=camera, mic=mic, speaker=speaker, asr=ScriptedASR(script),
                  vlm=FakeVLM("This is a long answer that goes on. " * 6), tts=FakeTTS(), vad=EnergyVAD(), clock=clock)
    return result, speaker, streams[0]


@pytest.mark.parametrize("mode,self_interrupts", [("aec", False), ("off", True)])
def test_a_live_session_with_aec_neither_answers_nor_interrupts_itself(tmp_path, mode, self_interrupts):
    """Nobody speaks after the question."""
    result, speaker, stream = live_with_echo(tmp_path, 3.5, [(0.2, 0.9)], [(0.5, "Hey glasses, describe everything.")], mode)
    kinds = [r["type"] for r in result.records]
    # Hearing itself, it pauses for its own voice, goes on, pauses again: it yields to its echo
    assert ("yield" in kinds) is self_interrupts
    if not self_interrupts:
        assert "barge_in" not in kinds and len(speaker.clears) == 1  # the last clear is close()
    playing = [t for t, block in stream.blocks if block.any()]
    assert playing and stream.sound(playing[0], 1600).any()  # the answer played, and the microphone heard it
    session, end = result.records[0], result.records[-1]
    assert session["self_hearing"] == mode and session["speaker_latency_s"] == 0.0
    if mode == "aec":
        assert [t["question"] for t in result.turns] == ["describe everything."]  # its own voice was no question
        assert playing[-1] - playing[0] > 1.5  # it spoke until the session ended
        assert end["self_hearing"]["frames"] > 250 and end["self_hearing"]["failed"] is None


def test_once_the_canceller_has_settled_speech_over_the_answer_pauses_it_at_once(tmp_path):
    """With `aec` and a long answer: after 5 s of it the wearer speaks over it. The answer pauses
    at the first hint of their voice, well before the 0.4 s that cancels it."""
    result, _, stream = live_with_echo(tmp_path, 9.5, [(0.2, 0.9), (8.0, 8.9)],
                                       [(0.5, "Hey glasses, describe everything."), (8.5, "what colour is it?")], "aec")
    onset = [r for r in result.records if r["type"] == "heard"][0]["start"] + 7.8  # the microphone started late
    yields = [r for r in result.records if r["type"] == "yield"]
    (barge,) = [r for r in result.records if r["type"] == "barge_in"]
    # none for its own voice before (EnergyVAD, which scores any residual, may hear the next answer's first tone)
    assert yields and yields[0]["turn"] == 1 and -0.1 < yields[0]["speech_start"] - onset < 0.35
    assert barge["t"] > yields[0]["t"]  # paused first, cancelled after 0.4 s of speech
    silent = [t for t, block in stream.blocks if t > yields[0]["t"] and not block.any()]
    assert silent and silent[0] - onset < 0.5  # the goal: the floor is the wearer's within half a second
    assert result.records[-1]["self_hearing"]["settled"] is True


def test_a_48k_device_microphone_hands_out_16k_chunks_stamped_with_their_capture_time(monkeypatch):
    """DeviceMicrophone with a stand-in for sounddevice: the callback's blocks (48 kHz, with
    PortAudio's ADC times) come out of read() as 16 kHz chunks on the session timeline."""
    from types import SimpleNamespace

    import glasses.microphone as microphone

    class InputStream:
        def __init__(self, *, callback, samplerate, blocksize, **kw):
            self.callback, self.rate, self.block = callback, samplerate, blocksize

        def start(self):
            """Driven by the test."""

        stop = close = start

    def refuse_16k(*args, **kwargs):
        raise ValueError("Invalid sample rate")

    fake = SimpleNamespace(InputStream=InputStream, check_input_settings=refuse_16k)
    monkeypatch.setattr(microphone, "_sounddevice", lambda: fake)
    now = [0.0]
    mic = microphone.DeviceMicrophone({"name": "usb", "index": 3, "default_samplerate": 48000}).start(lambda: now[0])
    stream = mic._stream
    assert stream.rate == 48000 and stream.block == 1536
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)).astype(np.float32)
    for k in range(30):  # each callback runs when its block is complete, 5 ms after the ADC had it
        adc = 10.0 + k * 0.032
        now[0] = k * 0.032 + 0.032 + 0.005
        info = SimpleNamespace(inputBufferAdcTime=adc, currentTime=adc + 0.032 + 0.005)
        stream.callback(tone[k * 1536 : (k + 1) * 1536, None], 1536, info, None)
    chunks = [mic.read(0.01) for _ in range(28)]
    assert mic.timed and chunks[0][0] == pytest.approx(0.0)  # the first sample was captured at session time 0
    assert np.allclose(np.diff([t for t, _ in chunks]), CHUNK / SR) and all(len(s) == CHUNK for _, s in chunks)
    import soxr

    got = np.concatenate([s for _, s in chunks])
    assert np.max(np.abs(got[200:] - soxr.resample(tone, 48000, SR, quality="HQ")[200 : len(got)])) < 1e-3

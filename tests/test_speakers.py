"""Speakers pause for the wearer and go on where they stopped: nothing of the answer is lost,
nothing sounds while paused, and the queued end moves by the pause."""
from types import SimpleNamespace

import numpy as np
import pytest

from core.messages import SpeechAudio
from glasses.fakes import RecordingSpeaker
from glasses.speaker import MixSpeaker, SoundDeviceSpeaker, TextSpeaker


def _ramp(seconds, rate=16000, text="hi"):
    n = round(seconds * rate)
    return SpeechAudio(text, np.linspace(0.01, 0.5, n).astype(np.float32), rate)


class _Stream:
    """sounddevice.OutputStream's place: the test calls the speaker's callback itself."""

    latency = 0.0

    def __init__(self, **kw):
        self.opened = kw

    def start(self):
        self.started = True

    stop = close = start


def test_the_replay_speaker_splits_the_clip_it_paused_and_shifts_what_follows(tmp_path):
    speaker = MixSpeaker(tmp_path)
    a, b = _ramp(1.0, text="one"), _ramp(1.0, text="two")
    speaker.play(a, 1.0)
    speaker.play(b, 1.0)  # 2.0 .. 3.0
    speaker.pause(1.4)
    assert speaker.play(_ramp(0.5, text="three"), 1.6) == (3.0, 3.5)  # queued; moved at the resume
    speaker.resume(2.0)
    clips = [(c.text, round(c.start, 3), round(c.end, 3)) for c in speaker.clips()]
    assert clips == [("one", 1.0, 1.4), ("one", 2.0, 2.6), ("two", 2.6, 3.6), ("three", 3.6, 4.1)]
    first, rest = speaker.clips()[:2]
    assert np.allclose(np.concatenate([speaker.samples(first), speaker.samples(rest)]), a.samples, atol=1 / 32768)
    assert speaker.busy_until() == pytest.approx(4.1)
    speaker.pause(3.0)
    speaker.clear(3.5)  # a barge-in while paused: silent from the pause, not from the clear
    assert speaker.clears[-1] == 3.0 and max(c.end for c in speaker.clips()) == pytest.approx(3.0, abs=1e-3)
    speaker.resume(3.8)  # nothing was paused any more
    assert max(c.end for c in speaker.clips()) == pytest.approx(3.0, abs=1e-3)
    speaker.close()


def test_the_device_speaker_sends_silence_while_paused_and_goes_on_from_the_same_sample():
    now = [0.0]
    speaker = SoundDeviceSpeaker(None, lambda: now[0], rate=16000, block_s=0.01, stream_factory=_Stream)
    assert speaker._stream.opened["blocksize"] == 160 and speaker._stream.started
    audio = _ramp(0.1)
    assert speaker.play(audio, 0.0) == (0.0, pytest.approx(0.1))
    sent = []

    def blocks(k):
        for _ in range(k):
            out = np.zeros((160, 1), np.float32)
            speaker._callback(out, 160, SimpleNamespace(currentTime=0.0, outputBufferDacTime=0.0), None)
            sent.append(out[:, 0].copy())
            now[0] += 0.01

    blocks(3)
    speaker.pause(now[0])
    blocks(5)
    assert not np.concatenate(sent[3:]).any() and len(speaker.silenced) == 1  # silent while paused
    assert speaker.busy_until() == pytest.approx(0.15)  # 0.05 s paused so far: it ends that much later
    assert speaker.play(_ramp(0.05), now[0]) == (pytest.approx(0.15), pytest.approx(0.2))  # after what is held
    speaker.resume(now[0])
    assert speaker.busy_until() == pytest.approx(0.2)
    blocks(12)
    played = np.concatenate(sent)
    played = played[played != 0]
    assert np.array_equal(played[: len(audio.samples)], audio.samples)  # nothing skipped, nothing repeated
    assert len(played) == len(audio.samples) + 800


def test_the_text_speaker_and_the_fake_speaker_keep_the_same_rhythm():
    now = [0.0]
    text = TextSpeaker(lambda: now[0])
    fake = RecordingSpeaker(lambda: now[0])
    for speaker in (text, fake):
        now[0] = 0.0
        speaker.play(_ramp(1.0), 0.0)
        now[0] = 0.4
        speaker.pause(0.4)
        now[0] = 0.9
        assert speaker.busy_until() == pytest.approx(1.5)
        speaker.resume(0.9)
        assert speaker.busy_until() == pytest.approx(1.5)
    assert not fake.sound(0.5, 3200).any() and fake.sound(0.9, 160).any()  # the paused stretch is silent

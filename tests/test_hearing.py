"""Hearing on its own: audio chunks in, speech events and utterances out, in media-time order."""
import numpy as np

from core.clock import MediaClock
from core.messages import SAMPLE_RATE, AudioChunk, PushToTalk, SpeechResumed, SpeechStarted, TypedQuestion, Utterance
from glasses.fakes import tone_track
from pipelines.hearing import Hearing, HearingConfig
from tests.fakes import EnergyVAD


def hear(audio, *, presses=(), **config):
    hearing = Hearing(HearingConfig(**config), EnergyVAD(), MediaClock())
    for p in presses:
        hearing.press(p)
    out = []
    for i in range(0, len(audio), 512):
        out += list(hearing.feed(AudioChunk(i / SAMPLE_RATE, audio[i:i + 512])))
    return out + list(hearing.finish(len(audio) / SAMPLE_RATE))


def names(messages):
    return [type(m).__name__ + (" early" if isinstance(m, Utterance) and m.early else "") for m in messages]


def test_one_question_gives_onset_barge_length_pause_early_cut_and_the_utterance():
    out = hear(tone_track(4.0, [(1.0, 2.0)]))
    assert names(out) == ["SpeechOnset", "SpeechStarted", "SpeechPaused", "Utterance early", "Utterance"]
    onset, long_enough, paused, early, final = out
    assert abs(onset.start - 1.0) < 0.04 and abs(long_enough.detected_at - 1.4) < 0.05
    assert abs(paused.end - 2.0) < 0.04
    assert (early.start, early.end) == (final.start, final.end) and np.array_equal(early.audio, final.audio)
    assert abs(final.detected_at - (final.end + 0.5)) < 0.04  # the endpointing silence
    assert abs(len(final.audio) / SAMPLE_RATE - (final.end - final.start + 0.4)) < 0.01  # 0.3 s before, 0.1 s after


def test_a_short_sound_is_no_barge_in_and_a_resumed_question_is_cut_again():
    assert "SpeechStarted" not in names(hear(tone_track(3.0, [(1.0, 1.3)])))
    out = hear(tone_track(5.0, [(1.0, 1.6), (1.85, 2.6)]))  # a 0.25 s hesitation inside the question
    assert names(out) == ["SpeechOnset", "SpeechStarted", "SpeechPaused", "Utterance early", "SpeechResumed",
                          "SpeechPaused", "Utterance early", "Utterance"]
    resumed = out[4]
    assert isinstance(resumed, SpeechResumed) and resumed.start == out[0].start
    assert abs(out[-1].end - 2.6) < 0.04 and out[-1].start == out[0].start


def test_typed_questions_arrive_when_the_audio_reaches_them_and_at_the_end():
    out = hear(tone_track(2.0, []), asks=((1.0, "what is this?"), (9.0, "and after the end?")))
    assert [(m.t, m.text) for m in out] == [(1.0, "what is this?"), (9.0, "and after the end?")]
    assert all(isinstance(m, TypedQuestion) for m in out)


def test_push_to_talk_bounds_the_question_without_the_endpointer():
    audio = tone_track(5.0, [(1.0, 1.5), (2.2, 2.8)])  # two bursts with a long pause: one question by button
    out = hear(audio, presses=(PushToTalk(0.9, True), PushToTalk(3.0, False)))
    assert names(out) == ["SpeechStarted", "Utterance"]
    pressed, question = out
    assert isinstance(pressed, SpeechStarted) and pressed.t == 0.9
    assert (question.start, question.end, question.push_to_talk) == (0.9, 3.0, True)


def test_early_asr_off_makes_no_early_cut_but_still_reports_the_pause():
    out = names(hear(tone_track(4.0, [(1.0, 2.0)]), early_asr=False))
    assert out == ["SpeechOnset", "SpeechStarted", "SpeechPaused", "Utterance"]  # speculation still starts at the pause

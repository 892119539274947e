"""Hearing on its own: audio chunks in, speech events and utterances out, in media-time order."""
import logging

import numpy as np

from core.clock import MediaClock
from core.messages import SAMPLE_RATE, AudioChunk, PushToTalk, SpeechResumed, SpeechStarted, TypedQuestion, Utterance
from glasses.fakes import tone_track
from pipelines.hearing import Hearing, HearingConfig
from pipelines.turn_model import SmartTurnConfig
from pipelines.vad import EndpointConfig
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
    assert names(out) == ["SpeechHint", "SpeechOnset", "SpeechStarted", "SpeechPaused", "Utterance early", "Utterance"]
    hint, onset, long_enough, paused, early, final = out
    assert hint.start == onset.start and hint.t < onset.t  # the quick sign first; confirmed, so it never "ends"
    assert abs(onset.start - 1.0) < 0.04 and abs(long_enough.detected_at - 1.4) < 0.05
    assert abs(paused.end - 2.0) < 0.04
    assert (early.start, early.end) == (final.start, final.end) and np.array_equal(early.audio, final.audio)
    assert abs(final.detected_at - (final.end + 0.5)) < 0.04  # the endpointing silence
    assert abs(len(final.audio) / SAMPLE_RATE - (final.end - final.start + 0.4)) < 0.01  # 0.3 s before, 0.1 s after


def test_a_short_sound_is_no_barge_in_and_a_resumed_question_is_cut_again():
    short = hear(tone_track(3.0, [(1.0, 1.3)]))  # a "mm-hmm": a hint that ends 0.3 s after it
    assert names(short) == ["SpeechHint", "SpeechOnset", "SpeechPaused", "Utterance early", "SpeechHintEnded", "Utterance"]
    assert abs(short[4].t - 1.6) < 0.04 and short[4].words  # an utterance: its transcript follows
    out = hear(tone_track(5.0, [(1.0, 1.6), (1.85, 2.6)]))[1:]  # a 0.25 s hesitation inside the question
    assert names(out) == ["SpeechOnset", "SpeechStarted", "SpeechPaused", "Utterance early", "SpeechResumed",
                          "SpeechPaused", "Utterance early", "Utterance"]
    resumed = out[4]
    assert isinstance(resumed, SpeechResumed) and resumed.start == out[0].start
    assert abs(out[-1].end - 2.6) < 0.04 and out[-1].start == out[0].start


def test_speech_that_goes_on_is_reported_every_look_every_seconds_but_not_in_its_pauses():
    out = hear(tone_track(5.0, [(1.0, 2.0), (2.3, 3.0)]), look_every=0.2)  # a 0.3 s pause inside
    onset = next(m for m in out if type(m).__name__ == "SpeechOnset")
    looks = [m for m in out if type(m).__name__ == "SpeechContinues"]
    assert all(m.start == onset.start for m in looks)
    times = [m.t for m in looks]
    assert abs(times[0] - (onset.t + 0.2)) < 0.04 and all(0.19 < b - a < 0.45 for a, b in zip(times, times[1:]))
    assert not any(2.05 < t < 2.3 for t in times)  # silent: nothing new is being said, the pause looks itself
    assert 2.4 < times[-1] <= 3.05 and len(times) >= 7
    assert "SpeechContinues" not in names(hear(tone_track(4.0, [(1.0, 2.0)])))  # off unless asked for


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
    out = names(hear(tone_track(4.0, [(1.0, 2.0)]), early_asr=False, hint=None))
    assert out == ["SpeechOnset", "SpeechStarted", "SpeechPaused", "Utterance"]  # speculation still starts at the pause


# --- a turn model judges each pause (turn="smart") ------------------------------------------
class FakeTurn:
    """Says "finished" with the given probabilities, one per call, and remembers what it heard."""

    def __init__(self, *probabilities, error=None):
        self.probabilities, self.error, self.heard = list(probabilities), error, []

    def __call__(self, audio):
        self.heard.append(len(audio) / SAMPLE_RATE)
        if self.error:
            raise self.error
        return self.probabilities.pop(0)


def hear_smart(audio, model, **config):
    hearing = Hearing(HearingConfig(turn="smart", **config), EnergyVAD(), MediaClock(), model)
    out = []
    for i in range(0, len(audio), 512):
        out += list(hearing.feed(AudioChunk(i / SAMPLE_RATE, audio[i:i + 512])))
    return out + list(hearing.finish(len(audio) / SAMPLE_RATE))


def final(out):
    return [m for m in out if isinstance(m, Utterance) and not m.early]


def test_a_finished_verdict_ends_the_turn_after_the_short_silence_and_the_model_hears_the_utterance():
    smart, model = SmartTurnConfig(), FakeTurn(0.95)
    (question,) = final(hear_smart(tone_track(4.0, [(1.0, 2.0)]), model))
    assert abs(question.end - 2.0) < 0.04
    assert smart.short <= question.detected_at - question.end < smart.short + 0.04  # within one window of it
    # once, about the utterance so far: 0.5 s before its onset to the short silence after it
    assert len(model.heard) == 1 and abs(model.heard[0] - (0.5 + 1.0 + smart.short)) < 0.07


def test_an_unfinished_verdict_waits_the_long_silence():
    smart = SmartTurnConfig()
    (question,) = final(hear_smart(tone_track(4.0, [(1.0, 2.0)]), FakeTurn(0.2)))
    assert smart.long <= question.detected_at - question.end < smart.long + 0.04


def test_a_hesitation_the_model_calls_unfinished_stays_inside_the_question():
    model = FakeTurn(0.1, 0.97)  # "what's ... this": unfinished at the pause, finished at the end
    out = hear_smart(tone_track(5.0, [(1.0, 1.6), (2.4, 3.0)]), model, hint=None)  # 0.8 s: the silence alone would cut here
    assert names(out) == ["SpeechOnset", "SpeechStarted", "SpeechPaused", "Utterance early", "SpeechResumed",
                          "SpeechPaused", "Utterance early", "Utterance"]
    (question,) = final(out)
    assert abs(question.start - 1.0) < 0.04 and abs(question.end - 3.0) < 0.04 and len(model.heard) == 2
    assert len(final(hear(tone_track(5.0, [(1.0, 1.6), (2.4, 3.0)])))) == 2  # the silence alone: two


def test_a_failing_model_warns_once_and_the_silence_ends_turns_from_then_on(caplog):
    model = FakeTurn(error=RuntimeError("onnxruntime: bad input"))
    with caplog.at_level(logging.WARNING):
        out = hear_smart(tone_track(6.0, [(1.0, 2.0), (3.0, 4.0)]), model)
    first, second = final(out)
    for u in (first, second):
        assert abs(u.detected_at - u.end - EndpointConfig().silence) < 0.04
    assert len(model.heard) == 1 and len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_the_model_is_not_asked_with_turn_silence_nor_while_the_button_is_held():
    model = FakeTurn()
    hearing = Hearing(HearingConfig(turn="silence"), EnergyVAD(), MediaClock(), model)
    for i in range(0, 4 * SAMPLE_RATE, 512):
        list(hearing.feed(AudioChunk(i / SAMPLE_RATE, tone_track(4.0, [(1.0, 2.0)])[i:i + 512])))
    assert model.heard == []
    audio = tone_track(5.0, [(1.0, 1.5), (2.2, 2.8)])
    hearing = Hearing(HearingConfig(turn="smart"), EnergyVAD(), MediaClock(), model)
    hearing.press(PushToTalk(0.9, True))
    hearing.press(PushToTalk(3.0, False))
    out = [m for i in range(0, len(audio), 512) for m in hearing.feed(AudioChunk(i / SAMPLE_RATE, audio[i:i + 512]))]
    assert names(out) == ["SpeechStarted", "Utterance"] and model.heard == []


def test_without_a_model_smart_is_the_silence_alone():
    (question,) = final(hear_smart(tone_track(4.0, [(1.0, 2.0)]), None))
    assert abs(question.detected_at - question.end - EndpointConfig().silence) < 0.04


def test_dropped_audio_does_not_shift_the_times_of_what_is_heard_after():
    # found by the chaos soak: a microphone queue that overflowed made every later cut come from the wrong audio
    audio = tone_track(6.0, [(4.0, 5.0)])
    hearing = Hearing(HearingConfig(), EnergyVAD(), MediaClock())
    out = []
    for i in range(0, len(audio), 512):
        if 1.0 <= i / SAMPLE_RATE < 2.0:
            continue  # a second of chunks dropped before they reached hearing
        out += list(hearing.feed(AudioChunk(i / SAMPLE_RATE, audio[i:i + 512])))
    (final,) = [m for m in out if isinstance(m, Utterance) and not m.early]
    assert abs(final.start - 4.0) < 0.05 and abs(final.end - 5.0) < 0.05
    assert np.abs(final.audio[int(0.4 * SAMPLE_RATE):int(1.2 * SAMPLE_RATE)]).max() > 0.1  # the burst, not silence


class SteadyVAD:
    """Says every window is this likely to be speech: over the hint's threshold, under the endpointer's."""

    def __init__(self, p):
        self.p = p

    def __call__(self, samples):
        return [self.p] * (len(samples) // 512)


def test_no_hint_while_the_filter_is_not_settled_and_a_held_hint_ends_once_until_quiet():
    hearing = Hearing(HearingConfig(), EnergyVAD(), MediaClock())
    audio = tone_track(3.0, [(1.0, 1.3)])
    out = [m for i in range(0, len(audio), 512) for m in hearing.feed(AudioChunk(i / SAMPLE_RATE, audio[i:i + 512], False))]
    assert "SpeechHint" not in names(out) and "SpeechOnset" in names(out)  # an echo canceller still converging
    hearing = Hearing(HearingConfig(), SteadyVAD(0.3), MediaClock())  # steady noise the VAD half believes
    out = [m for i in range(0, 6 * SAMPLE_RATE, 512) for m in hearing.feed(AudioChunk(i / SAMPLE_RATE, np.zeros(512, np.float32)))]
    assert names(out) == ["SpeechHint", "SpeechHintEnded"]  # held 2 s, then no new pause until it goes quiet
    assert abs(out[1].t - out[0].start - 2.0) < 0.04


def test_a_hint_ends_with_its_utterance_and_its_tail_gives_no_new_one():
    class Tail:  # loud speech, then a long tail the hint half believes (0.2), then silence
        def __init__(self):
            self.n = 0

        def __call__(self, samples):
            out = []
            for _ in range(len(samples) // 512):
                t = self.n * 512 / SAMPLE_RATE
                out.append(0.9 if 1.0 <= t < 1.3 else 0.2 if 1.3 <= t < 2.5 else 0.0)
                self.n += 1
            return out

    hearing = Hearing(HearingConfig(), Tail(), MediaClock())
    out = [m for i in range(0, 4 * SAMPLE_RATE, 512) for m in hearing.feed(AudioChunk(i / SAMPLE_RATE, np.zeros(512, np.float32)))]
    kinds = names(out)
    assert kinds.count("SpeechHint") == 1 and kinds.count("SpeechHintEnded") == 1
    assert kinds.index("SpeechHintEnded") < kinds.index("Utterance") and out[kinds.index("SpeechHintEnded")].words

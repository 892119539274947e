"""The latency benchmark's realistic scenario: its layout, what its ASR double hears, its
frames, the speaker that times the device callback, and the check on someone else's speech."""
import time

import numpy as np
import pytest

from benchmarks.latency_hooks import DeviceSpeaker, ScenarioASR
from benchmarks.latency_real import background_check
from benchmarks.scenario_real import REPLY, SCRIPT, SETTLE, _dip_near, make_realistic, render_line, script_for
from core.clock import WallClock
from core.messages import SAMPLE_RATE, SpeechAudio, Transcript, Utterance
from pipelines.vision import same_view


def tone_speak(text: str) -> np.ndarray:
    """0.1 s of silence, then 0.2 s of tone a word with a 40 ms gap after each, 0.15 s of silence."""
    word = np.sin(np.arange(int(0.2 * SAMPLE_RATE)) * 2 * np.pi * 220 / SAMPLE_RATE).astype(np.float32)
    gap = np.zeros(int(0.04 * SAMPLE_RATE), np.float32)
    body = np.concatenate([np.concatenate([word, gap]) for _ in text.split()])[: -len(gap)]
    return np.concatenate([np.zeros(1600, np.float32), 0.3 * body, np.zeros(2400, np.float32)])


def scenario(n=10, answer_s=4.0):
    return make_realistic(n, answer_s=answer_s, speak=tone_speak, other=tone_speak)


def test_script_has_what_a_day_brings():
    lines = script_for(10)
    assert sum(w != "other" for w, _ in lines) == 10
    assert [w for w, _ in lines].count("wake") == 3 and [w for w, _ in lines].count("other") == 3
    words = " ".join(t for _, t in lines)
    assert words.count("|") == 3 and words.count("^") == 3
    assert sum(w != "other" for w, _ in script_for(2)) == 2 and script_for(2)[0][0] == "other"
    assert sum(w != "other" for w, _ in script_for(14)) == 14  # repeated past its end
    assert len(SCRIPT) == 13


def test_hesitation_opens_a_pause_at_a_word_boundary_and_the_turn_is_placed():
    line = render_line("ask", "Can you read | ^the sign for me?", tone_speak, tone_speak, iter([0.5]))
    (t1, a1, b1), (t2, a2, b2) = line.said
    assert (t1, t2) == ("Can you read", "the sign for me?")
    assert a2 - b1 == pytest.approx(0.5, abs=1e-3) and line.hesitation == pytest.approx(0.5)
    assert b1 == pytest.approx(3 * 0.24 - 0.02, abs=0.03)  # in the 40 ms gap after "read", not in a word
    assert a2 - 0.01 <= line.turn <= a2 + 0.3  # the head turns as the wearer goes on
    wake = render_line("wake", "Hey glasses, what is this?", tone_speak, tone_speak, iter(()))
    assert len(wake.said) == 1  # no pause in the tone at the comma: one stretch


def test_dip_near_finds_the_quiet_spot():
    voice = np.ones(SAMPLE_RATE, np.float32)
    voice[9000:9160] = 0.0
    assert abs(_dip_near(voice, 8000) - 9080) <= 80


def test_layout_keeps_follow_ups_inside_the_window_and_others_outside():
    sc = scenario(answer_s=4.0)
    qs = sc.questions
    assert len(qs) == 10 and sum(q.said != q.text for q in qs) == 3  # three open with the wake phrase
    assert qs[0].said == "Hey glasses, what is this?" and qs[0].text == "what is this?"
    assert [q.hesitation for q in qs if q.hesitation] == [0.3, 0.55, 0.8]
    assert sum(q.head_turn is not None for q in qs) == 3
    others = [s for s in sc.said if s.question is None]
    assert len(others) == 3
    for q, nxt in zip(qs, qs[1:]):
        between = [o for o in others if q.end < o.start < nxt.start]
        if not between:  # a follow-up: after the answer (REPLY + answer), before the window closes
            assert nxt.start - q.end == pytest.approx(REPLY + 4.0 + SETTLE, abs=1e-3)
            assert nxt.end - q.end < 4.0 + 6.0  # it ends inside the window even if the answer began at once
        else:  # someone else talks only once the window (6 s after the answer) has closed
            assert between[0].start - q.end >= REPLY + 4.0 + 6.0
    assert sc.duration > qs[-1].end + REPLY


def test_asr_double_hears_the_words_said_in_the_cut():
    sc = scenario(3)
    q = sc.questions[1]  # "Can you read | ^the sign for me?"
    first = next(s for s in sc.said if s.question == 1)
    assert sc.words_between(q.start, first.end) == "Can you read"  # an early cut at the hesitation
    assert sc.words_between(q.start, q.end) == "Can you read the sign for me?"
    other = next(s for s in sc.said if s.question is None)
    assert sc.words_between(other.start, other.end) == other.text

    class Stage:
        def process(self, utt):
            return Transcript(utt.start, utt.end, utt.detected_at, "random words", 0.1, 0.0, "", 0.0)

    asr = ScenarioASR(Stage(), sc, WallClock())
    cut = asr.process(Utterance(other.start, other.end, other.end + 0.5, np.zeros(10, np.float32)))
    assert cut.text == other.text and asr.log[-1]["question"] is None  # heard, and nobody's question
    wake = asr.process(Utterance(sc.questions[0].start, sc.questions[0].end, 0.0, np.zeros(10, np.float32)))
    assert wake.text == "Hey glasses, what is this?" and asr.log[-1]["question"] == 0
    nothing = asr.process(Utterance(0.0, 0.2, 0.3, np.zeros(10, np.float32)))
    assert nothing.text == "" and nothing.dropped == "empty"


def test_frames_change_view_at_a_head_turn_and_smear_while_it_turns():
    sc = scenario(3)
    q = sc.questions[1]
    before, after = sc.frame(q.head_turn - 0.3), sc.frame(q.head_turn + 0.05)
    assert same_view(sc.frame(q.start), before) and not same_view(before, after)
    assert same_view(after, sc.frame(q.end))  # the ball moves; the view holds
    turning = sc.frame(q.head_turn - 0.1)
    assert np.abs(np.diff(turning.astype(int), axis=1)).mean() < np.abs(np.diff(before.astype(int), axis=1)).mean()
    assert not same_view(sc.frame(sc.questions[0].end), sc.frame(sc.questions[2].end))  # each question, its thing


def test_device_speaker_times_the_first_sample_sent_by_the_callback():
    clock = WallClock()
    speaker = DeviceSpeaker(clock, rate=16000)
    try:
        time.sleep(0.03)
        start, end = speaker.play(SpeechAudio("hello", np.full(8000, 0.1, np.float32), 16000), 0.0)
        time.sleep(0.06)
        rec = speaker.log[0]
        assert rec["device"] is not None and 0.0 <= rec["device"] - rec["hand"] <= 0.03
        assert end - start == pytest.approx(0.5)
        speaker.clear(clock.now())  # a clip cleared before it went out is never marked as sent
        speaker.play(SpeechAudio("later", np.full(8000, 0.1, np.float32), 16000), 0.0)
        speaker.clear(clock.now())
        time.sleep(0.03)
        assert speaker.log[1]["device"] is None or speaker.log[1]["device"] - speaker.log[1]["hand"] <= 0.02
        assert len(speaker._stream.blocks) <= 100  # only the last second is kept
    finally:
        speaker.close()


def test_background_check_says_whether_someone_else_was_answered():
    sc = scenario(3)
    other = next(s for s in sc.said if s.question is None)
    ignored = [{"type": "heard", "start": other.start, "end": other.end, "action": "ignore", "reason": "no wake phrase"}]
    out = background_check(sc, ignored)
    assert out[0]["answered"] is False and out[0]["actions"] == [["ignore", "no wake phrase"]]
    asked = ignored + [{"type": "turn", "speech_start": other.start, "heard_at": other.end}]
    assert background_check(sc, asked)[0]["answered"] is True


def test_turn_records_say_which_questions_went_unanswered_or_ended_at_a_hesitation():
    from benchmarks.latency_run import ended_early, unanswered

    sc = scenario(3)
    q0, q1, q2 = sc.questions
    first = next(s for s in sc.said if s.question == 1)  # "Can you read", before the hesitation
    turns = [{"type": "turn", "question": "what is this?", "speech_start": q0.start, "heard_at": q0.end, "spoken": [1]},
             {"type": "turn", "question": "Can you read", "speech_start": q1.start, "heard_at": first.end, "spoken": []},
             {"type": "heard", "start": q2.start, "end": q2.end, "text": q2.said, "action": "ignore",
              "reason": "no wake phrase"}]
    early = ended_early(sc, [r for r in turns if r["type"] == "turn"])
    assert [(e["heard"], e["spoke"]) for e in early] == [("Can you read", False)]
    missing = unanswered(sc, turns)
    assert [m["question"] for m in missing] == [q2.text]
    assert missing[0]["heard"] == [[q2.said, "ignore", "no wake phrase"]]

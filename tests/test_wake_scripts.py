"""Wake phrases in every script, and no wake phrase at all (--wake none: push-to-talk only)."""
import numpy as np
import pytest

from core.clock import MediaClock
from core.messages import PushToTalk
from glasses.fakes import ScriptedSource, tone_track
from glasses.speaker import MixSpeaker
from pipelines.log import SessionLog
from pipelines.session import Session, SessionConfig
from pipelines.wake import EVERY_UTTERANCE, decide, has_letters, match_wake, normalise
from tests.fakes import EnergyVAD, FakeTTS, FakeVLM, ScriptedASR


@pytest.mark.parametrize("phrase, text, question", [
    ("привет очки", "Привет, очки! Что это?", "Что это?"),
    ("привет очки", "привет очки что это", "что это"),
    ("你好眼镜", "你好眼镜，这是什么？", "这是什么？"),
    ("你好眼镜", "你好眼镜这是什么", "这是什么"),  # no punctuation: the characters still part
    ("你好眼镜", "你好眼睛，这是什么？", "这是什么？"),  # the usual homophone slip, one character of four
    ("こんにちはメガネ", "こんにちはメガネ、これは何？", "これは何？"),
    ("안녕 안경", "안녕 안경, 이게 뭐야?", "이게 뭐야?"),
    ("नमस्ते चश्मा", "नमस्ते चश्मा, यह क्या है?", "यह क्या है?"),
    ("hé lunettes", "He, LUNETTES! C’est quoi?", "C’est quoi?"),  # accents and case do not matter
])
def test_wake_phrases_of_other_scripts_match_and_keep_the_question(phrase, text, question):
    m = match_wake(text, phrase)
    assert m.matched and m.remainder == question


@pytest.mark.parametrize("phrase, text", [
    ("привет очки", "Привет, как дела?"), ("привет очки", "Что это?"), ("你好眼镜", "你好，请问这是什么？"),
    ("你好眼镜", "这是什么？"), ("привет очки", "hey glasses what is this"), ("hey glasses", "Привет, очки!"),
])
def test_other_speech_does_not_match(phrase, text):
    assert not match_wake(text, phrase).matched


def test_normalise_keeps_every_script_and_folds_case_accents_and_width():
    assert normalise("Привет, ОЧКИ!") == "привет очки"
    assert normalise("你好眼镜，这是什么？") == "你好眼镜 这是什么"
    assert normalise("Ｈｅｙ  Glässes… don’t") == "hey glasses dont"
    assert normalise("Ёлка Straße") == "елка strasse"
    assert normalise("!!! ...") == "" and normalise("") == ""


@pytest.mark.parametrize("phrase", ["", "!!!", "  ", "...", "？！"])
def test_a_phrase_without_letters_has_none_and_never_matches(phrase):
    assert not has_letters(phrase)
    for text in ("what is this", "!!!", "", "hey glasses what is this"):
        assert not match_wake(text, phrase).matched, (phrase, text)


def test_digits_alone_are_no_wake_phrase_but_letters_of_any_script_are():
    assert not has_letters("123")
    assert has_letters("привет") and has_letters("你好") and has_letters("hey 2")


def test_an_empty_phrase_never_wakes_but_push_to_talk_and_follow_ups_ask():
    kw = dict(phrase="", busy=False)
    assert decide("what is this?", 5.0, follow_up_until=-1.0, **kw).action == "ignore"
    assert "push-to-talk" in decide("what is this?", 5.0, follow_up_until=-1.0, **kw).reason
    assert decide("what is this?", 5.0, follow_up_until=-1.0, push_to_talk=True, **kw).action == "ask"
    assert decide("and how big?", 5.0, follow_up_until=6.0, **kw).action == "ask"
    assert decide("你好眼镜，这是什么？", 5.0, follow_up_until=-1.0, phrase="你好眼镜", busy=False).question == "这是什么？"


def test_every_utterance_is_a_question_only_when_asked_for_explicitly():
    assert match_wake("what is this", EVERY_UTTERANCE).remainder == "what is this"
    assert not match_wake("what is this", "").matched


def grey(t):
    return np.full((120, 160, 3), 128, np.uint8)


def test_no_wake_phrase_answers_the_button_and_its_follow_up_and_ignores_other_speech():
    # 1.0-2.0 button held; 3.0-3.6 a follow-up inside the window; 12.0-13.0 speech long after: ignored
    script = [(1.5, "what is this?"), (3.3, "and how big is it?"), (12.5, "hey glasses what now?")]
    source = ScriptedSource(tone_track(15.0, [(1.0, 2.0), (3.0, 3.6), (12.0, 13.0)]), grey)
    log = SessionLog(None)
    session = Session(SessionConfig(wake_phrase="", follow_up=4.0), source=source, vad=EnergyVAD(),
                      asr=ScriptedASR(script), vlm=FakeVLM("A square."), tts=FakeTTS(), speaker=MixSpeaker(),
                      clock=MediaClock(), log_=log)
    session.submit(PushToTalk(0.9, True))
    session.submit(PushToTalk(2.3, False))
    session.run()
    assert [t["question"] for t in log.turns()] == ["what is this?", "and how big is it?"]
    heard = [r for r in log.records if r["type"] == "heard"]
    assert heard[-1]["action"] == "ignore" and "push-to-talk" in heard[-1]["reason"]

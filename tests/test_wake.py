import pytest

from pipelines.wake import decide, is_stop, match_wake, normalise


@pytest.mark.parametrize("text", [
    "Hey glasses, what is this?", "hey glass what is this", "Hi glasses! What is this?", "Hey, Glasses. What is this?",
    "Oh, hey glasses, what is this?", "HEY GLASSES what is this", "Hey glasses… what is this?", "hay glasses what is this",
])
def test_wake_phrase_variants_match_and_keep_the_question(text):
    m = match_wake(text, "hey glasses")
    assert m.matched
    assert normalise(m.remainder) == "what is this"


@pytest.mark.parametrize("text", [
    "What is this?", "I need new glasses soon", "They say hey to everyone", "Hey, how are you?", "Pass me the glass",
    "", "   ",
])
def test_speech_without_the_wake_phrase_does_not_match(text):
    assert not match_wake(text, "hey glasses").matched


def test_custom_wake_phrase():
    assert match_wake("Computer, what time is it", "computer").remainder == "what time is it"
    assert not match_wake("hey glasses what", "computer").matched


def test_stop_words():
    for text in ["Stop.", "stop", "Cancel!", "cancel that", "Never mind.", "Stop talking", "Wait.", "Hold on.",
                 "wait a second"]:
        assert is_stop(text), text
    for text in ["don't stop the music", "bus stop", "what is this", "wait, what colour is it?", "hold on to this"]:
        assert not is_stop(text), text


def test_decide_policy():
    kw = dict(phrase="hey glasses", follow_up_until=-1.0, busy=False)
    assert decide("Hey glasses, what is this?", 1.0, **kw).action == "ask"
    assert decide("Hey glasses, what is this?", 1.0, **kw).question == "what is this?"
    assert decide("hey glasses", 1.0, **kw).action == "wake"
    assert decide("what is this", 1.0, **kw).action == "ignore"
    # follow-up window: no wake phrase needed while it is open, and only then
    assert decide("and how big is it?", 5.0, phrase="hey glasses", follow_up_until=6.0, busy=False).action == "ask"
    assert decide("and how big is it?", 7.0, phrase="hey glasses", follow_up_until=6.0, busy=False).action == "ignore"
    # stop only stops something
    assert decide("stop", 2.0, phrase="hey glasses", follow_up_until=-1, busy=True).action == "stop"
    assert decide("stop", 2.0, **kw).action == "ignore"
    assert decide("", 2.0, **kw).action == "ignore"


def test_push_to_talk_needs_no_wake_phrase():
    kw = dict(phrase="hey glasses", follow_up_until=-1.0, busy=False, push_to_talk=True)
    assert decide("what is this?", 9.0, **kw) == decide("hey glasses what is this?", 9.0, **kw)
    assert decide("what is this?", 9.0, **kw).action == "ask"
    assert decide("", 9.0, **kw).action == "ignore"

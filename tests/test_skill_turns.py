"""Standing skill modes, translation and announcements in turn-taking (pure: events in, actions out)."""
from functools import partial

from core.messages import Announcement, AnswerFinished, SpeechStarted, Transcript
from pipelines.router import route
from pipelines.skills.translate import TranslateSkill
from pipelines.turns import Cancel, Record, Show, StartAnswer, TurnConfig, TurnTaking


class ShopSkill:
    """A standing skill: takes "what is this?" only while its mode stands."""

    name = "shopping"

    def standing(self, question):
        q = question.lower().strip(" .?!")
        return True if q == "shopping mode" else False if q == "stop shopping" else None

    def wants(self, question, active=""):
        q = question.lower()
        if "how much" in q or (active == "shopping" and "what is this" in q):
            return "shopping"
        return ""

    def answer(self, ctx):
        raise AssertionError("not called by turn-taking")


def machine(**config):
    return TurnTaking(TurnConfig(**config), partial(route, skills=(ShopSkill(), TranslateSkill())))


def heard(text, start, end):
    return Transcript(start, end, end + 0.3, text, 0.1, 0.0, "", 100.0, False, "")


def started(actions):
    plans = [a.plan for a in actions if isinstance(a, StartAnswer)]
    return plans[0] if plans else None


def test_shopping_mode_changes_where_what_is_this_goes_and_the_display_says_so():
    tt = machine()
    assert started(tt.handle(heard("hey glasses, what is this?", 1, 2))).route.target == "vlm"
    tt.handle(AnswerFinished(1, "what is this?", "a box", 3.0))
    actions = tt.handle(heard("hey glasses, shopping mode.", 10, 11))
    said = started(actions)  # the switch asks nothing; the wearer hears that it took
    assert (said.route.name, said.question, tt.active) == ("announce", "Shopping mode on.", "shopping")
    assert Show(11, {"skill": "shopping"}) in actions and any(isinstance(a, Record) and a.kind == "skill_mode"
                                                             for a in actions)
    tt.handle(AnswerFinished(said.id, said.question, said.question, 12.0))
    plan = started(tt.handle(heard("hey glasses, what is this?", 20, 21)))
    assert (plan.route.target, plan.route.name) == ("skill", "shopping")
    tt.handle(AnswerFinished(plan.id, plan.question, "milk", 22.0))
    off = started(tt.handle(heard("hey glasses, stop shopping", 30, 31)))
    assert tt.active == "" and off.question == "Shopping mode off."
    tt.handle(AnswerFinished(off.id, off.question, off.question, 32.0))
    assert started(tt.handle(heard("hey glasses, what is this?", 40, 41))).route.target == "vlm"


def test_a_session_can_start_in_shopping_mode():
    tt = machine(skill="shopping")
    assert started(tt.handle(heard("hey glasses, what is this?", 1, 2))).route.name == "shopping"


def test_translation_mode_translates_the_other_speaker_without_a_wake_phrase_until_stopped():
    tt = machine()
    on = started(tt.handle(heard("Hey glasses, translate what they say.", 1, 2)))
    assert tt.active == "translate" and on.question.startswith("Translating.")
    tt.handle(AnswerFinished(on.id, on.question, on.question, 4.0))
    plan = started(tt.handle(heard("Where is the train station?", 5, 7)))  # their words, in English already
    assert (plan.route.name, plan.question) == ("translate", "Where is the train station?")
    # they go on talking over the translation: no barge-in, and the next sentence is translated too
    actions = tt.handle(SpeechStarted(7.5, 7.6))
    assert not [a for a in actions if isinstance(a, Cancel)]
    tt.handle(AnswerFinished(plan.id, plan.question, plan.question, 9.0))
    assert started(tt.handle(heard("It is on the left.", 10, 11))).route.name == "translate"
    off = started(tt.handle(heard("stop translating", 20, 21)))  # no wake phrase needed to end it
    assert tt.active == "" and off.question == "Translation off."
    tt.handle(AnswerFinished(off.id, off.question, off.question, 22.0))
    assert started(tt.handle(heard("Nice weather today.", 40, 41))) is None  # back to normal: ignored


def test_an_announcement_is_said_like_an_answer_and_logged():
    tt = machine()
    actions = tt.handle(Announcement(30.0, "Your 5 minute timer is done.", "timers", 1.0))
    plan = started(actions)
    assert (plan.route.target, plan.route.name, plan.question) == ("skill", "announce", "Your 5 minute timer is done.")
    assert any(isinstance(a, Record) and a.kind == "announce" for a in actions)

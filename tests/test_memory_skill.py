"""The memory skill: which questions are memory, times in words, what fits, facts, and recall
end to end on a real SQLite store with a fake VLM (and through a whole replayed session)."""
import threading
from datetime import datetime

import cv2
import numpy as np
import pytest

from core.messages import DisplayState, Evidence, VLMRequest
from pipelines.memory.prompt import ago_in_words, ago_short, age_of, collage, recall_prompt
from pipelines.memory.recall import (ago_of, content_words, fact_of, facts_note, fits, fitting, forget_target, kind_of,
                                     relevant_facts, search_query, to_second_person, topic)
from pipelines.memory.skill import NOT_SEEN, MemorySkill
from pipelines.memory.store import Entry, Fact, Hit, MemoryStore
from pipelines.modes import ModeContext, ModeResult
from pipelines.router import route
from tests.fakes import FakeVLM

# --- which questions are memory -----------------------------------------------------------
RECALL = [
    "where did I leave my keys?", "Where did I leave my keys", "what was written on the whiteboard?",
    "did I turn off the stove?", "what was the name of that café?", "have you seen my wallet",
    "when did I last see my glasses?", "where's my phone?", "where are my keys", "did you see my passport?",
    "what did the sign say?", "do you remember where I parked the car?", "what colour was the car earlier?",
    "where was I when I saw the red bicycle?", "did I lock the front door?", "what was on the menu?",
    "have I seen this mug before?", "which café did we pass?", "remember where I put my umbrella?",
    "what did I buy at the bakery?", "when did I have my headphones?", "what was I doing an hour ago?",
    "where was I twenty minutes ago?",
]
NOT_MEMORY = [
    "what is this?", "what colour is the square?", "what is written here?", "what is written here",
    "read this", "what does this say?", "where is the exit?", "is the stove on?", "how do I turn off the stove?",
    "what do you see?", "what do you see on the table?", "what time is it?", "who is that?", "what was that?",
    "what did you say?", "what did I just ask?", "what was your last answer?", "did I do this right?",
    "where did this come from?", "what were we talking about?", "which one is better?", "how many people are here?",
    "tell me about this building", "forget it", "what is the name of this café?", "can you see my keys here?",
    "",
]


@pytest.mark.parametrize("question", RECALL)
def test_questions_about_the_past_are_recall(question):
    assert kind_of(question) == "recall", question


@pytest.mark.parametrize("question", NOT_MEMORY)
def test_questions_about_the_view_now_stay_with_the_vlm(question):
    assert kind_of(question) == "", question


@pytest.mark.parametrize("question,kind", [
    ("Remember that my parking spot is B12.", "remember"), ("please remember my locker is number 7", "remember"),
    ("don't forget that Anna's birthday is in May", "remember"), ("My bike lock code is 4321, remember that", "remember"),
    ("What do you remember about me?", "list_facts"), ("what do you know about me", "list_facts"),
    ("what have I told you?", "list_facts"), ("Forget that.", "forget_fact"), ("never mind, forget that", "forget_fact"),
    ("forget what I just said", "forget_fact"), ("forget that my locker is 7", "forget_fact"),
    ("Forget everything.", "forget_all"), ("forget everything you know about me", "forget_all"),
    ("delete all memories", "forget_all"), ("wipe your memory", "forget_all"),
    ("remember that café?", "recall"), ("remember to buy milk", ""),
])
def test_facts_and_forgetting_are_told_apart(question, kind):
    assert kind_of(question) == kind, question


def test_the_fact_is_kept_as_said():
    assert fact_of("Remember that my parking spot is B12.") == "my parking spot is B12"
    assert fact_of("Please remember: My locker is number 7!") == "my locker is number 7"
    assert fact_of("don't forget that Anna's birthday is in May") == "Anna's birthday is in May"
    assert fact_of("My bike lock code is 4321, remember that.") == "my bike lock code is 4321"
    assert fact_of("remember where I parked") == "" and fact_of("remember that café?") == ""
    assert forget_target("forget that my locker is 7") == "my locker is 7" and forget_target("forget that") == ""


def test_the_router_gives_memory_questions_to_the_skill_and_the_rest_to_the_vlm():
    skill = MemorySkill(store=None)
    assert route("where did I leave my keys?", "instant", [skill]).target == "skill"
    assert route("where did I leave my keys?", "instant", [skill]).reason == "memory: recall"
    assert route("what is this?", "instant", [skill]).target == "vlm"
    assert route("think harder, what is written here?", "instant", [skill]).target == "vlm"


def test_content_words_and_topic():
    assert content_words("where did I leave my keys?") == ["key"]
    assert search_query("where did I leave my keys?") == "keys"  # the store's index stems by itself
    assert content_words("what was the name of that café?") == ["cafe"]
    assert topic("did I leave my passport on the table?") == "passport"
    assert topic("where did I leave my car keys") == "key"
    assert topic("what was the name of that café") == "cafe"
    assert topic("where did I park?") == ""


# --- time in words --------------------------------------------------------------------------
@pytest.mark.parametrize("seconds,words", [
    (0, "just now"), (30, "just now"), (60, "about a minute ago"), (240, "about four minutes ago"),
    (250, "about four minutes ago"), (25 * 60, "about twenty-five minutes ago"), (3600, "about an hour ago"),
    (2 * 3600, "about two hours ago"), (5 * 3600, "about five hours ago"), (3 * 86400, "about three days ago"),
    (-5, "just now"),
])
def test_ago_in_words(seconds, words):
    assert ago_in_words(seconds) == words


def test_old_sightings_name_the_day_and_hour():
    now = datetime(2026, 3, 10, 9, 0)
    assert ago_in_words(16 * 3600, datetime(2026, 3, 9, 17, 0), now) == "yesterday at 5 pm"
    assert ago_in_words(3 * 86400, datetime(2026, 3, 7, 8, 15), now) == "on Saturday at 8:15 am"
    assert ago_in_words(12 * 86400, datetime(2026, 2, 26, 12, 0), now) == "on 26 February at noon"
    assert ago_in_words(7 * 3600, datetime(2026, 3, 10, 2, 0), now) == "today at 2 am"
    assert ago_in_words(240, datetime(2026, 3, 10, 8, 56), now) == "about four minutes ago"
    assert ago_short(240) == "seen 4 min ago" and ago_short(10) == "seen just now"
    assert ago_short(16 * 3600, datetime(2026, 3, 9, 17, 0), now) == "seen yesterday 5 pm"


def test_an_entry_of_this_replay_is_timed_by_media_seconds():
    entry = Entry(1, wall=1000.0, media=30.0, session="s1", caption="", text="", objects=(), has_thumbnail=False)
    assert age_of(entry, now_wall=5000.0, now_media=90.0, session="s1") == 60.0
    assert age_of(entry, now_wall=5000.0, now_media=90.0, session="other") == 4000.0


# --- what fits --------------------------------------------------------------------------------
def _hit(i, caption, score=1.0, objects=(), text=""):
    return Hit(Entry(i, 0.0, None, "", caption, text, tuple(objects), False), score, -score, 0.5)


def test_nothing_fits_unless_an_entry_names_what_is_asked_about():
    keys = _hit(1, "a set of keys on the kitchen counter next to the kettle", objects=("keys", "kettle"))
    table = _hit(2, "a wooden table by the window", score=2.0)
    assert fits([keys], "where did I leave my keys?")
    assert fitting([table, keys], "where did I leave my keys?") == [keys]
    newer = Hit(Entry(5, 100.0, None, "", "keys on the desk", "", (), False), 0.5, -0.5, 0.9)
    assert fitting([keys, table, newer], "where are my keys?") == [newer, keys]  # the latest sighting first
    assert not fits([table], "did I leave my passport on the table?")  # the table is not the passport
    assert not fits([], "where did I leave my keys?")
    assert not fits([keys], "where did I leave my keys?", min_score=5.0)
    assert fits([_hit(3, "a whiteboard", text="buy milk")], "what was written on the whiteboard?")
    assert fits([_hit(4, "glasses on the sofa")], "when did I last see my glasses?")


def test_relevant_facts_and_the_note_for_the_system_prompt():
    facts = [Fact(1, 1.0, "my parking spot is B12"), Fact(2, 2.0, "my locker is number 7"),
             Fact(3, 3.0, "I am allergic to peanuts")]
    assert relevant_facts(facts, "where did I park?") == ["your parking spot is B12"]
    assert relevant_facts(facts, "does this contain peanuts?") == ["you are allergic to peanuts"]
    assert relevant_facts(facts, "what is this?") == []
    assert relevant_facts(["my locker is number 7"], "which locker is mine?") == ["your locker is number 7"]
    assert facts_note(facts, "what is this?") == ""
    assert "your parking spot is B12" in facts_note(facts, "where is my parking spot?")
    assert to_second_person("I'm allergic to peanuts and my name is Sam") == "you're allergic to peanuts and your name is Sam"


def test_the_collage_holds_the_view_now_and_the_thumbnails():
    now = np.full((300, 400, 3), (255, 0, 0), np.uint8)  # RGB red
    thumb = np.full((144, 192, 3), (0, 0, 255), np.uint8)  # RGB blue
    img = collage(now, [thumb, None], side=512)
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8
    assert tuple(img[128, 128]) == (255, 0, 0) and tuple(img[128, 384]) == (0, 0, 255)
    assert tuple(img[384, 128]) == (60, 60, 60)  # no picture kept for entry 2: a grey cell
    prompt = recall_prompt("where did I leave my keys?", ["1. about four minutes ago: keys on the counter."], NOT_SEEN)
    assert "about four minutes ago" in prompt and NOT_SEEN in prompt and "keys on the counter" in prompt


# --- the skill on a real store ------------------------------------------------------------
NOW = 1_800_000_000.0


def _jpeg(bgr):
    ok, buf = cv2.imencode(".jpg", np.full((144, 192, 3), bgr, np.uint8))
    return buf.tobytes()


@pytest.fixture
def store(tmp_path):
    s = MemoryStore(tmp_path / "memory", session="live")
    yield s
    s.close()


def _ctx(question, vlm, said, shown, image=True):
    frame = np.full((240, 320, 3), 90, np.uint8) if image else None
    return ModeContext(vlm, VLMRequest(question, frame, (), "You are helpful.", 60), threading.Event(), said.append,
                       evidence=shown.append)


def _fill(store):
    old = store.add(wall=NOW - 3 * 3600, media=None, caption="keys in the hallway bowl", objects=("keys", "bowl"),
                    thumbnail=_jpeg((0, 255, 0)))
    counter = store.add(wall=NOW - 240, media=None, caption="a set of keys on the kitchen counter next to the kettle",
                        objects=("keys", "kettle"), thumbnail=_jpeg((255, 0, 0)))
    store.add(wall=NOW - 60, media=None, caption="a wooden table by the window", objects=("table",))
    return old, counter


def test_recall_answers_from_the_entries_and_names_them(store):
    old, counter = _fill(store)
    vlm = FakeVLM("About four minutes ago, on the kitchen counter next to the kettle.")
    said, shown = [], []
    skill = MemorySkill(store, now=lambda: NOW)
    result = skill.answer(_ctx("where did I leave my keys?", vlm, said, shown))
    assert result.answer == "About four minutes ago, on the kitchen counter next to the kettle."
    assert "".join(said).strip() == result.answer  # streamed through Instant's path
    memory = result.extra["memory"]
    assert memory["entries"][0] == counter and set(memory["entries"]) == {old, counter}
    assert memory["evidence"] == counter
    (request,) = vlm.requests
    assert request.image.shape == (512, 512, 3) and request.prefix is None
    assert "1. about four minutes ago: a set of keys on the kitchen counter" in request.question
    assert "2. about three hours ago: keys in the hallway bowl" in request.question
    assert request.system == "You are helpful." and result.first_token is not None
    (ev,) = shown
    assert isinstance(ev, Evidence) and ev.entry == counter and ev.label == "seen 4 min ago"
    assert ev.image.shape[:2] == (144, 192) and ev.image[70, 90, 0] > 200  # the blue (BGR) thumbnail


def test_nothing_fits_says_so_and_never_calls_the_vlm(store):
    _fill(store)
    vlm, said, shown = FakeVLM("a guess"), [], []
    skill = MemorySkill(store, now=lambda: NOW)
    for question in ("where did I leave my umbrella?", "did I leave my passport on the table?"):
        result = skill.answer(_ctx(question, vlm, said, shown))
        assert result.answer == NOT_SEEN and result.extra["memory"]["entries"] == []
    assert vlm.requests == [] and shown == [] and said == [NOT_SEEN, NOT_SEEN]
    quiet = MemorySkill(store, now=lambda: NOW, not_seen="Sorry, I did not see that.")
    assert quiet.answer(_ctx("have you seen my umbrella?", vlm, said, shown)).answer == "Sorry, I did not see that."


def test_a_time_ago_recalls_what_was_seen_then_whatever_it_was(store):
    assert (ago_of("what was I doing an hour ago?"), ago_of("where was I 20 minutes ago")) == (3600, 1200)
    assert ago_of("where did I leave my keys?") is None and ago_of("set a timer for an hour") is None
    store.add(wall=NOW - 3 * 3600, media=None, caption="a bus stop", objects=())
    desk = store.add(wall=NOW - 3500, media=None, caption="a desk with a laptop and a mug", objects=("laptop", "mug"),
                     thumbnail=_jpeg((0, 0, 255)))
    near = store.add(wall=NOW - 3300, media=None, caption="a laptop screen with a spreadsheet", objects=("laptop",))
    store.add(wall=NOW - 60, media=None, caption="a wooden table by the window", objects=("table",))
    assert [e.id for e in store.around(NOW - 3600, 300)] == [desk, near]
    vlm, said, shown = FakeVLM("An hour ago you were at your desk, working on a spreadsheet."), [], []
    result = MemorySkill(store, now=lambda: NOW).answer(_ctx("what was I doing an hour ago?", vlm, said, shown))
    assert result.extra["memory"]["entries"] == [desk, near] and shown[0].entry == desk
    assert "a desk with a laptop and a mug" in vlm.requests[0].question
    assert MemorySkill(store, now=lambda: NOW).answer(_ctx("what was I doing 30 minutes ago?", vlm, said, shown)).answer \
        == NOT_SEEN  # nothing was kept near then


def test_the_model_finding_nothing_in_the_entries_takes_the_evidence_down(store):
    _fill(store)
    vlm, said, shown = FakeVLM("I didn't see that."), [], []
    result = MemorySkill(store, now=lambda: NOW).answer(_ctx("where did I leave my keys?", vlm, said, shown))
    assert result.extra["memory"]["evidence"] is None and shown[-1] is None


def test_facts_round_trip(store):
    skill, vlm, said, shown = MemorySkill(store, now=lambda: NOW), FakeVLM(), [], []

    def ask(question):
        return skill.answer(_ctx(question, vlm, said, shown)).answer

    assert ask("What do you remember about me?") == "I don't know anything about you yet."
    assert ask("Remember that my parking spot is B12.") == "OK, I'll remember that your parking spot is B12."
    assert ask("remember that I'm allergic to peanuts") == "OK, I'll remember that you're allergic to peanuts."
    assert [f.text for f in store.facts()] == ["my parking spot is B12", "I'm allergic to peanuts"]
    assert ask("what do you know about me?") == (
        "You told me that your parking spot is B12 and you're allergic to peanuts.")
    assert ask("where did I park?") == "You told me that your parking spot is B12."  # a fact, no entry
    assert ask("forget that") == "OK, I forgot that you're allergic to peanuts."
    assert ask("forget that my locker is 7") == "You haven't told me that, so there is nothing to forget."
    assert ask("forget that my parking spot is B12") == "OK, I forgot that your parking spot is B12."
    assert ask("forget that") == "There was nothing to forget."
    assert store.facts() == [] and vlm.requests == []


def test_forget_everything(store, tmp_path):
    _fill(store)
    skill, said, shown = MemorySkill(store, now=lambda: NOW), [], []
    skill.answer(_ctx("remember that my parking spot is B12", FakeVLM(), said, shown))
    result = skill.answer(_ctx("Forget everything.", FakeVLM(), said, shown))
    assert result.answer == "Done. I forgot everything I had kept." and shown == [None]
    assert store.counts()["entries"] == 0 and store.facts() == []
    data = (tmp_path / "memory" / "memory.db").read_bytes()
    assert b"kettle" not in data and b"B12" not in data
    assert skill.answer(_ctx("where did I leave my keys?", FakeVLM(), said, shown)).answer == NOT_SEEN


def test_a_full_disk_is_said_aloud(store, monkeypatch):
    from pipelines.memory.store import MemoryFull

    def full(text, wall):
        raise MemoryFull("the disk is full")
    monkeypatch.setattr(store, "add_fact", full)
    said = []
    result = MemorySkill(store, now=lambda: NOW).answer(_ctx("remember my locker is 7", FakeVLM(), said, []))
    assert result.answer == "I couldn't keep that: the disk is full." and said == [result.answer]


# --- through a whole session ---------------------------------------------------------------
def test_a_replayed_session_records_the_entries_and_shows_the_evidence(store):
    from core.clock import MediaClock
    from glasses.fakes import ScriptedSource, tone_track
    from glasses.speaker import MixSpeaker
    from pipelines.log import SessionLog
    from pipelines.session import Session, SessionConfig
    from tests.fakes import EnergyVAD, FakeTTS, ScriptedASR

    _, counter = _fill(store)
    vlm = FakeVLM(reply=lambda r: "About four minutes ago, on the kitchen counter." if "counter" in r.question
                  else "It is a red square.")
    script = [(1.5, "Hey glasses, where did I leave my keys?"), (4.5, "and what is this?")]
    log = SessionLog(None)

    def grey(t):
        return np.full((120, 160, 3), 128, np.uint8)
    s = Session(SessionConfig(), source=ScriptedSource(tone_track(8.0, [(1.0, 2.0), (4.0, 5.0)]), grey),
                vad=EnergyVAD(), asr=ScriptedASR(script), vlm=vlm, tts=FakeTTS(), speaker=MixSpeaker(),
                clock=MediaClock(), log_=log, skills=[MemorySkill(store, now=lambda: NOW)])
    s.run()
    memory_turn, vlm_turn = log.turns()
    assert (memory_turn["route"], memory_turn["mode"]) == ("skill", "memory")
    assert memory_turn["memory"]["evidence"] == counter and counter in memory_turn["memory"]["entries"]
    assert memory_turn["answer"] == "About four minutes ago, on the kitchen counter."
    shown = [state.evidence.entry for _, state in s.timeline() if state.evidence is not None]
    assert shown and set(shown) == {counter}
    assert vlm_turn["route"] == "vlm" and "memory" not in vlm_turn
    assert s.timeline()[-1][1].evidence is None  # the next question took the evidence down


def test_display_state_with_evidence_compares_and_hashes():
    a = DisplayState(evidence=Evidence(3, "seen 4 min ago", np.zeros((4, 4, 3), np.uint8)))
    b = DisplayState(evidence=Evidence(3, "seen 4 min ago", np.ones((4, 4, 3), np.uint8)))
    assert a == b and hash(a) == hash(b)
    assert a != DisplayState(evidence=Evidence(4, "seen 4 min ago")) and a != DisplayState()


def test_recall_runs_through_the_answer_function_given_and_the_clock_given(store):
    store.add(wall=NOW - 30, media=None, caption="a red mug on the desk", objects=("mug",))
    asked = []

    def answer(ctx):  # stands in for modes.instant
        asked.append(ctx.request.question)
        return ModeResult("Just now, on the desk.", 0.1, 0.2, {"seen": True})
    result = MemorySkill(store, answer, now=lambda: NOW).answer(
        _ctx("where did I leave my mug?", FakeVLM(), [], []))
    assert "1. just now: a red mug on the desk. Objects: mug." in asked[0]
    assert result.extra["seen"] and result.extra["memory"]["prompt"] == asked[0]

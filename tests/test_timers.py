"""Timers and reminders: the phrasing table, the skill on a simulated session clock, the store."""
from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timedelta, timezone

import pytest

from core.messages import VLMRequest
from pipelines.memory.recall import kind_of
from pipelines.modes import ModeContext
from pipelines.router import route
from pipelines.skills.timer_skill import (ASK_AGAIN, MAX_PENDING, TOO_LONG, TOO_MANY, TOO_SHORT, JsonTimerStore,
                                          MemoryTimerStore, TimerSkill, intent_of)
from pipelines.skills.timers import clock_words, duration_words, left_words, parse_when

NOW = datetime(2026, 11, 29, 14, 0, 0)  # a Sunday, 2 PM


def M(n):
    return NOW + timedelta(minutes=n)


def S(n):
    return NOW + timedelta(seconds=n)


def T(h, m=0, d=0):
    return datetime(2026, 11, 29, h, m) + timedelta(days=d)


# (what the wearer said, when it is due, kind, what is kept)
TABLE = [
    ("Set a timer for 5 minutes.", M(5), "timer", ""),
    ("timer 90 seconds", S(90), "timer", ""),
    ("set a 10 minute timer", M(10), "timer", ""),
    ("Wake me in half an hour.", M(30), "reminder", "wake up"),
    ("Remind me to call mum at 6 pm.", T(18), "reminder", "call mum"),
    ("Remind me in 20 minutes to take the pizza out.", M(20), "reminder", "take the pizza out"),
    ("Remind me at 18:30 to water the plants.", T(18, 30), "reminder", "water the plants"),
    ("Remind me tomorrow at 9 to call the bank.", T(9, 0, 1), "reminder", "call the bank"),
    ("Set a timer for an hour.", M(60), "timer", ""),
    ("Set a timer for an hour and a half.", M(90), "timer", ""),
    ("Timer for 1.5 hours.", M(90), "timer", ""),
    ("Set a timer for two minutes.", M(2), "timer", ""),
    ("Set a timer for twenty-five minutes.", M(25), "timer", ""),
    ("Set a timer for 1 hour 30 minutes.", M(90), "timer", ""),
    ("Set a timer for 2 hours and 15 minutes.", M(135), "timer", ""),
    ("Set a timer for 45 secs.", S(45), "timer", ""),
    ("Um, could you set a timer for 3 mins, please?", M(3), "timer", ""),
    ("Remind me at noon to eat lunch.", T(12, 0, 1), "reminder", "eat lunch"),  # noon has passed: tomorrow
    ("Remind me at midnight to lock the door.", T(0, 0, 1), "reminder", "lock the door"),
    ("Remind me at 7:15 a.m. to take my pills.", T(7, 15, 1), "reminder", "take your pills"),
    ("Remind me at 9 PM to call Dad.", T(21), "reminder", "call Dad"),
    ("Remind me at 1pm to eat.", T(13, 0, 1), "reminder", "eat"),
    ("Remind me at 6 to call mum.", T(18), "reminder", "call mum"),  # the next 6 to come
    ("Set a timer for a minute.", M(1), "timer", ""),
    ("Set a timer for a quarter of an hour.", M(15), "timer", ""),
    ("Can you remind me in an hour to check the oven?", M(60), "reminder", "check the oven"),
    ("Remind me to take my pills in 10 minutes.", M(10), "reminder", "take your pills"),
    ("Remind me at half past six to call John.", T(18, 30), "reminder", "call John"),
    ("Remind me at quarter to seven to leave.", T(18, 45), "reminder", "leave"),
    ("Set a five minute timer.", M(5), "timer", ""),
    ("Set a 90 second timer.", S(90), "timer", ""),
    ("Remind me tonight at 8 to call mum.", T(20), "reminder", "call mum"),
    ("Wake me up at 7 am tomorrow.", T(7, 0, 1), "reminder", "wake up"),
    ("Remind me in two and a half hours to move the car.", M(150), "reminder", "move the car"),
    ("Set a timer for 10 minutes for the pasta.", M(10), "timer", "pasta"),
    ("Set a pasta timer for 8 minutes.", M(8), "timer", "pasta"),
    ("Remind me at 8 in the morning to call the bank.", T(8, 0, 1), "reminder", "call the bank"),
    ("Start a timer for thirty seconds.", S(30), "timer", ""),
    ("Remind me in 1 hour and 20 minutes to check the bread.", M(80), "reminder", "check the bread"),
    ("Remind me about the meeting at 3.", T(15), "reminder", "the meeting"),
    ("Set an alarm for 6:45 am.", T(6, 45, 1), "reminder", ""),
    ("Set the kitchen timer for 4 minutes.", M(4), "timer", ""),
    ("Set a timer for 5 minutes to take the bread out.", M(5), "reminder", "take the bread out"),
    ("Remind me at 6.30 pm to call mum.", T(18, 30), "reminder", "call mum"),
    ("Remind me at 10 to 6 to leave.", T(17, 50), "reminder", "leave"),
    ("Remind me to buy 2 pints of milk at 6 pm.", T(18), "reminder", "buy 2 pints of milk"),
    ("Remind me to call Mum's friend at 6pm.", T(18), "reminder", "call Mum's friend"),
    ("Remind me at 7 tomorrow evening to call dad.", T(19, 0, 1), "reminder", "call dad"),
    ("Countdown 10 seconds.", S(10), "timer", ""),
    ("Set a timer for three quarters of an hour.", M(45), "timer", ""),
    ("Remind me at 6 pm to plan the week.", T(18), "reminder", "plan the week"),
]
UNPARSEABLE = [
    "Set a timer.", "Remind me to call mum.", "Set a timer for later.", "Remind me sometime to call mum.",
    "Set a timer for blah minutes.", "Remind me at 25:00 to eat.", "Set a timer for a few minutes.",
    "Remind me tomorrow to call the bank.", "Remind me on Monday at 9 to call the bank.",
    "Set a timer for five.", "Remind me at 6:75 to eat.", "Remind me at 13 pm to eat.",
    "Remind me next week to renew my passport.", "Remind me in a while to stretch.",
    "Set a timer for 5 minutes at 6 pm.",  # two times: which one?
    "Set a timer for 5:30.",  # five and a half minutes, or half past five?
    "Remind me in 5 minutes to boil the eggs for 10 minutes.",  # two lengths said with "in"/"for"
    "Remind me every day at 9 to take my pills.",  # a repeat: one 9 o'clock would be wrong
    "Remind me on the 5th at 9 to pay the rent.",
]


@pytest.mark.parametrize("text,due,kind,what", TABLE)
def test_the_phrasing_table(text, due, kind, what):
    when = parse_when(text, NOW)
    assert when is not None, text
    assert (when.due, when.kind, when.what) == (due, kind, what)


def test_the_table_is_large_enough():
    assert len(TABLE) >= 30


@pytest.mark.parametrize("text", [row[0] for row in TABLE] + UNPARSEABLE)
def test_every_phrasing_is_a_timer_question_and_never_memorys(text):
    assert intent_of(text) == "set" and kind_of(text) == ""


@pytest.mark.parametrize("text", UNPARSEABLE)
def test_words_without_a_certain_time_give_none(text):
    assert parse_when(text, NOW) is None


def test_a_bare_hour_is_the_next_one_to_come():
    late = datetime(2026, 11, 29, 23, 0)
    assert parse_when("wake me at 6", late).due == datetime(2026, 11, 30, 6, 0)
    assert parse_when("remind me at 3 to eat", NOW).due == T(15)
    assert parse_when("remind me tomorrow at 3 to eat", NOW).due == T(15, 0, 1)
    assert parse_when("remind me at 11 at night to sleep", NOW).due == T(23)
    assert parse_when("remind me tonight at 1 to sleep", NOW).due == T(1, 0, 1)


def test_today_in_the_past_stays_in_the_past():
    when = parse_when("remind me today at 9 am to call the bank", NOW)
    assert when.due < NOW  # the skill says it has passed rather than set it for tomorrow


def test_aware_times_cross_a_clock_change_in_elapsed_time():
    now = datetime(2026, 11, 29, 14, 0, tzinfo=timezone(timedelta(hours=1)))
    when = parse_when("set a timer for 2 hours", now)
    assert when.due - now == timedelta(hours=2) and when.due.tzinfo is not None


def test_words_for_times():
    assert duration_words(timedelta(minutes=5), adjective=True) == "5 minute"
    assert duration_words(timedelta(seconds=90)) == "90 seconds"
    assert duration_words(timedelta(minutes=90)) == "1 hour 30 minutes"
    assert left_words(timedelta(seconds=200)) == "3 minutes 20 seconds"
    assert left_words(timedelta(seconds=3725)) == "1 hour 2 minutes"
    assert clock_words(T(18, 30), NOW) == "6:30 PM" and clock_words(T(9, 0, 1), NOW) == "9 AM tomorrow"
    assert clock_words(T(12, 0, 1), NOW) == "noon tomorrow" and clock_words(T(0, 0, 1), NOW) == "midnight"


# --- which questions are the skill's ---------------------------------------------------------
MINE = [("set a timer for 5 minutes", "set"), ("Remind me to call mum at 6 pm.", "set"),
        ("Could you please set a reminder for 6 pm?", "set"), ("wake me up in 20 minutes", "set"),
        ("timer 90 seconds", "set"), ("set a 10 minute timer", "set"), ("Set a timer.", "set"),
        ("What timers do I have?", "list"), ("How long is left on my timer?", "list"),
        ("Do I have any reminders?", "list"), ("cancel the timer", "cancel"), ("Cancel my reminder.", "cancel"),
        ("stop the pasta timer", "cancel"), ("cancel the reminder to call mum", "cancel"),
        ("How long is left on my 10 minute timer?", "list"), ("When does my reminder go off?", "list")]
NOT_MINE = ["What time is it?", "remember that my locker is 7", "Remember my parking spot is B12.",
            "what colour is this shirt?", "how much is this shirt?", "what does this timer say?",
            "remind me what this word means", "how much time do I have?", "what is this?", "stop"]


@pytest.mark.parametrize("question,intent", MINE)
def test_timer_phrasings_are_taken(question, intent):
    assert intent_of(question) == intent
    assert kind_of(question) == ""  # and memory never takes them


@pytest.mark.parametrize("question", NOT_MINE)
def test_other_questions_are_left_alone(question):
    assert TimerSkill(MemoryTimerStore(), lambda s: NOW).wants(question) == ""


def test_remind_is_ours_and_remember_is_memorys():
    assert kind_of("remember that my locker is 7") == "remember"
    skill = TimerSkill(MemoryTimerStore(), lambda s: NOW)
    assert skill.wants("remind me to call mum at 6") and not skill.wants("remember that my locker is 7")
    assert route("remind me in 5 minutes to stir", "instant", [skill]).name == "timers"
    assert route("what time is it?", "instant", [skill]).target == "vlm"


# --- the skill on a simulated clock -------------------------------------------------------------
def wall(seconds: float) -> datetime:
    """Session second 0 is NOW."""
    return NOW + timedelta(seconds=seconds)


def ask(skill, question, at=0.0):
    said, shown = [], []
    ctx = ModeContext(None, VLMRequest(question, None), threading.Event(), said.append, shown.append, end=at)
    result = skill.answer(ctx)
    assert said == [result.answer]
    return result


def test_a_timer_is_said_once_when_due():
    skill = TimerSkill(MemoryTimerStore(), wall)
    assert ask(skill, "Set a timer for 5 minutes.", at=10.0).answer == "OK, timer set for 5 minutes."
    assert skill.due(10.0) == [] and skill.due(309.9) == []
    assert skill.due(310.0) == ["Your 5 minute timer is done."]
    assert skill.due(310.1) == [] and skill.due(1000.0) == []


def test_reminders_are_confirmed_with_their_time_and_said_in_words():
    skill = TimerSkill(MemoryTimerStore(), wall)
    assert ask(skill, "Remind me to call mum at 6 pm.").answer == "OK, I'll remind you to call mum at 6 PM."
    assert ask(skill, "remind me in 20 minutes to take my pizza out").answer == \
        "OK, I'll remind you to take your pizza out in 20 minutes."
    assert ask(skill, "Remind me tomorrow at 9 to call the bank.").answer == \
        "OK, I'll remind you to call the bank at 9 AM tomorrow."
    assert ask(skill, "wake me in half an hour").answer == "OK, I'll wake you in 30 minutes."
    assert skill.due(20 * 60) == ["Reminder: take your pizza out."]
    assert skill.due(30 * 60) == ["Time to wake up."]
    assert skill.due(4 * 3600) == ["Reminder: call mum."]
    assert skill.due(19 * 3600) == ["Reminder: call the bank."]  # 9 AM tomorrow


def test_several_due_at_once_come_soonest_first():
    skill = TimerSkill(MemoryTimerStore(), wall)
    ask(skill, "set a timer for 2 minutes")
    ask(skill, "set a timer for 1 minute")
    assert skill.due(600) == ["Your 1 minute timer is done. It was due at 2:01 PM.",
                              "Your 2 minute timer is done. It was due at 2:02 PM."]


def test_when_it_asks_when_the_next_words_may_be_just_the_time():
    skill = TimerSkill(MemoryTimerStore(), wall)
    assert not skill.wants("5 minutes")  # nothing was asked
    assert ask(skill, "set a timer").answer == ASK_AGAIN
    assert skill.wants("5 minutes") and route("five minutes", "instant", [skill]).name == "timers"
    assert ask(skill, "five minutes", at=5.0).answer == "OK, timer set for 5 minutes."
    assert not skill.wants("10 minutes")  # answered: a time on its own is no timer again
    assert ask(skill, "remind me to call mum").answer == ASK_AGAIN
    assert skill.wants("at 6 pm") and ask(skill, "at 6 pm").answer == "OK, I'll remind you to call mum at 6 PM."
    ask(skill, "set a timer")
    assert not skill.wants("what is this?") and not skill.wants("5 minutes")  # only the very next question


def test_bad_times_are_refused_with_a_sentence_and_set_nothing():
    skill = TimerSkill(MemoryTimerStore(), wall)
    assert ask(skill, "set a timer for blah minutes").answer == ASK_AGAIN
    assert ask(skill, "set a timer for 0 minutes").answer == TOO_SHORT
    assert ask(skill, "set a timer for 25 hours").answer == TOO_LONG
    assert ask(skill, "set a timer for 2 days").answer == TOO_LONG
    assert ask(skill, "remind me today at 9 am to call the bank").answer == "9 AM has already passed today."
    assert skill.pending() == []


def test_at_most_fifty_pending():
    skill = TimerSkill(MemoryTimerStore(), wall)
    for i in range(MAX_PENDING):
        assert ask(skill, f"set a timer for {i + 1} minutes").answer.startswith("OK")
    assert ask(skill, "set a timer for 3 hours").answer == TOO_MANY
    assert len(skill.pending()) == MAX_PENDING


def test_listing_says_the_time_left():
    skill = TimerSkill(MemoryTimerStore(), wall)
    assert ask(skill, "what timers do I have?").answer == "You have no timers or reminders."
    ask(skill, "set a timer for 5 minutes")
    assert ask(skill, "How long is left on my timer?", at=100).answer == \
        "Your 5 minute timer has 3 minutes 20 seconds left."
    ask(skill, "remind me to call mum at 6 pm", at=100)
    assert ask(skill, "what timers do I have?", at=100).answer == (
        "You have 2 timers and reminders: your 5 minute timer, 3 minutes 20 seconds left; "
        "and the reminder to call mum at 6 PM, in 3 hours 58 minutes.")


def test_cancel_the_newest_or_the_one_named():
    skill = TimerSkill(MemoryTimerStore(), wall)
    assert ask(skill, "cancel the timer").answer == "You have no timers."
    ask(skill, "set a timer for 10 minutes for the pasta")
    ask(skill, "set a timer for 5 minutes")
    ask(skill, "remind me to call mum at 6 pm")
    ask(skill, "remind me to water the plants at 7 pm")
    assert ask(skill, "cancel the pasta timer").answer == "OK, I cancelled your pasta timer."
    assert ask(skill, "cancel my reminder").answer == "OK, I cancelled the reminder to water the plants."
    assert ask(skill, "cancel the reminder to call the bank").answer.startswith("I couldn't find")
    assert ask(skill, "cancel the reminder to call mum").answer == "OK, I cancelled the reminder to call mum."
    assert ask(skill, "cancel the five minute timer").answer == "OK, I cancelled your 5 minute timer."
    assert skill.pending() == [] and skill.due(10 ** 6) == []


def test_cancel_all():
    skill = TimerSkill(MemoryTimerStore(), wall)
    for n in (1, 2, 3):
        ask(skill, f"set a timer for {n} minutes")
    assert ask(skill, "cancel all my timers").answer == "OK, I cancelled all 3 timers."


# --- the store -------------------------------------------------------------------------------------
def test_timers_survive_a_restart_on_the_same_file(tmp_path):
    path = tmp_path / "timers.json"
    first = TimerSkill(JsonTimerStore(path), wall)
    ask(first, "set a timer for 5 minutes")
    ask(first, "remind me to call mum at 6 pm")
    # the glasses restart: a new session whose second 0 is an hour later
    second = TimerSkill(JsonTimerStore(path), lambda s: NOW + timedelta(hours=1, seconds=s))
    assert [t.what for t in second.pending()] == ["", "call mum"]
    assert second.due(0) == ["Your 5 minute timer is done. It was due at 2:05 PM."]
    assert TimerSkill(JsonTimerStore(path), wall).due(5 * 3600) == ["Reminder: call mum. It was due at 6 PM."]
    assert json.loads(path.read_text())["timers"] == []


def test_a_corrupt_file_is_kept_aside_not_overwritten(tmp_path, caplog):
    path = tmp_path / "timers.json"
    path.write_text("{ not json")
    with caplog.at_level(logging.WARNING, logger="timers"):
        skill = TimerSkill(JsonTimerStore(path), wall)
    aside = tmp_path / "timers.json.corrupt-1"
    assert aside.read_text() == "{ not json" and "corrupt-1" in caplog.text
    ask(skill, "set a timer for 5 minutes")
    assert len(json.loads(path.read_text())["timers"]) == 1 and aside.read_text() == "{ not json"


def test_a_file_with_a_bad_entry_keeps_the_good_ones_and_the_original(tmp_path):
    path = tmp_path / "timers.json"
    good = {"id": 1, "due": M(5).isoformat(), "what": "", "kind": "timer", "said": "5 minutes", "length_s": 300}
    path.write_text(json.dumps({"version": 1, "timers": [good, {"id": 2, "due": "soon"}]}))
    assert [t.id for t in JsonTimerStore(path).load()] == [1]
    assert "soon" in (tmp_path / "timers.json.corrupt-1").read_text()


def test_a_failed_save_keeps_the_timer_and_says_so(tmp_path):
    class Full(MemoryTimerStore):
        def save(self, timers):
            raise OSError(28, "No space left on device")

    skill = TimerSkill(Full(), wall)
    assert ask(skill, "set a timer for 5 minutes").answer.endswith("it won't survive a restart.")
    assert skill.due(300) == ["Your 5 minute timer is done."]


def test_a_file_of_aware_times_works_with_a_naive_clock(tmp_path):
    path = tmp_path / "timers.json"
    due = M(5).astimezone(timezone.utc)  # NOW + 5 minutes, written by a clock that knew its zone
    row = {"id": 7, "due": due.isoformat(), "what": "", "kind": "timer", "said": "5 minutes", "length_s": 300}
    path.write_text(json.dumps({"version": 1, "timers": [row]}))
    skill = TimerSkill(JsonTimerStore(path), wall)
    assert skill.due(299) == [] and skill.due(300) == ["Your 5 minute timer is done."]
    ask(skill, "set a timer for 1 minute")
    assert [t.id for t in skill.pending()] == [8]  # ids go on after the file's


def test_the_list_is_shown_too():
    skill = TimerSkill(MemoryTimerStore(), wall)
    ask(skill, "remind me to look at the oven at 6 pm")
    assert ask(skill, "what reminders do I have?").answer == "The reminder to look at the oven is at 6 PM, in 4 hours."
    ask(skill, "cancel my reminder")
    ask(skill, "remind me to call mum at 6 pm")
    shown = []
    ctx = ModeContext(None, VLMRequest("what reminders do I have?", None), threading.Event(), lambda t: None,
                      shown.append)
    assert skill.answer(ctx).answer == "The reminder to call mum is at 6 PM, in 4 hours."
    assert shown == ["6 PM  the reminder to call mum"]


def test_a_cancelled_question_sets_nothing_unheard():
    skill = TimerSkill(MemoryTimerStore(), wall)
    said = []
    cancel = threading.Event()
    cancel.set()
    ctx = ModeContext(None, VLMRequest("set a timer for 5 minutes", None), cancel, said.append)
    assert skill.answer(ctx).answer == "" and said == [] and skill.pending() == []


def test_the_file_is_written_whole(tmp_path):
    path = tmp_path / "sub" / "timers.json"
    skill = TimerSkill(JsonTimerStore(path), wall)
    ask(skill, "set a timer for 5 minutes")
    assert [p.name for p in path.parent.iterdir()] == ["timers.json"]  # no temporary file left behind


# --- threads ------------------------------------------------------------------------------------
def test_due_and_answer_from_two_threads():
    """The hearing thread polls due() while the answer thread sets timers: each is said exactly once."""
    skill = TimerSkill(MemoryTimerStore(), wall, limit=1000)
    clock = {"t": 0.0}
    heard: list[str] = []
    done = threading.Event()

    def hearing():
        while not done.is_set():
            clock["t"] += 0.5
            heard.extend(skill.due(clock["t"]))
        heard.extend(skill.due(10 ** 6))

    thread = threading.Thread(target=hearing)
    thread.start()
    for i in range(200):
        ask(skill, f"set a timer for {i % 7 + 1} seconds", at=clock["t"])
    done.set()
    thread.join(5)
    assert not thread.is_alive()
    assert len(heard) == 200 and skill.pending() == []

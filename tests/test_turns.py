"""Turn-taking as a pure state machine: events in, actions out, no threads, no clock."""
from functools import partial

from core.messages import AnswerFinished, ModeSwitch, SpeechContinues, SpeechHint, SpeechHintEnded, SpeechOnset, SpeechPaused, \
    SpeechResumed, SpeechStarted, Transcript, TypedQuestion
from pipelines.router import route
from pipelines.turns import Cancel, Confirm, Pause, Record, Resume, Show, Speculate, StartAnswer, TurnConfig, TurnTaking


def machine(skills=(), **config) -> TurnTaking:
    return TurnTaking(TurnConfig(**config), partial(route, skills=skills))


def heard(text, start, end, *, early=False, ptt=False, dropped=""):
    return Transcript(start, end, end + 0.5, text, 0.1, 0.0, dropped, 100.0, ptt, "early" if early else "")


def kinds(actions):
    return [type(a).__name__ if not isinstance(a, Record) else f"Record:{a.kind}" for a in actions]


def started(actions):
    (start,) = [a for a in actions if isinstance(a, StartAnswer)]
    return start.plan


def finish(tt, plan, end, cancelled=False):
    return tt.handle(AnswerFinished(plan.id, plan.question, "an answer", end, cancelled))


def test_a_wake_question_starts_an_answer_and_lights_up():
    tt = machine()
    actions = tt.handle(heard("Hey glasses, what is this?", 1.0, 2.0))
    assert kinds(actions) == ["Record:heard", "Show", "Show", "StartAnswer"]
    plan = started(actions)
    assert (plan.question, plan.start, plan.end, plan.route.target, plan.route.name) == \
        ("what is this?", 1.0, 2.0, "vlm", "instant")
    assert actions[1] == Show(1.0, {"light": True}) and actions[2].fields["status"] == "thinking"
    assert tt.busy(5.0)  # until its AnswerFinished


def test_speech_without_the_wake_phrase_is_ignored_but_a_follow_up_is_not():
    tt = machine(follow_up=5.0)
    assert kinds(tt.handle(heard("so I told him", 0.5, 1.5))) == ["Record:heard", "Show"]
    plan = started(tt.handle(heard("hey glasses, what is this?", 2.0, 3.0)))
    finish(tt, plan, end=6.0)
    assert not tt.busy(6.1)
    assert started(tt.handle(heard("and how big is it?", 7.0, 8.0))).question == "and how big is it?"
    finish(tt, tt.current, end=10.0)
    assert "StartAnswer" not in kinds(tt.handle(heard("what about now?", 16.0, 17.0)))  # the window closed at 15


def test_a_backchannel_over_an_answer_is_ignored_and_stop_cancels_it():
    tt = machine()
    finish(tt, started(tt.handle(heard("hey glasses, what is this?", 0.0, 0.5))), end=1.0)
    plan = started(tt.handle(heard("describe everything", 1.0, 2.0)))  # a follow-up: the window is open
    mm = tt.handle(heard("mm-hmm, go on", 3.0, 3.2))  # 0.2 s while busy: a backchannel, though in the window
    assert [a.fields["reason"] for a in mm if isinstance(a, Record)] == ["backchannel while answering"]
    assert not [a for a in mm if isinstance(a, Show)]  # the answer still speaks: the display does not turn idle
    actions = tt.handle(heard("Stop.", 4.0, 4.3), now=4.8)
    assert Cancel(plan.id, 4.8, "stop") in actions and "Record:stop" in kinds(actions)
    assert tt.follow_up_until == -1.0


def test_a_barge_in_cancels_the_answer_and_only_then_allows_speculation():
    tt = machine()
    plan = started(tt.handle(heard("hey glasses, describe everything", 1.0, 2.0)))
    assert tt.handle(SpeechPaused(3.0, 3.4)) == []  # no prefill on the shared model while it generates
    assert tt.handle(SpeechOnset(3.0, 3.25)) == []  # over an answer it may be "mm-hmm": wait for the barge-in
    actions = tt.handle(SpeechStarted(3.0, 3.4))
    assert kinds(actions) == ["Record:barge_in", "Cancel", "Show", "Speculate"]
    assert actions[1] == Cancel(plan.id, 3.4, "barge-in") and actions[3] == Speculate(3.0, 3.4)
    assert tt.handle(SpeechPaused(3.0, 4.0)) == [Speculate(3.0, 4.0)]
    finish(tt, plan, end=3.4, cancelled=True)
    nxt = started(tt.handle(heard("what is that one?", 3.0, 4.0)))  # no wake phrase: the barge-in opened a window
    assert nxt.question == "what is that one?"


def test_speech_that_goes_on_asks_speculative_vision_to_look_again_unless_an_answer_is_busy():
    tt = machine()
    assert tt.handle(SpeechContinues(1.0, 1.6)) == [Speculate(1.0, 1.6, True)]  # the view may have changed since the onset
    plan = started(tt.handle(heard("hey glasses, describe everything", 1.0, 2.0)))
    assert tt.handle(SpeechContinues(3.0, 3.6)) == []  # over an answer: maybe "mm-hmm", and the model is busy
    finish(tt, plan, end=3.5)
    assert tt.handle(SpeechContinues(4.0, 4.6)) == [Speculate(4.0, 4.6, True)]


def test_speech_over_a_finished_answer_still_playing_interrupts_the_speaker_only():
    tt = machine()
    plan = started(tt.handle(heard("hey glasses, describe everything", 1.0, 2.0)))
    finish(tt, plan, end=12.0)  # generated and handed over; the speaker plays until 12 s
    assert tt.handle(SpeechOnset(5.0, 5.25)) == []
    actions = tt.handle(SpeechStarted(5.0, 5.4))
    assert actions[1] == Cancel(None, 5.4, "barge-in") and not tt.busy(5.5)


def test_a_newer_question_overtakes_the_answer_in_flight():
    tt = machine()
    first = started(tt.handle(TypedQuestion(1.0, "what is this?", 10.0)))
    actions = tt.handle(TypedQuestion(2.0, "and that?", 11.0))
    assert Cancel(first.id, 2.0, "new question") in actions
    second = started(actions)
    assert second.id != first.id
    assert finish(tt, first, end=2.0, cancelled=True) == [] and tt.busy(3.0)  # the old one finishing changes nothing
    finish(tt, second, end=4.0)
    assert not tt.busy(4.1) and tt.follow_up_until == 10.0


def test_an_early_transcript_begins_a_silent_answer_that_is_confirmed_or_discarded():
    tt = machine(answer_early=True)
    actions = tt.handle(heard("hey glasses, what is this?", 1.0, 2.0, early=True))
    assert kinds(actions) == ["StartAnswer"]  # no display change: nothing is shown until confirmed
    plan = started(actions)
    assert plan.tentative and plan.heard == "hey glasses, what is this?"
    assert not tt.busy(2.1)  # a tentative answer has not been heard: it does not make the wearer "interrupt"
    confirmed = tt.handle(heard("hey glasses, what is this?", 1.0, 2.0), now=2.6)
    assert kinds(confirmed) == ["Record:heard", "Confirm", "Show", "Show"] and confirmed[1].turn == plan.id
    assert not tt.current.tentative and tt.busy(2.7)

    tt = machine(answer_early=True)
    plan = started(tt.handle(heard("hey glasses, what is this?", 1.0, 2.0, early=True)))
    actions = tt.handle(SpeechResumed(1.0, 2.3))  # the wearer went on speaking
    assert actions[0] == Cancel(plan.id, None, "discard") and actions[1].fields["why"] == "speech resumed"
    assert tt.current is None and not tt.answering
    final = tt.handle(heard("hey glasses, what is this red thing?", 1.0, 3.0))
    assert started(final).question == "what is this red thing?"


def test_early_answers_are_instant_only_and_off_unless_asked_for():
    assert machine().handle(heard("hey glasses, what is this?", 1.0, 2.0, early=True)) == []
    tt = machine(answer_early=True, mode="thinking")
    assert tt.handle(heard("hey glasses, what is this?", 1.0, 2.0, early=True)) == []


def test_a_mode_switch_said_alone_changes_the_standing_mode_and_opens_the_window():
    tt = machine()
    actions = tt.handle(heard("Hey glasses, think harder.", 1.0, 2.0))
    assert kinds(actions) == ["Record:heard", "Record:mode", "Show"] and tt.mode == "contemplating"
    plan = started(tt.handle(heard("how many cups are there?", 3.0, 4.0)))  # no wake phrase needed
    assert plan.route.name == "contemplating"
    assert tt.handle(ModeSwitch(5.0, "next"))[0].fields["mode"] == "instant"
    assert tt.handle(ModeSwitch(5.0, "sideways"))[0].kind == "error"


def test_a_dropped_transcript_goes_idle_and_push_to_talk_needs_no_wake_phrase():
    tt = machine()
    assert kinds(tt.handle(heard("", 1.0, 2.0, dropped="empty"))) == ["Record:heard", "Show"]
    assert started(tt.handle(heard("what is this?", 3.0, 4.0, ptt=True))).question == "what is this?"


class ClockSkill:
    name = "clock"

    def wants(self, question, active=""):
        return "asks the time" if "time" in question.lower() else ""

    def answer(self, ctx):
        raise AssertionError("not called by turn-taking")


def test_the_router_sends_a_question_to_a_skill_or_to_the_vlm():
    skills = (ClockSkill(),)
    r = route("what time is it?", "instant", skills)
    assert (r.target, r.name, r.reason, r.speculates) == ("skill", "clock", "asks the time", False)
    assert route("what colour is this?", "instant", skills).target == "vlm"
    voiced = route("think harder, what time is it?", "instant", skills)  # the wearer asked for the model
    assert (voiced.target, voiced.name, voiced.question) == ("vlm", "contemplating", "what time is it?")
    assert route("think harder.", "instant", skills).switch
    tt = machine(skills=skills)
    assert started(tt.handle(heard("hey glasses, what time is it?", 1.0, 2.0))).route.name == "clock"


def test_a_cancelled_answer_does_not_keep_the_session_busy_with_audio_it_never_played():
    # found by the chaos soak: the planned end of cleared audio made the next question a "barge-in"
    tt = machine()
    plan = started(tt.handle(heard("hey glasses, describe everything", 1.0, 2.0)))
    actions = tt.handle(SpeechStarted(3.0, 3.4))
    assert actions[0].fields["turn"] == plan.id  # the barge_in record names the answer it cut
    finish(tt, plan, end=15.0, cancelled=True)  # 15 s was its plan; the speaker was cleared at 3.4
    assert not tt.busy(3.5)
    assert "Record:barge_in" not in kinds(tt.handle(SpeechStarted(5.0, 5.4)))


def test_a_hint_of_speech_over_an_answer_pauses_it_and_a_backchannel_lets_it_go_on_later():
    tt = machine()
    plan = started(tt.handle(heard("hey glasses, describe everything", 1.0, 2.0)))
    finish(tt, plan, end=8.0)  # the speaker plays until 8 s
    actions = tt.handle(SpeechHint(4.0, 4.07))
    assert kinds(actions) == ["Record:yield", "Pause", "Show"] and actions[1] == Pause(4.07)
    assert actions[2] == Show(4.07, {"status": "listening"})
    assert tt.handle(SpeechHint(4.0, 4.1)) == []  # paused already
    assert tt.handle(SpeechOnset(4.0, 4.25)) == []  # still the answer's floor until it is known
    actions = tt.handle(SpeechHintEnded(4.6))  # "mm-hmm": never long enough to interrupt
    assert kinds(actions) == ["Record:resume", "Resume", "Show"] and actions[0].fields["paused_s"] == 0.53
    assert tt.busy(8.5) and not tt.busy(8.54)  # it ends as much later as it was paused
    assert tt.handle(SpeechHintEnded(5.0)) == []


def test_a_short_utterance_keeps_the_answer_paused_until_its_words_are_known():
    tt = machine()
    plan = started(tt.handle(heard("hey glasses, describe everything", 1.0, 2.0)))
    finish(tt, plan, end=9.0)
    tt.handle(SpeechHint(4.0, 4.07))
    assert tt.handle(SpeechHintEnded(4.6, words=True)) == []  # still paused: "stop" must not let it go on first
    assert tt.handle(SpeechHint(4.7, 4.76)) == [] and tt.handle(SpeechHintEnded(4.9)) == []  # the words still come
    actions = tt.handle(heard("mm-hmm", 4.0, 4.3), now=5.0)
    assert kinds(actions)[-3:] == ["Record:resume", "Resume", "Show"] and actions[-2] == Resume(5.0)
    assert tt.busy(9.9) and not tt.busy(9.94)  # 0.93 s later than planned
    tt.handle(SpeechHint(6.0, 6.07))
    tt.handle(SpeechHintEnded(6.6, words=True))
    actions = tt.handle(heard("Stop.", 6.0, 6.3), now=7.0)
    assert Cancel(None, 7.0, "stop") in actions and Resume not in map(type, actions) and tt.paused_at is None


def test_a_hint_that_becomes_a_barge_in_cancels_the_paused_answer_even_past_its_planned_end():
    tt = machine()
    plan = started(tt.handle(heard("hey glasses, describe everything", 1.0, 2.0)))
    finish(tt, plan, end=4.2)
    assert kinds(tt.handle(SpeechHint(4.0, 4.07))) == ["Record:yield", "Pause", "Show"]
    actions = tt.handle(SpeechStarted(4.0, 4.45))  # 4.45: the paused answer would have ended, but it has not sounded
    assert kinds(actions)[:2] == ["Record:barge_in", "Cancel"] and tt.paused_at is None and not tt.busy(4.5)


def test_no_pause_when_nothing_is_said_while_translating_or_when_turned_off():
    assert machine().handle(SpeechHint(1.0, 1.07)) == []  # nothing to pause
    for tt in (machine(skill="translate"), machine(yield_floor=False), machine(barge_in=False)):
        finish(tt, started(tt.handle(TypedQuestion(0.5, "describe everything"))), end=8.0)
        assert tt.handle(SpeechHint(4.0, 4.07)) == [] and tt.handle(SpeechHintEnded(4.5)) == []


def test_stop_said_while_paused_cancels_and_clears_the_pause():
    tt = machine()
    plan = started(tt.handle(heard("hey glasses, describe everything", 1.0, 2.0)))
    tt.handle(SpeechHint(3.0, 3.07))
    actions = tt.handle(heard("Stop.", 3.0, 3.3), now=3.8)
    assert Cancel(plan.id, 3.8, "stop") in actions and tt.paused_at is None
    assert Resume not in map(type, tt.handle(SpeechHintEnded(3.9)))


def test_a_newer_question_while_paused_clears_what_was_paused():
    tt = machine()
    plan = started(tt.handle(heard("hey glasses, describe everything", 1.0, 2.0)))
    finish(tt, plan, end=9.0)  # generated; its audio plays until 9 s
    tt.handle(SpeechHint(4.0, 4.07))
    actions = tt.handle(TypedQuestion(4.2, "what colour is it?"))
    assert Cancel(None, 4.2, "new question") in actions and "StartAnswer" in kinds(actions) and tt.paused_at is None
    assert tt.handle(SpeechHintEnded(4.5)) == []  # nothing left to go on

"""The session's wiring and turn-taking with fake ports and fake models (no files, no devices)."""
import threading

import numpy as np
import pytest

from glasses.fakes import ScriptedSource, tone_track
from glasses.speaker import MixSpeaker
from core.clock import MediaClock
from tests.fakes import EnergyVAD, FakeTTS, ScriptedASR
from pipelines.log import SessionLog
from pipelines.session import NO_IMAGE_NOTE, Session, SessionConfig
from tests.fakes import FakeVLM


def grey(t):
    img = np.full((120, 160, 3), 128, np.uint8)
    img[40:80, 60:100] = (0, 0, 255)
    img[5:10, int(t * 10) % 150 : int(t * 10) % 150 + 5] = 255  # something moves
    return img


def run_session(duration, bursts, script, *, vlm=None, draw=grey, asks=(), **config):
    source = ScriptedSource(tone_track(duration, bursts), draw)
    speaker = MixSpeaker()
    log = SessionLog(None)
    vlm = vlm or FakeVLM("It is a red square. It sits on a grey wall.")
    session = Session(SessionConfig(asks=tuple(asks), **config), source=source, vad=EnergyVAD(),
                      asr=ScriptedASR(script), vlm=vlm, tts=FakeTTS(), speaker=speaker, clock=MediaClock(), log_=log)
    session.run()
    return session, log, speaker, vlm


def test_wake_question_gives_one_turn_with_times_and_latencies():
    session, log, speaker, vlm = run_session(6.0, [(1.0, 2.5)], [(1.5, "Hey glasses, what colour is the square?")])
    (turn,) = log.turns()
    assert turn["question"] == "what colour is the square?"
    assert turn["answer"] == "It is a red square. It sits on a grey wall."
    assert abs(turn["heard_at"] - 2.5) < 0.05  # end of speech, from the audio itself
    assert 1.0 <= turn["frame_time"] <= 2.6 and turn["frame_sharpness"] > 0
    lat = turn["latency"]
    assert abs(lat["vad"] - 0.5) < 0.05  # the endpointing silence
    # fast pace with models that answer at once: the wait is the endpointing silence plus milliseconds
    assert lat["vad"] < lat["voice_to_voice"] < lat["vad"] + 0.5 and 0 < lat["vlm_first_token"] <= lat["vlm_total"] < 0.5
    # speech starts with the first sentence and the pieces follow one another
    assert [s["text"] for s in turn["spoken"]] == ["It is a red square.", "It sits on a grey wall."]
    first = speaker.clips()[0]
    assert abs(first.start - (turn["heard_at"] + lat["voice_to_voice"])) < 1e-3
    assert speaker.clips()[1].start >= first.end - 1e-9
    # the model saw the frame, in RGB, with the wearer's system prompt
    (request,) = vlm.requests
    assert request.image is not None and request.image.shape[2] == 3 and "glasses" in request.system


def test_people_talking_without_the_wake_phrase_gives_no_turn():
    _, log, speaker, vlm = run_session(6.0, [(0.5, 1.5), (2.5, 4.0)], [(1.0, "so I told him"), (3.0, "what is this")])
    assert log.turns() == [] and speaker.clips() == [] and vlm.requests == []
    heard = [r for r in log.records if r["type"] == "heard"]
    assert [h["action"] for h in heard] == ["ignore", "ignore"]


def test_follow_up_without_wake_phrase_inside_the_window_only():
    script = [(1.0, "Hey glasses, what is this?"), (6.5, "how big is it?"), (19.0, "and now?")]
    _, log, _, _ = run_session(22.0, [(0.5, 1.5), (6.0, 7.0), (18.5, 19.5)], script, follow_up=5.0)
    assert [t["question"] for t in log.turns()] == ["what is this?", "how big is it?"]


def test_stop_cuts_the_answer_being_spoken():
    long_answer = FakeVLM("This is a long answer that goes on. " * 6)
    script = [(1.0, "Hey glasses, describe everything."), (3.2, "Stop.")]
    session, log, speaker, _ = run_session(9.0, [(0.5, 1.5), (3.0, 3.3)], script, vlm=long_answer, barge_in=False)
    (stop,) = [r for r in log.records if r["type"] == "stop"]
    assert speaker.clears == [pytest.approx(stop["t"], abs=1e-3)]
    assert max(c.end for c in speaker.clips()) <= speaker.clears[0] + 1e-6


def test_barge_in_cuts_playback_but_a_backchannel_does_not():
    long_answer = FakeVLM("This is a long answer that goes on. " * 6)
    script = [(1.0, "Hey glasses, describe everything.")]
    _, log, speaker, _ = run_session(9.0, [(0.5, 1.5), (3.0, 3.2)], script, vlm=long_answer)
    assert speaker.clears == [] and not [r for r in log.records if r["type"] == "barge_in"]  # 0.2 s "mm-hmm"
    (yielded,), (resumed,) = [r for r in log.records if r["type"] == "yield"], [r for r in log.records if r["type"] == "resume"]
    assert 3.0 < yielded["t"] < 3.1 and abs(resumed["t"] - 3.5) < 0.05  # paused at once, on again 0.3 s after it
    clips = [(c.start, c.end) for c in speaker.clips()]
    assert not any(a < resumed["t"] - 0.01 and b > yielded["t"] + 0.01 for a, b in clips)  # silent while paused
    (turn,) = log.turns()
    heard = sum(b - a for a, b in clips)
    assert abs(heard - sum(p["end"] - p["start"] for p in turn["spoken"])) < 0.01  # none of the answer was lost
    _, log, speaker, _ = run_session(9.0, [(0.5, 1.5), (3.0, 4.0)], script, vlm=long_answer)
    (yielded,), (barge,) = [r for r in log.records if r["type"] == "yield"], [r for r in log.records if r["type"] == "barge_in"]
    assert abs(barge["t"] - 3.4) < 0.1  # 0.4 s of speech counts as an interruption
    assert speaker.clears == [pytest.approx(yielded["t"], abs=1e-3)]  # and what was paused stays silent


def test_typed_question_at_a_media_time():
    _, log, _, vlm = run_session(5.0, [], [], asks=[(2.0, "what is this?")])
    (turn,) = log.turns()
    assert turn["heard_at"] == 2.0 and abs(turn["frame_time"] - 2.0) <= 0.35
    assert turn["latency"]["asr"] == 0.0 and turn["latency"]["vad"] == 0.0


def test_no_frames_means_no_image_and_the_model_is_told():
    _, log, _, vlm = run_session(4.0, [], [], draw=None, asks=[(1.0, "what is this?")])
    (turn,) = log.turns()
    assert turn["frame_time"] is None
    assert vlm.requests[0].image is None and NO_IMAGE_NOTE.strip() in vlm.requests[0].system


class BrokenVLM:
    def stream(self, request, cancel):
        raise RuntimeError("model exploded")
        yield


def test_a_failing_model_is_logged_and_the_session_goes_on():
    _, log, _, _ = run_session(5.0, [], [], vlm=BrokenVLM(), asks=[(1.0, "a?"), (3.0, "b?")])
    errors = [r for r in log.records if r["type"] == "error"]
    assert len(errors) == 2 and "model exploded" in errors[0]["message"]
    assert log.records[-1]["type"] == "end"


def test_history_carries_recent_turns_and_no_thread_is_left_behind():
    before = set(threading.enumerate())
    _, log, _, vlm = run_session(6.0, [], [], asks=[(1.0, "what is this?"), (3.0, "and that?")])
    assert vlm.requests[1].history == (("what is this?", "It is a red square. It sits on a grey wall."),)
    left = [th.name for th in threading.enumerate() if th not in before and th.is_alive()]
    assert left == []  # every thread the session started has ended


def test_display_timeline_lights_up_for_a_question_and_shows_the_answer():
    session, log, speaker, _ = run_session(6.0, [(1.0, 2.5)], [(1.5, "Hey glasses, what colour is the square?")])
    timeline = session.timeline()
    times = [t for t, _ in timeline]
    assert times == sorted(times)
    lit = [t for t, s in timeline if s.light]
    assert lit and min(lit) <= 1.05
    speaking = [s for _, s in timeline if s.status == "speaking"]
    assert speaking and speaking[-1].answer.startswith("It is a red square.")
    assert timeline[-1][1].status == "idle" and not timeline[-1][1].light and timeline[-1][1].latency > 0


def test_push_to_talk_asks_without_the_wake_phrase():
    from core.messages import PushToTalk

    source = ScriptedSource(tone_track(6.0, [(1.0, 2.0)]), grey)
    log, speaker = SessionLog(None), MixSpeaker()
    session = Session(SessionConfig(), source=source, vad=EnergyVAD(), asr=ScriptedASR([(1.5, "what is this?")]),
                      vlm=FakeVLM("A square."), tts=FakeTTS(), speaker=speaker, clock=MediaClock(), log_=log)
    session.submit(PushToTalk(0.9, True))
    session.submit(PushToTalk(2.3, False))
    session.run()
    (turn,) = log.turns()
    assert turn["question"] == "what is this?" and turn["heard_at"] == 2.3 and turn["speech_start"] == 0.9


def test_mode_switch_is_logged_and_shown():
    from core.messages import ModeSwitch

    source = ScriptedSource(tone_track(2.0, []), grey)
    log = SessionLog(None)
    session = Session(SessionConfig(), source=source, vad=EnergyVAD(), asr=ScriptedASR([]), vlm=FakeVLM(),
                      tts=FakeTTS(), speaker=MixSpeaker(), clock=MediaClock(), log_=log)
    session.submit(ModeSwitch(0.5, "no-such-mode"))
    session.run()
    assert [r for r in log.records if r["type"] == "error"][0]["message"] == "unknown mode 'no-such-mode'"


def test_a_stale_frame_is_not_used():
    frames_until = 1.0
    source = ScriptedSource(tone_track(6.0, []), grey)
    source.fps = 10.0
    # a camera that dies at 1 s: frames only before then
    original = source.events
    source.events = lambda: (e for e in original() if not (hasattr(e, "image") and e.t > frames_until))
    log, vlm = SessionLog(None), FakeVLM()
    session = Session(SessionConfig(asks=((5.0, "what is this?"),)), source=source, vad=EnergyVAD(),
                      asr=ScriptedASR([]), vlm=vlm, tts=FakeTTS(), speaker=MixSpeaker(), clock=MediaClock(), log_=log)
    session.run()
    (turn,) = log.turns()
    assert turn["frame_time"] is None and vlm.requests[0].image is None


def test_realtime_pace_plays_the_media_at_1x_and_still_answers():
    import time

    from core.clock import WallClock

    source = ScriptedSource(tone_track(1.5, []), grey)
    log = SessionLog(None)
    session = Session(SessionConfig(asks=((0.5, "what is this?"),)), source=source, vad=EnergyVAD(),
                      asr=ScriptedASR([]), vlm=FakeVLM(), tts=FakeTTS(), speaker=MixSpeaker(), clock=WallClock(),
                      log_=log)
    t0 = time.perf_counter()
    session.run()
    assert 1.4 <= time.perf_counter() - t0 < 3.0
    (turn,) = log.turns()
    assert turn["heard_at"] == 0.5 and 0 < turn["latency"]["voice_to_voice"] < 1.0


def test_a_mode_switch_said_alone_changes_the_standing_mode_and_the_question_follows():
    script = [(1.0, "Hey glasses, think harder."), (3.0, "how many squares are there?")]
    session, log, _, vlm = run_session(12.0, [(0.5, 1.5), (2.5, 3.5)], script)
    assert [r["mode"] for r in log.records if r["type"] == "mode"] == ["contemplating"]
    (turn,) = log.turns()
    assert turn["question"] == "how many squares are there?" and turn["mode"] == "contemplating"
    assert session.mode == "contemplating"


def test_speech_already_under_way_before_a_typed_question_is_no_follow_up():
    # someone talks from 1.0 to 3.9 s; a question is typed at 3.0 s; the talk ends after it
    _, log, _, _ = run_session(12.0, [(1.0, 3.9)], [(2.0, "so anyway I told him")], asks=[(3.0, "what is this?")])
    assert [t["question"] for t in log.turns()] == ["what is this?"]
    (heard,) = [r for r in log.records if r["type"] == "heard"]
    assert heard["action"] == "ignore"

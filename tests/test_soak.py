"""The chaos soak (benchmarks/soak.py), short: one live session of about a minute on fake
devices with the real pyttsx3 worker, through barge-ins and stops aimed at the moment
pyttsx3 renders a piece and at moments it only plays, a backchannel, a voice mode switch,
a camera outage and a microphone overflow. The benchmark runs the same with 200+ events.

One soak is shared by the tests below; each asserts one of its checks, so a failure names
what broke (the check's detail says how).
"""
import pytest

from benchmarks.soak import run_soak

EPISODES = ["barge_render", "ptt_barge_render", "stop_render", "barge_play", "backchannel", "camera_outage",
            "modes_voice", "follow_up", "mic_overflow", "plain"]

pytestmark = pytest.mark.slow  # about a minute of real time, shared by every test here


@pytest.fixture(scope="module")
def soak(espeak, tmp_path_factory):
    return run_soak(seed=1, out=tmp_path_factory.mktemp("soak"), episodes=EPISODES)


def passed(report: dict, name: str) -> None:
    check = report["checks"][name]
    assert check["ok"], f"{name}: {check['detail']}"


def test_the_soak_ran_its_script_and_the_session_ended_cleanly(soak):
    assert soak["failures"] == []
    assert [e["name"] for e in soak["ledger"]["episodes"]] == EPISODES
    assert soak["questions"]["asked"] >= 10 and soak["events_total"] >= 18
    passed(soak, "clean_end")


def test_cancellations_landed_while_pyttsx3_rendered_and_while_it_played(soak):
    c = soak["cancellations"]
    assert c["landed_while_rendering"] >= 1, c  # three were aimed at a rendering (pyttsx3 takes ~12 ms a piece)
    assert c["landed_while_playing"] >= 1, c
    assert soak["tts"]["cancelled_while_rendering"] >= 1  # the cancel reached the very piece being rendered


def test_every_question_gets_its_first_audio_in_time_after_any_cancellation(soak):
    passed(soak, "every_question_answered")
    passed(soak, "first_audio_in_time")
    q = soak["questions"]
    assert q["after_cancellation"] >= 5 and q["after_cancellation_answered"] >= 4


def test_no_stage_dies_and_the_tts_thread_lives_until_close(soak):
    passed(soak, "no_stage_died")
    passed(soak, "tts_thread_alive_until_close")


def test_no_thread_is_left_behind(soak):
    passed(soak, "no_threads_left")


def test_backchannels_do_not_interrupt_and_stop_silences(soak):
    passed(soak, "backchannels_ignored")
    passed(soak, "stop_silences")
    assert soak["ledger"]["backchannels"] and soak["ledger"]["stops"]


def test_a_barge_in_always_has_something_to_stop(soak):
    passed(soak, "no_phantom_barge_in")


def test_the_camera_comes_back_and_microphone_overflow_is_counted(soak):
    passed(soak, "camera_recovers")
    passed(soak, "mic_overflow_counted")


def test_utterances_are_cut_where_they_were_spoken_even_after_dropped_audio(soak):
    passed(soak, "utterances_where_spoken")


def test_live_collections_stay_within_caps_read_from_the_code(soak):
    passed(soak, "collections_bounded")

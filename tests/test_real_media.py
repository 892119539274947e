"""Replays of the real clips in ../shared/media, through the real loaders with tiny random weights.

Random weights cannot understand speech, so these check what does not depend on it: every
clip streams to the end and renders, nobody talking makes the assistant speak, silence is
silence, and a typed question always gets an answer with a frame.
"""
import json

import av
import pytest

from pipelines.app import ReplayOptions, replay
from pipelines.tiny import ensure_tiny_models


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    vlm, asr = ensure_tiny_models(tmp_path_factory.mktemp("models"))
    return str(vlm), str(asr)


def run(clip, out, tiny, **kw):
    vlm, asr = tiny
    return replay(ReplayOptions(clip, out=out, vlm=vlm, asr=asr, progress=False, max_new_tokens=12, **kw))


def video_clips():
    from tests.conftest import SHARED_MEDIA

    return sorted((SHARED_MEDIA / "video").glob("*.mp4")) if SHARED_MEDIA.is_dir() else []


@pytest.mark.parametrize("name", [p.name for p in video_clips()] or ["(none)"])
def test_each_shared_clip_replays_to_the_end(shared_media, tiny, tmp_path, name):
    clip = shared_media / "video" / name
    result = run(clip, tmp_path / "out", tiny)
    records = [json.loads(x) for x in (tmp_path / "out" / "session.jsonl").read_text().splitlines()]
    assert records[0]["type"] == "session" and records[0]["models"]["random_weights"] is True
    end = records[-1]
    assert end["type"] == "end" and end["t"] >= records[0]["duration"] - 0.1
    with av.open(str(result.video)) as c:
        assert c.streams.video and c.streams.audio
        assert abs(c.duration / 1e6 - records[0]["duration"]) < 0.15


def test_people_talking_without_the_wake_phrase_give_no_turn(shared_media, tiny, tmp_path):
    result = run(shared_media / "video" / "mdn_friday_dialogue.mp4", tmp_path / "out", tiny, render=False)
    heard = [r for r in result.records if r["type"] == "heard"]
    assert heard, "the VAD should hear the dialogue"
    assert result.turns == []


def test_the_silent_flower_clip_gives_no_turn(shared_media, tiny, tmp_path):
    result = run(shared_media / "video" / "mdn_flower_silent_audio.mp4", tmp_path / "out", tiny, render=False)
    assert result.turns == []
    assert not [r for r in result.records if r["type"] == "heard" and r["action"] != "drop"]


def test_ask_on_the_handheld_water_clip_gives_a_turn(shared_media, tiny, tmp_path):
    result = run(shared_media / "video" / "mdn_stream_of_water_handheld.mp4", tmp_path / "out", tiny,
                 asks=((1.5, "what is this?"),))
    (turn,) = result.turns
    assert turn["question"] == "what is this?" and turn["heard_at"] == 1.5
    assert abs(turn["frame_time"] - 1.5) < 0.4 and turn["models"]["random_weights"] is True
    assert turn["latency"]["vlm_total"] > 0


def test_audio_only_speech_file_runs_and_says_there_is_nothing_to_see(shared_media, tiny, tmp_path):
    result = run(shared_media / "audio" / "speech" / "jfk.flac", tmp_path / "out", tiny, asks=((5.0, "what is this?"),))
    assert any("no frames" in w or "audio only" in w for w in result.warnings)
    turn = result.turns[0]  # JFK speaks on inside the follow-up window: later turns are follow-ups
    assert turn["question"] == "what is this?" and turn["frame_time"] is None
    assert all(t["frame_time"] is None for t in result.turns)
    with av.open(str(result.video)) as c:
        assert c.streams.video and abs(c.duration / 1e6 - 11.0) < 0.2

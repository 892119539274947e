"""End to end on a clip the test makes: espeak-ng asks a question over drawn frames.

Real recorded source (PyAV), real VAD (Silero), real TTS (pyttsx3), real renderer;
the ASR is scripted (it returns the known text for the detected speech) and so is the VLM.
"""
import json

import av
import pytest

from glasses.sample import SAMPLE_QUESTION, make_clip, speak_to_wav
from pipelines.app import ReplayOptions, UsageError, replay
from core.audio import read_wav
from tests.fakes import ScriptedASR
from tests.fakes import FakeVLM

ANSWER = "The square is red. It is in the middle of a grey background."


@pytest.fixture(scope="module")
def clip(tmp_path_factory, espeak):
    folder = tmp_path_factory.mktemp("clip")
    samples, rate = read_wav(speak_to_wav(SAMPLE_QUESTION, folder / "q.wav"))
    path = make_clip(folder / "question.mp4", duration=7.0, speech=[(1.5, SAMPLE_QUESTION)])
    return path, 1.5 + len(samples) / rate


def durations(path):
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        vt = max(float(f.time) for f in c.decode(v))
        c.seek(0)
        at = max(float(f.time) + f.samples / f.sample_rate for f in c.decode(a))
    return vt, at


def test_replay_hears_the_question_answers_and_writes_everything(clip, tmp_path):
    path, speech_end = clip
    out = tmp_path / "out"
    asr = ScriptedASR([(2.5, "Hey glasses, what colour is the square?")])
    vlm = FakeVLM(ANSWER)
    result = replay(ReplayOptions(path, out=out, progress=False), asr=asr, vlm=vlm)

    lines = [json.loads(line) for line in (out / "session.jsonl").read_text().splitlines()]
    assert lines[0]["type"] == "session" and lines[-1]["type"] == "end"
    (turn,) = [r for r in lines if r["type"] == "turn"]
    assert turn["question"] == "what colour is the square?" and turn["answer"] == ANSWER
    assert turn["mode"] == "instant"
    # the VAD found the end of the spoken question (espeak pads its file with a little silence)
    assert speech_end - 0.6 <= turn["heard_at"] <= speech_end + 0.1
    assert 1.5 <= turn["frame_time"] <= turn["heard_at"] + 0.1 and turn["frame_sharpness"] > 0
    lat = turn["latency"]
    assert set(lat) == {"vad", "asr", "vlm_first_token", "vlm_total", "tts_first_audio", "voice_to_voice"}
    assert 0.45 <= lat["vad"] <= 0.6  # the default 0.5 s endpointing silence
    assert lat["voice_to_voice"] >= lat["vad"] + lat["tts_first_audio"] > 0
    assert turn["models"]["fake"] is True
    assert [s["text"] for s in turn["spoken"]][0] == "The square is red."
    assert abs(turn["spoken"][0]["start"] - (turn["heard_at"] + lat["voice_to_voice"])) < 1e-3

    # the annotated video: same duration as the source, video and audio, answer audible after heard_at
    src_v, src_a = durations(path)
    out_v, out_a = durations(out / "annotated.mp4")
    assert abs(out_v - src_v) < 0.1 and abs(out_a - src_a) < 0.1
    assert result.video == out / "annotated.mp4" and (out / "debug.log").exists()


def test_replay_refuses_to_overwrite_a_previous_session(clip, tmp_path):
    path, _ = clip
    out = tmp_path / "out"
    replay(ReplayOptions(path, out=out, progress=False, render=False), asr=ScriptedASR([]), vlm=FakeVLM())
    before = (out / "session.jsonl").read_bytes()
    with pytest.raises(UsageError, match="already holds a session"):
        replay(ReplayOptions(path, out=out, progress=False), asr=ScriptedASR([]), vlm=FakeVLM())
    assert (out / "session.jsonl").read_bytes() == before


def test_ask_past_the_end_is_bad_input(clip, tmp_path):
    path, _ = clip
    with pytest.raises(UsageError, match="past the end"):
        replay(ReplayOptions(path, out=tmp_path / "o", asks=((99.0, "what?"),)), asr=ScriptedASR([]), vlm=FakeVLM())

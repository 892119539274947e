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
    result = replay(ReplayOptions(path, out=out, progress=False, turn="silence"), asr=asr, vlm=vlm)

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
    assert 0.45 <= lat["vad"] <= 0.6  # --turn silence: the 0.5 s endpointing silence
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


def test_the_default_turn_detector_ends_the_question_between_its_short_and_long_silences(clip, tmp_path):
    from pipelines.turn_model import SmartTurnConfig, load_smart_turn

    if load_smart_turn() is None:
        pytest.skip("Smart Turn's model (pipecat-ai) is not installed: the default falls back to silence")
    path, _ = clip
    result = replay(ReplayOptions(path, out=tmp_path / "out", progress=False, render=False),
                    asr=ScriptedASR([(2.5, "Hey glasses, what colour is the square?")]), vlm=FakeVLM(ANSWER))
    (turn,) = result.turns
    c = SmartTurnConfig()
    assert c.short <= turn["latency"]["vad"] <= c.long + 0.1  # the model's verdict chose one of the two waits


def one_frame_clip(path, seconds: float):
    """One picture and `seconds` of quiet sound: a still shown over a recording."""
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=1)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        sound = out.add_stream("aac", rate=16000, layout="mono")
        image = np.full((240, 320, 3), 90, np.uint8)
        image[80:160, 120:200] = (0, 0, 255)
        out.mux(video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        out.mux(video.encode(None))
        for i in range(int(seconds * 16000) // 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    return path


def test_a_still_picture_is_looked_at_however_late_the_question(tmp_path):
    import cv2
    import numpy as np

    still = tmp_path / "still.png"
    cv2.imwrite(str(still), np.full((240, 320, 3), 128, np.uint8))
    clip = one_frame_clip(tmp_path / "one.mp4", 4.0)
    for path, t in ((still, 0.0), (clip, 3.5)):  # 3.5 s after the only frame: no camera "stopped" here
        vlm = FakeVLM(ANSWER)
        result = replay(ReplayOptions(path, out=tmp_path / path.stem, progress=False, render=False,
                                      asks=((t, "what is this?"),)), asr=ScriptedASR([]), vlm=vlm)
        (turn,) = result.turns
        assert turn["frame_time"] == 0.0 and vlm.requests[0].image is not None, path.name

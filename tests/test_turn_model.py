"""Smart Turn v3.2 on real speech, its preprocessing against pipecat's own, and the fallback
when the model cannot be had (one warning, then the silence alone)."""
import importlib.util
import logging
import os

import numpy as np
import pytest

from core.clock import MediaClock
from core.messages import SAMPLE_RATE, AudioChunk, Utterance
from glasses.fakes import tone_track
from pipelines import turn_model
from pipelines.hearing import Hearing, HearingConfig
from pipelines.turn_model import SmartTurn, SmartTurnConfig, load_smart_turn, smart_turn_path
from pipelines.vad import EndpointConfig
from tests.fakes import EnergyVAD


@pytest.fixture(scope="module")
def smart_turn():
    try:
        path = smart_turn_path()
    except FileNotFoundError as err:
        pytest.skip(f"Smart Turn not installed: {err}")
    if not os.path.isfile(path):
        pytest.skip(f"Smart Turn model file absent: {path}")
    return SmartTurn(path)


def speech(media, name, channel=None):
    from benchmarks.endpoint import load_audio

    return load_audio(media / "audio" / "speech" / name, channel)


def until(audio, seconds):
    return audio[: int(seconds * SAMPLE_RATE)]


def test_a_complete_sentence_scores_high_and_the_same_audio_cut_mid_phrase_lower(smart_turn, shared_media):
    jfk = speech(shared_media, "jfk.flac")
    # "... ask what you can do for your country." ends at 10.5 s; "And so my fellow Americans, ask not"
    # ends at 3.74 s, before one of his long pauses. Each with 0.1 s of the silence after it.
    whole, cut = smart_turn(until(jfk, 10.6)), smart_turn(until(jfk, 3.84))
    assert whole > 0.9 and cut < 0.1
    right = speech(shared_media, "fw_stereo_diarization.wav", 1)
    # "The horizon seems extremely distant." ends at 2.59 s; "The horizon seems" at 1.42 s
    whole, cut = smart_turn(until(right, 2.69)), smart_turn(until(right, 1.42))
    assert whole > 0.9 and cut < whole - 0.3


def test_features_match_pipecats_own_preprocessing(smart_turn, shared_media):
    # pipecat's own numpy feature code, read from the installed wheel as the reference (never imported
    # as a package: its __init__ needs the dependencies that are not installed)
    ref_file = os.path.join(os.path.dirname(os.path.dirname(smart_turn.path)), "_whisper_features.py")
    if not os.path.isfile(ref_file):
        pytest.skip(f"pipecat's reference preprocessing is not at {ref_file}")
    spec = importlib.util.spec_from_file_location("pipecat_whisper_features", ref_file)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    jfk = speech(shared_media, "jfk.flac")
    for audio in (until(jfk, 10.6), until(jfk, 2.34), jfk[16000:int(4.2 * SAMPLE_RATE)]):
        n = 8 * SAMPLE_RATE  # pipecat keeps the last 8 s and pads short audio with zeros in front
        padded = np.pad(audio[-n:], (max(0, n - len(audio)), 0))
        theirs = ref.compute_whisper_log_mel_features(padded, do_normalize=True)
        ours = smart_turn.features(audio)
        assert ours.shape == theirs.shape == (80, 800) and np.abs(ours - theirs).max() < 1e-4
        p_theirs = float(smart_turn._session.run(None, {"input_features": theirs[None]})[0].reshape(-1)[0])
        assert abs(smart_turn(audio) - p_theirs) < 0.01


def test_the_verdict_picks_the_silence():
    c = SmartTurnConfig(threshold=0.8, short=0.2, long=1.5)
    assert c.silence(0.8) == 0.2 and c.silence(0.99) == 0.2 and c.silence(0.79) == 1.5


def one_warning(caplog):
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
    return warnings[0].getMessage()


def test_a_missing_or_broken_file_gives_one_warning_and_no_model(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        assert load_smart_turn(str(tmp_path / "absent.onnx")) is None
    assert "Smart Turn unavailable" in one_warning(caplog) and "silence alone" in one_warning(caplog)
    caplog.clear()
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model" * 100)
    with caplog.at_level(logging.WARNING):
        assert load_smart_turn(str(broken)) is None
    one_warning(caplog)


def test_without_pipecat_installed_the_model_is_missing(monkeypatch, caplog):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pipecat" else real(name, *a))
    with pytest.raises(FileNotFoundError, match="pipecat-ai is not installed"):
        smart_turn_path()
    with caplog.at_level(logging.WARNING):
        assert load_smart_turn() is None
    assert "pipecat-ai is not installed" in one_warning(caplog)


def test_the_fallback_ends_turns_on_the_silence_alone(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        model = load_smart_turn(str(tmp_path / "absent.onnx"))
    hearing = Hearing(HearingConfig(turn="smart"), EnergyVAD(), MediaClock(), model)
    audio = tone_track(4.0, [(1.0, 2.0)])
    out = [m for i in range(0, len(audio), 512) for m in hearing.feed(AudioChunk(i / SAMPLE_RATE, audio[i:i + 512]))]
    (question,) = [m for m in out if isinstance(m, Utterance) and not m.early]
    assert abs(question.detected_at - question.end - EndpointConfig().silence) < 0.04
    one_warning(caplog)


def test_the_session_hands_its_turn_model_to_hearing():
    from glasses.fakes import ScriptedSource
    from glasses.speaker import MixSpeaker
    from pipelines.log import SessionLog
    from pipelines.session import Session, SessionConfig
    from tests.fakes import FakeTTS, FakeVLM, ScriptedASR

    def waits(turn, model):
        log = SessionLog(None)
        grey = lambda t: np.full((120, 160, 3), 128, np.uint8)  # noqa: E731
        session = Session(SessionConfig(turn=turn), source=ScriptedSource(tone_track(6.0, [(1.0, 2.5)]), grey),
                          vad=EnergyVAD(), asr=ScriptedASR([(1.5, "hey glasses, what is this?")]), vlm=FakeVLM("A cup."),
                          tts=FakeTTS(), speaker=MixSpeaker(), clock=MediaClock(), log_=log, turn_model=model)
        session.run()
        (turn,) = log.turns()
        return turn["latency"]["vad"]

    assert abs(waits("smart", lambda audio: 0.99) - SmartTurnConfig().short) < 0.05
    assert abs(waits("smart", lambda audio: 0.01) - SmartTurnConfig().long) < 0.05
    assert abs(waits("silence", lambda audio: 0.99) - EndpointConfig().silence) < 0.05


def test_the_shared_model_is_loaded_once_per_process(monkeypatch):
    loads = []
    monkeypatch.setattr(turn_model, "load_smart_turn", lambda path=None: loads.append(path) or "model")
    turn_model.shared_smart_turn.cache_clear()
    try:
        assert turn_model.shared_smart_turn() == turn_model.shared_smart_turn() == "model" and len(loads) == 1
    finally:
        turn_model.shared_smart_turn.cache_clear()

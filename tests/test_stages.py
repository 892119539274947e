"""The real streaming VAD and the real TTS worker, on speech the test makes with espeak-ng."""
import os
import time

import numpy as np
import pytest

from core.messages import SpeechAudio
from pipelines.tts import Pyttsx3TTS
from pipelines.vad import WINDOW, Endpointer, SileroVAD


def test_silero_streams_in_odd_chunk_sizes_and_finds_the_speech(speech16k):
    speech = speech16k("Hey glasses, what colour is the square?")
    pad = np.zeros(16000, np.float32)
    audio = np.concatenate([pad, speech, pad, pad]).astype(np.float32)
    vad = SileroVAD()
    probs = []
    for i in range(0, len(audio), 700):  # not a multiple of the 512-sample window
        probs += vad(audio[i : i + 700])
    assert len(probs) == len(audio) // WINDOW
    ep = Endpointer()
    events = [e for i, p in enumerate(probs) for e in ep.update(p, i * WINDOW / 16000)]
    ends = [e for e in events if e.kind == "end"]
    assert len(ends) == 1
    speech_end = (16000 + len(speech)) / 16000
    assert abs(ends[0].start - 1.0) < 0.3 and abs(ends[0].end - speech_end) < 0.4


def test_silero_is_quiet_on_silence_and_noise():
    vad = SileroVAD()
    rng = np.random.default_rng(0)
    probs = vad(np.zeros(16000 * 2, np.float32)) + vad((rng.standard_normal(32000) * 0.003).astype(np.float32))
    assert max(probs) < 0.5


def test_tts_worker_renders_each_piece_to_audio():
    tts = Pyttsx3TTS()
    tts.setup()
    try:
        futures = [tts.submit("It is a red square."), tts.submit("It sits on a grey wall.")]
        audios = [f.result(timeout=30) for f in futures]
    finally:
        tts.close()
    for audio, text in zip(audios, ["It is a red square.", "It sits on a grey wall."]):
        assert isinstance(audio, SpeechAudio) and audio.text == text and audio.rate > 8000
        seconds = len(audio.samples) / audio.rate
        assert 0.5 < seconds < 5.0 and np.abs(audio.samples).max() > 0.05


def test_tts_renders_once_more_when_espeak_hands_back_an_empty_wav(monkeypatch):
    import pipelines.tts as tts_module

    real, calls = tts_module.read_wav, []

    def flaky(path):
        samples, rate = real(path)
        calls.append(len(samples))
        return (samples[:0], rate) if len(calls) == 1 else (samples, rate)  # the first comes back empty

    monkeypatch.setattr(tts_module, "read_wav", flaky)
    tts = Pyttsx3TTS()
    tts.setup()
    try:
        audio = tts.submit("It is a red square.").result(timeout=30)
    finally:
        tts.close()
    assert len(calls) == 2 and len(audio.samples) / audio.rate > 0.5


def test_tts_skips_a_cancelled_piece_and_renders_the_next():
    tts = Pyttsx3TTS()
    tts.setup()
    try:
        first = tts.submit("one two three four five six seven eight nine ten")
        second = tts.submit("this one is cancelled")
        third = tts.submit("this one is spoken")
        assert second.cancel()
        assert first.result(timeout=30).samples.size > 0
        assert third.result(timeout=30).text == "this one is spoken"
        assert tts.skipped == 1 and list(tts.rendered) == ["one two three four five six seven eight nine ten",
                                                           "this one is spoken"]
    finally:
        tts.close()


def test_tts_survives_a_piece_cancelled_while_it_renders():
    # The defect that silenced live sessions: a piece cancelled during rendering killed the worker.
    tts = Pyttsx3TTS()
    tts.setup()
    try:
        for _ in range(5):
            long = tts.submit("This is a long sentence that takes espeak a while to render, " * 4)
            time.sleep(0.05)
            long.cancel()  # too late once rendering has begun: the worker keeps the piece's protocol
            assert tts.submit("Hello there.").result(timeout=30).samples.size > 0
        assert tts._thread.is_alive()
    finally:
        tts.close()


def test_tts_reports_a_failed_piece_and_goes_on(monkeypatch):
    import pipelines.tts as tts_module

    real = tts_module.read_wav
    calls = []

    def flaky(path):  # the first WAV cannot be read, as when espeak writes a broken file
        calls.append(path)
        if len(calls) == 1:
            raise RuntimeError("espeak-ng wrote no audio for this text")
        return real(path)

    monkeypatch.setattr(tts_module, "read_wav", flaky)
    tts = Pyttsx3TTS()
    tts.setup()
    try:
        bad, good = tts.submit("a broken piece"), tts.submit("a good piece")
        with pytest.raises(RuntimeError, match="wrote no audio"):
            bad.result(timeout=30)
        assert good.result(timeout=30).text == "a good piece" and tts.failed == 1
    finally:
        tts.close()


def test_tts_removes_the_folders_of_killed_processes(tmp_path):
    from pipelines.tts import remove_stale_folders

    dead = tmp_path / "glasses-tts-999999999-abc"
    mine = tmp_path / f"glasses-tts-{os.getpid()}-abc"
    for folder in (dead, mine):
        folder.mkdir()
        (folder / "s0.wav").write_bytes(b"x")
    assert remove_stale_folders(tmp_path) == 1
    assert not dead.exists() and mine.exists()


def test_tts_never_blocks_an_answer_when_the_engine_hangs(monkeypatch):
    import pipelines.tts as tts_module

    tts = Pyttsx3TTS()
    tts.setup()
    try:
        tts._rendering_since = time.perf_counter() - tts_module.HUNG_S - 1  # as if espeak had hung on a piece
        t0 = time.perf_counter()
        with pytest.raises(RuntimeError, match="has not finished a piece"):
            tts.submit("hello").result(timeout=1)
        assert time.perf_counter() - t0 < 0.5
    finally:
        tts._rendering_since = None
        tts.close()

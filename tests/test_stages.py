"""The real streaming VAD and the real TTS worker, on speech the test makes with espeak-ng."""
import numpy as np

from pipelines.messages import SpeechAudio
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


def test_tts_skips_a_cancelled_piece():
    tts = Pyttsx3TTS()
    tts.setup()
    try:
        first = tts.submit("one two three four five six seven eight nine ten")
        second = tts.submit("this one is cancelled")
        assert second.cancel()
        assert first.result(timeout=30).samples.size > 0
    finally:
        tts.close()

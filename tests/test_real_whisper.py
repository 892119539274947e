"""Real Whisper base through the project's own ASR: what random weights cannot check.

The real-weights tier runs when GLASSES_TEST_WHISPER names a real Whisper folder (.ci/run
assembles Whisper base with ../shared/models/whisper-base.sh and sets it) and ../shared/media
is beside the project; otherwise it skips and says why. The model loads once per session
(conftest's `real_whisper`). Speech is cut as the app cuts it (the session's Hearing: Silero VAD
and the endpointer) and transcribed by the app's ASRStage and FasterWhisper with its defaults,
the short encoder window included (benchmarks/asr_window.py chose it).

What must pass, and why:
- WER on the real speech that has reference texts: one or two words per file, a few times what
  Whisper base scores at the app's window (BENCHMARKS.md, "Whisper on a shorter window"), so a
  regression of a few words shows.
- The wake phrase, spoken by espeak-ng: every voice and speed must be heard asking "what is this",
  and the wake phrase itself must match for en-gb at 140/175/210 wpm and en-us at 140. espeak's
  en-us voice says "glasses" so that Whisper writes "Glacin" or "Glassin" at 175 and 210 wpm at
  every window, the full 30 s one too: that is the voice, not the ASR.
- With real noise at 10 dB SNR (a loud street; the glasses' microphones sit a few centimetres from
  the mouth) the wake phrase and question must be heard. At 0 dB (noise as loud as the voice) the
  question must still be heard; the greeting may go ("K glasses"), which costs a repeat, not a
  wrong answer. Real speech in the same noise keeps its words within set WERs.
- Nobody speaking to the glasses gives no turn: the real film dialogue and the music clip replayed
  through the app, and the guard lets no text of noise or digital silence through.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from benchmarks.asr_window import (SPEECH, Source, load, pieces, references, spell_number, utterances, wer,
                                   word_errors, words)
from core.messages import SAMPLE_RATE
from pipelines.asr import (ASRConfig, ASRStage, FasterWhisper, looped, max_length, token_cap, whisper_language,
                           window_frames)
from pipelines.wake import match_wake, normalise

QUESTION = "Hey glasses, what is this?"
VOICES = [("en-us", 140), ("en-us", 175), ("en-us", 210), ("en-gb", 140), ("en-gb", 175), ("en-gb", 210)]
WAKES = {("en-us", 140), ("en-gb", 140), ("en-gb", 175), ("en-gb", 210)}  # see the module docstring
NOISES = {"sb_noise2": ("audio/noise/sb_noise2.wav", 0.0), "rain": ("audio/noise/moviepy_rain.mp3", 10.0)}
# Whisper base at the app's window scores 0 on JFK and both stereo channels and 2.4% on the licence
# (85 words); the 30 s window scores 15.3% there: it stops before "shall be included in all copies".
MAX_WER = {"jfk": 0.10, "stereo left": 0.12, "stereo right": 0.20, "licence (en)": 0.12}
MAX_WER_IN_NOISE = {10: 0.15, 0: 0.25}  # JFK and both stereo channels together, per noise


# --- what runs without real weights --------------------------------------------------------------------
def test_words_for_wer_drop_case_punctuation_and_spell_numbers():
    assert words("Hey, Glasses! It's 1961.") == ["hey", "glasses", "its", "one", "thousand", "nine", "hundred",
                                                 "sixty", "one"]
    assert [spell_number(n) for n in (0, 13, 40, 42, 100, 305, 2000)] == [
        "zero", "thirteen", "forty", "forty two", "one hundred", "three hundred five", "two thousand"]
    assert words("and/or sub-licence") == ["and", "or", "sub", "licence"]


def test_word_errors_count_substitutions_deletions_and_insertions():
    assert word_errors("ask not what your country", "ask not what your country") == (0, 5)
    assert word_errors("ask not what your country", "ask what our country can") == (3, 5)  # del, sub, ins
    assert word_errors("a b", "") == (2, 2) and word_errors("", "a") == (1, 0)
    assert wer("The horizon.", "the horizon") == 0.0 and wer("", "") == 0.0 and wer("", "words") == 1.0


def test_short_window_fits_the_utterance_and_never_passes_30_s():
    assert window_frames(250, "full") == 3000
    assert window_frames(250, "fit", 0) == 400 and window_frames(250, "fit", 200) == 600
    assert window_frames(250, "1500", 200) == 1500 and window_frames(1400, "1500", 200) == 1600
    assert window_frames(2950, "fit", 200) == 3000 and window_frames(0, "fit", 0) == 200
    for bad in ("half", "1501", "0", "4000"):
        with pytest.raises(ValueError, match="ASR window"):
            window_frames(100, bad)
    with pytest.raises(ValueError, match="ASR window"):
        FasterWhisper(ASRConfig(window="short"))  # bad input at start-up, not at the first question


def test_token_cap_grows_with_the_audio_and_ctranslate2_gets_the_length_that_gives_it():
    assert token_cap(2.0) == 40 and token_cap(17.4) == 224 and token_cap(60.0, 500) == 224
    assert token_cap(5.0, max_new_tokens=12) == 12
    # CTranslate2 writes at most min(max_length / 2, max_length - (prompt - 1)) tokens
    for tokens in (1, 3, 12, 40, 224):
        for prompt in (2, 4):
            length = max_length(tokens, prompt)
            assert min(length // 2, length - (prompt - 1)) == tokens


def test_a_decoding_loop_is_seen_by_its_cap_or_its_repetition():
    assert looped("Hey glasses, what is this? Hey glasses, what is", 40, 40)
    assert looped("Oh, " * 17, 34, 100)
    assert not looped("Hey glasses, what is this?", 9, 40) and not looped("", 0, 40)


def test_mix_sets_the_signal_to_noise_ratio():
    rng = np.random.default_rng(0)
    speech = np.concatenate([np.zeros(8000), np.sin(np.arange(16000) / 5.0), np.zeros(8000)]).astype(np.float32)
    noise = rng.normal(0, 1, 5000).astype(np.float32)
    for snr in (10, 0):
        mixed = mix(speech, noise, snr)
        added = mixed - speech
        assert len(mixed) == len(speech)
        assert abs(10 * np.log10(np.mean(speech[8000:24000] ** 2) / np.mean(added ** 2)) - snr) < 0.2


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    from pipelines.tiny import build_whisper

    return build_whisper(tmp_path_factory.mktemp("whisper"), "tiny-random")


@pytest.mark.parametrize("window, language, task", [("full", "en", "transcribe"), ("1500", "en", "transcribe"),
                                                    ("fit", None, "transcribe"), ("1500", None, "translate")])
def test_tiny_random_whisper_runs_at_every_window(tiny_whisper, window, language, task):
    config = ASRConfig(model=str(tiny_whisper), language=language, task=task, window=window, cpu_threads=2)
    whisper = FasterWhisper(config)
    whisper.setup()
    audio = np.random.default_rng(0).normal(0, 0.05, 3 * SAMPLE_RATE).astype(np.float32)
    text, no_speech = whisper.transcribe(audio)
    assert isinstance(text, str) and 0.0 <= no_speech <= 1.0
    assert whisper.fallbacks == 0  # random weights run to the cap every time: never redone at 30 s


def test_the_benchmark_skips_without_real_whisper(tmp_path, capsys):
    from benchmarks.asr_window import main

    assert main(["--model", str(tmp_path / "none"), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.startswith("skipped: no real Whisper at")
    assert not (tmp_path / "out").exists()


# --- helpers for real speech -------------------------------------------------------------------------
def app_asr(model, **changes) -> ASRStage:
    """The ASR stage as pipelines.app.common.load_models builds it (no --language, no --translate)."""
    config = ASRConfig(**{"model": "(shared)", "language": whisper_language(None, False), "cpu_threads": 2, **changes})
    return ASRStage(FasterWhisper(config, model), config)


def hear(stage: ASRStage, audio: np.ndarray) -> str:
    """What the app would pass on for this audio: its utterances' kept texts, joined."""
    return " ".join(t.text for t in map(stage.process, utterances(audio)) if not t.dropped)


def spoken(text: str, voice: str, speed: int) -> np.ndarray:
    """espeak-ng speech at 16 kHz with 0.5 s of silence before and 1 s after, as a wearer pauses."""
    from core.audio import read_wav, resample
    from glasses.sample import speak_to_wav

    with tempfile.TemporaryDirectory() as tmp:
        samples, rate = read_wav(speak_to_wav(text, Path(tmp) / "q.wav", voice, speed))
    return np.concatenate([np.zeros(SAMPLE_RATE // 2, np.float32), resample(samples, rate, SAMPLE_RATE),
                           np.zeros(SAMPLE_RATE, np.float32)])


def speech_power(audio: np.ndarray, frame: int = 320) -> float:
    """Mean power of the voiced part: 20 ms frames within 30 dB of the loudest (pauses left out)."""
    n = len(audio) // frame
    power = np.mean(np.square(audio[: n * frame].reshape(n, frame), dtype=np.float64), axis=1)
    return float(np.mean(power[power >= power.max() * 1e-3]))


def mix(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Speech plus noise (repeated or cut to its length) at `snr_db` over the voiced part."""
    noise = np.resize(noise.astype(np.float64), len(speech))
    gain = np.sqrt(speech_power(speech) / (np.mean(noise ** 2) * 10 ** (snr_db / 10)))
    return (speech + gain * noise).astype(np.float32)


@pytest.fixture(scope="module")
def media(shared_media, real_whisper):
    return shared_media


@pytest.fixture(scope="module")
def stage(real_whisper):
    return app_asr(real_whisper)


@pytest.fixture(scope="module")
def noises(media):
    return {name: load(media, Source(name, path, span=(start, start + 10.0))) for name, (path, start) in NOISES.items()}


def source(name: str) -> Source:
    return next(s for s in SPEECH if s.name == name)


# --- the real-weights tier ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MAX_WER))
def test_wer_on_real_speech_through_the_app_asr(media, stage, name):
    src = source(name)
    text = hear(stage, load(media, src))
    assert wer(references(media)[src.reference], text) <= MAX_WER[name], text


def test_the_short_window_decodes_as_faster_whisper_does(media, real_whisper):
    """At 3000 frames the project's own window path gives faster-whisper's text and no-speech
    probability exactly; so a shorter window changes nothing but the window."""
    full, own = app_asr(real_whisper, window="full"), app_asr(real_whisper, window="3000")
    utts = utterances(load(media, source("jfk"))) + utterances(load(media, source("stereo right")))
    for utt in utts:
        assert full.model.transcribe(utt.audio) == own.model.transcribe(utt.audio)


def test_language_detection_and_translation_on_the_short_window(media, real_whisper):
    german = utterances(load(media, source("licence (de, auto)")))[0]
    detected = app_asr(real_whisper, language=None).process(german)
    assert {"software", "der", "und"} <= set(words(detected.text)), detected.text
    translated = app_asr(real_whisper, language=None, task="translate").process(german)
    assert "software" in words(translated.text) and not {"der", "und"} & set(words(translated.text)), translated.text
    english = app_asr(real_whisper, language=None).process(utterances(load(media, source("jfk")))[3])
    assert "country" in words(english.text), english.text


@pytest.mark.parametrize("voice, speed", VOICES)
def test_wake_phrase_in_generated_speech(stage, espeak, voice, speed):
    text = hear(stage, spoken(QUESTION, voice, speed))
    assert "what is this" in normalise(text), text
    if (voice, speed) in WAKES:
        wake = match_wake(text)
        assert wake.matched and normalise(wake.remainder) == "what is this", text


@pytest.mark.parametrize("snr", [10, 0])
@pytest.mark.parametrize("noise", list(NOISES))
@pytest.mark.parametrize("voice, speed", [("en-us", 140), ("en-gb", 175)])
def test_wake_phrase_in_real_noise(stage, espeak, noises, voice, speed, noise, snr):
    text = hear(stage, mix(spoken(QUESTION, voice, speed), noises[noise], snr))
    assert "what is this" in normalise(text), text
    if snr >= 10:
        assert match_wake(text).matched, text


@pytest.mark.parametrize("snr", [10, 0])
@pytest.mark.parametrize("noise", list(NOISES))
def test_real_speech_in_real_noise_keeps_its_words(media, stage, noises, noise, snr):
    refs = references(media)
    edits = total = 0
    for name in ("jfk", "stereo left", "stereo right"):
        src = source(name)
        e, n = word_errors(refs[src.reference], hear(stage, mix(load(media, src), noises[noise], snr)))
        edits, total = edits + e, total + n
    assert edits / total <= MAX_WER_IN_NOISE[snr]


@pytest.mark.parametrize("clip", ["mdn_friday_dialogue.mp4", "moviepy_chaplin.mp4"])
def test_dialogue_and_music_replayed_with_real_whisper_give_no_turn(media, real_whisper, real_whisper_dir, clip,
                                                                    tmp_path):
    from pipelines.app import ReplayOptions, replay
    from tests.fakes import FakeVLM

    opts = ReplayOptions(media / "video" / clip, out=tmp_path / "out", asr=str(real_whisper_dir), render=False,
                         progress=False)
    result = replay(opts, asr=app_asr(real_whisper), vlm=FakeVLM())
    assert not [r for r in result.records if r["type"] == "turn"]
    heard = [r for r in result.records if r["type"] == "heard"]
    assert all(r["action"] in ("ignore", "drop") and r["reason"] for r in heard), heard
    if clip.startswith("mdn_friday"):  # people talk: Whisper hears words, and no wake phrase among them
        assert any(r["action"] == "ignore" and r["reason"] == "no wake phrase" and words(r["text"]) for r in heard), heard


@pytest.mark.parametrize("path", ["video/mdn_flower_silent_audio.mp4", "audio/noise/sb_noise2.wav",
                                  "audio/noise/moviepy_rain.mp3", "audio/vad/silero_test_nonspeech.opus",
                                  "video/moviepy_chaplin.mp4"])
def test_guard_lets_no_text_of_noise_or_silence_through(media, stage, path):
    """5 s pieces straight to the ASR stage, no VAD in front: the guard alone must hold."""
    audio = load(media, Source(path, path, span=(0.0, 30.0)))
    for utt in pieces(audio):
        transcript = stage.process(utt)
        assert transcript.dropped, f"{path} @{utt.start:.0f}s: {transcript.text!r} got through"

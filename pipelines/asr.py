"""Speech to text with faster-whisper, guarded against its text-in-silence habit.

Whisper, given noise or silence, confidently writes "Thank you for watching." or
similar. Each utterance is checked three ways before its text is believed: the
loudness must rise above the noise floor, the model's own no-speech probability must
be low, and the text must not be one of the well-known phantom phrases.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from core.messages import Transcript, Utterance
from pipelines.models import unavailable
from pipelines.wake import normalise

_PHANTOMS = {
    "thank you", "thanks for watching", "thank you for watching", "thank you so much for watching",
    "please subscribe", "subscribe", "you", "bye", "subtitles by the amaraorg community", "music",
    "applause", "silence", "so", "the end",
}


@dataclass(frozen=True)
class ASRConfig:
    model: str = "base"
    language: str | None = "en"  # None: detect per utterance (see whisper_language)
    task: str = "transcribe"  # or "translate" (to English)
    compute_type: str = "int8"
    device: str = "cpu"
    cpu_threads: int = 0  # 0: let CTranslate2 choose
    beam_size: int = 1  # greedy: a spoken command is short, beams cost latency
    max_new_tokens: int = 64
    no_speech_threshold: float = 0.6
    min_level_db: float = -45.0  # utterances quieter than this (RMS, dBFS) are noise


def whisper_languages() -> tuple[str, ...]:
    """The language codes Whisper knows, from faster-whisper's own list (empty if it moved)."""
    from faster_whisper import tokenizer

    return tuple(getattr(tokenizer, "_LANGUAGE_CODES", ()))


def check_language(code: str) -> str:
    """A --language value as Whisper wants it ("auto" stays "auto"); ValueError says which codes work."""
    value = code.strip().lower()
    if value == "auto" or value in whisper_languages() or not whisper_languages():
        return value
    examples = ", ".join(c for c in ("en", "de", "fr", "es", "ru", "zh", "ja") if c in whisper_languages())
    raise ValueError(f"unknown language {code!r}: use a Whisper language code ({examples}, ...) or 'auto' to detect")


def whisper_language(language: str | None, translate: bool) -> str | None:
    """The language Whisper is told, None meaning detect (pure).

    `language` is what was asked for: None when nothing was (English is assumed, unless
    translating: then the speech is foreign by definition and its language is detected),
    "auto" to detect, or a Whisper code. Telling Whisper that foreign speech is English
    would make it transcribe nonsense instead of translating."""
    if language is None:
        return None if translate else "en"
    return None if language.lower() == "auto" else language.lower()


class SpeechModel(Protocol):
    def transcribe(self, audio: np.ndarray) -> tuple[str, float]:
        """Return (text, no-speech probability) for 16 kHz mono float32 audio."""
        ...


def level_db(audio: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
    return 20.0 * np.log10(max(rms, 1e-10))


def guard(text: str, no_speech_prob: float, audio: np.ndarray, config: ASRConfig) -> str:
    """Why this transcript should be dropped, or "" to keep it (pure)."""
    if level_db(audio) < config.min_level_db:
        return f"below noise floor ({level_db(audio):.0f} dBFS)"
    if no_speech_prob > config.no_speech_threshold:
        return f"no-speech probability {no_speech_prob:.2f}"
    if normalise(text) in _PHANTOMS:
        return f"known phantom phrase {text.strip()!r}"
    if not normalise(text):
        return "empty"
    return ""


class FasterWhisper:
    """The real model: `WhisperModel` from a size name, a hub id or a local folder."""

    def __init__(self, config: ASRConfig):
        self.config = config
        self._model = None

    def setup(self) -> None:
        try:
            from faster_whisper import WhisperModel

            self._model = WhisperModel(
                self.config.model, device=self.config.device, compute_type=self.config.compute_type,
                cpu_threads=self.config.cpu_threads,
            )
        except Exception as err:  # download, format and runtime errors all mean the same to the user
            raise unavailable("speech-recognition", self.config.model, err) from err

    def transcribe(self, audio: np.ndarray) -> tuple[str, float]:
        c = self.config
        segments, _info = self._model.transcribe(
            audio, language=c.language, task=c.task, beam_size=c.beam_size, temperature=0.0,
            without_timestamps=True, condition_on_previous_text=False, vad_filter=False,
            max_new_tokens=c.max_new_tokens,
        )
        segments = list(segments)
        text = " ".join(s.text.strip() for s in segments).strip()
        no_speech = max((s.no_speech_prob for s in segments), default=1.0)
        return text, no_speech


class ASRStage:
    """Utterance in, Transcript out (with why it was dropped, if it was)."""

    def __init__(self, model: SpeechModel, config: ASRConfig = ASRConfig()):
        self.model = model
        self.config = config

    def setup(self) -> None:
        if hasattr(self.model, "setup"):
            self.model.setup()

    def process(self, utt: Utterance) -> Transcript:
        t0 = time.perf_counter()
        if level_db(utt.audio) < self.config.min_level_db:
            text, no_speech = "", 1.0  # skip the model: nothing above the noise floor
        else:
            text, no_speech = self.model.transcribe(utt.audio)
        asr_s = time.perf_counter() - t0
        dropped = guard(text, no_speech, utt.audio, self.config)
        return Transcript(utt.start, utt.end, utt.detected_at, text, asr_s, no_speech, dropped, utt.detected_perf,
                          utt.push_to_talk)


class EarlyASR:
    """Early ASR: transcribe an utterance when its silence begins, not when the endpointer decides.

    The hearing thread sends an `early` cut of the utterance once the silence has lasted a
    moment; its transcript is kept, not passed on. When the endpointer then ends the same
    utterance (same start, same end, so the same audio), the kept transcript is the answer and
    the ASR is already done. If speech resumed, the final cut ends later: the kept transcript
    is discarded and the final one transcribed ("redone"). Answers are the same either way.
    """

    def __init__(self, stage):
        self.stage = stage
        self._kept: Transcript | None = None
        self.reused = self.redone = 0

    @property
    def kept(self) -> Transcript | None:
        """The early transcript waiting for the endpointer's decision, if any."""
        return self._kept

    def process(self, utt: Utterance) -> Transcript | None:
        """The transcript to pass on, or None for an early cut (kept for the final one)."""
        if utt.early:
            if self._kept is not None and self._kept.start == utt.start:
                self.redone += 1  # a second pause in one utterance: the first guess is stale
            self._kept = self.stage.process(utt)
            return None
        kept, self._kept = self._kept, None
        if kept is not None and (kept.start, kept.end) == (utt.start, utt.end):
            self.reused += 1
            return replace(kept, detected_at=utt.detected_at, detected_perf=utt.detected_perf,
                           push_to_talk=utt.push_to_talk, early_asr="reused")
        transcript = self.stage.process(utt)
        if kept is not None and kept.start == utt.start:
            self.redone += 1
            return replace(transcript, early_asr="redone")
        return transcript

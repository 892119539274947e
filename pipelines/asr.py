"""Speech to text with faster-whisper, guarded against its text-in-silence habit.

Whisper, given noise or silence, confidently writes "Thank you for watching." or
similar. Each utterance is checked three ways before its text is believed: the
loudness must rise above the noise floor, the model's own no-speech probability must
be low, and the text must not be one of the well-known phantom phrases.

The encoder sees a shorter window. faster-whisper pads every utterance to Whisper's 30 s
(3000 mel frames), and encoding those 30 s is most of ASR's cost for a 2-5 s question.
CTranslate2's encoder takes fewer frames, so `FasterWhisper` runs the one window itself: 15 s,
or the utterance plus 2 s when that is longer. Shorter windows make Whisper, trained on 30 s
only, repeat itself more often; a text that looks like such a loop is redone at 30 s. The
words hold (BENCHMARKS.md, "Whisper on a shorter window": `python -m benchmarks.asr_window`);
`window="full"` keeps faster-whisper's own path.
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from core.messages import SAMPLE_RATE, Transcript, Utterance
from pipelines.models import unavailable
from pipelines.wake import normalise

_PHANTOMS = {
    "thank you", "thanks for watching", "thank you for watching", "thank you so much for watching",
    "please subscribe", "subscribe", "you", "bye", "subtitles by the amaraorg community", "music",
    "applause", "silence", "so", "the end",
    # What Whisper base wrote, alone, for 5 s of real noise and music (benchmarks/asr_window.py),
    # with a no-speech probability just under the threshold: never a command on their own.
    "i", "the", "im",
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
    # Tokens per utterance: at most max_new_tokens (Whisper's own limit is 224), and at most
    # tokens_per_second of its audio (see token_cap), so a decoding loop stops early.
    max_new_tokens: int = 224
    tokens_per_second: float = 12.0  # read German runs at 8; English at 4-6
    no_speech_threshold: float = 0.6
    min_level_db: float = -45.0  # utterances quieter than this (RMS, dBFS) are noise
    # Mel frames the encoder sees (see window_frames): "full" is faster-whisper's 30 s path,
    # "fit" the utterance plus window_margin, a number is at least that many frames.
    window: str = "1500"  # 15 s: the shortest that kept every WER within 1 point of 30 s (BENCHMARKS.md)
    window_margin: int = 200  # frames of silence after the audio when the window grows to fit it (2 s)
    # A short window's text that looks like a decoding loop (see looped) is redone at the full
    # window; None: never. 2.4 is Whisper's own threshold for "too repetitive".
    fallback_compression: float | None = 2.4


HOP = 160  # samples per mel frame: 10 ms at 16 kHz
FULL_WINDOW = 3000  # mel frames in Whisper's 30 s window, the only length it was trained on
MAX_TOKENS = 224  # Whisper's 448 decoder positions: half for the prompt, half for the text
WINDOW_STEP = 200  # a short window is rounded up to whole 2 s: few distinct shapes, silence after the speech
# faster-whisper's defaults for dropping a window as silence (no_speech_threshold, log_prob_threshold):
# the short path applies the same rule, so both paths give the same text for the same decoding.
_SKIP_NO_SPEECH, _SKIP_LOGPROB = 0.6, -1.0


def token_cap(seconds: float, max_new_tokens: int = 224, tokens_per_second: float = 12.0) -> int:
    """How many tokens Whisper may write for `seconds` of audio (pure): enough for fast speech in a
    token-hungry language, and no more, because a decoding loop ("oh, oh, oh, ...") runs to the cap."""
    return max(1, min(max_new_tokens, MAX_TOKENS, 16 + int(np.ceil(tokens_per_second * max(seconds, 0.0)))))


def max_length(tokens: int, prompt: int) -> int:
    """CTranslate2's Whisper `max_length` that lets it write exactly `tokens` after a `prompt`-token
    prompt (pure). It counts the prompt and gives the text at most half of max_length (Whisper's
    448 positions are half prompt, half text), so faster-whisper's max_new_tokens=64 writes 34."""
    return max(2 * tokens, tokens + prompt - 1)


def looped(text: str, tokens: int, cap: int, max_compression: float = 2.4) -> bool:
    """Whether a decoding looks like a loop (pure): it ran to the token cap (speech never needs it),
    or its text compresses better than `max_compression` (gzip), Whisper's own repetition test."""
    data = text.encode("utf-8")
    return tokens >= cap or (len(data) > 0 and len(data) / len(zlib.compress(data)) > max_compression)


def window_frames(frames: int, window: str = "fit", margin: int = 200) -> int:
    """Mel frames the encoder sees for `frames` frames of audio (pure).

    "full": 3000, Whisper's 30 s. "fit": the audio plus `margin`, rounded up to 200. A number:
    at least that many, grown like "fit" when the audio needs more. Never more than 3000:
    audio longer than that goes through faster-whisper's own 30 s windows."""
    fit = min(FULL_WINDOW, -(-(max(frames, 1) + max(margin, 0)) // WINDOW_STEP) * WINDOW_STEP)
    window = str(window)  # 1500 or "1500"
    if window == "full":
        return FULL_WINDOW
    if window == "fit":
        return fit
    if window.isdigit() and 2 <= int(window) <= FULL_WINDOW and int(window) % 2 == 0:
        return max(int(window), fit)
    raise ValueError(f"ASR window {window!r}: use 'full', 'fit' or an even number of mel frames up to {FULL_WINDOW}")


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


def _random_weights(model: str) -> bool:
    """pipelines.tiny.is_random_weights without importing torch: its marker file is in the folder."""
    return (Path(model) / "RANDOM_WEIGHTS.txt").is_file()


class FasterWhisper:
    """The real model: `WhisperModel` from a size name, a hub id or a local folder.

    `model`: an already loaded `WhisperModel` (tests and benchmarks share one across configs)."""

    def __init__(self, config: ASRConfig, model=None):
        self.config = config
        self._model = model
        self.fallbacks = 0  # short windows redone at the full window (benchmarks count them)
        # Random weights run every decoding to the cap: redoing each at the full window would
        # charge the latency benchmark a cost that real weights rarely pay.
        self._redo_loops = config.fallback_compression is not None and not _random_weights(config.model)
        window_frames(0, config.window)  # a bad window is bad input at start-up, not at the first question

    def setup(self) -> None:
        if self._model is not None:
            return
        try:
            from faster_whisper import WhisperModel

            self._model = WhisperModel(
                self.config.model, device=self.config.device, compute_type=self.config.compute_type,
                cpu_threads=self.config.cpu_threads,
            )
        except Exception as err:  # download, format and runtime errors all mean the same to the user
            raise unavailable("speech-recognition", self.config.model, err) from err

    def transcribe(self, audio: np.ndarray, task: str | None = None) -> tuple[str, float]:
        """Text and no-speech probability; `task="translate"`: into English, the language detected."""
        c = self.config
        if task is not None and task != c.task:
            c = replace(c, task=task, language=None if task == "translate" else c.language)
        if c.window == "full" or len(audio) > FULL_WINDOW * HOP:  # longer: faster-whisper's 30 s windows
            return self._transcribe_full(audio, c)
        return self._transcribe_window(audio, window_frames(len(audio) // HOP, c.window, c.window_margin), c)

    def _transcribe_full(self, audio: np.ndarray, c: ASRConfig | None = None) -> tuple[str, float]:
        """faster-whisper's own path: every 30 s of audio padded to a 30 s window."""
        c = c or self.config
        cap = token_cap(min(len(audio), FULL_WINDOW * HOP) / SAMPLE_RATE, c.max_new_tokens, c.tokens_per_second)
        prompt = 4 if self._model.model.is_multilingual else 2  # its prompt: <|sot|> (<|lang|> <|task|>) <|notimestamps|>
        segments, _info = self._model.transcribe(
            audio, language=c.language, task=c.task, beam_size=c.beam_size, temperature=0.0,
            without_timestamps=True, condition_on_previous_text=False, vad_filter=False,
            max_new_tokens=max_length(cap, prompt) - prompt,
        )
        segments = list(segments)
        text = " ".join(s.text.strip() for s in segments).strip()
        no_speech = max((s.no_speech_prob for s in segments), default=1.0)
        return text, no_speech

    def _transcribe_window(self, audio: np.ndarray, frames: int, c: ASRConfig | None = None) -> tuple[str, float]:
        """One window of `frames` mel frames, decoded as faster-whisper decodes its first window
        (same features, prompt, suppressed tokens, greedy or beam search, silence rule); at 3000
        frames the text and no-speech probability are exactly those of `_transcribe_full`."""
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        c, model = c or self.config, self._model
        features = model.feature_extractor(audio)[:, :-1]  # the last frame is padding: faster-whisper drops it too
        features = np.pad(features, ((0, 0), (0, frames - features.shape[-1])))  # (80, frames): log-mel 0 as it pads
        encoded = model.encode(features)  # (1, frames // 2, d_model)
        language = c.language
        if language is None:  # detect on the same encoding: faster-whisper would encode a 30 s window once more
            language = model.model.detect_language(encoded)[0][0][0][2:-2] if model.model.is_multilingual else "en"
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task=c.task, language=language)
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        cap = token_cap(len(audio) / SAMPLE_RATE, c.max_new_tokens, c.tokens_per_second)
        result = model.model.generate(
            encoded, [prompt], beam_size=c.beam_size, max_length=max_length(cap, len(prompt)),
            return_scores=True, return_no_speech_prob=True, suppress_blank=True,
            suppress_tokens=list(get_suppressed_tokens(tokenizer, [-1])),
        )[0]
        tokens = result.sequences_ids[0]
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)  # as faster-whisper recovers it
        if result.no_speech_prob > _SKIP_NO_SPEECH and avg_logprob < _SKIP_LOGPROB:
            return "", 1.0  # faster-whisper skips such a window: no segment, so no-speech 1.0 as above
        text = tokenizer.decode(tokens).strip()
        # Whisper knows only 30 s windows; on a short one it now and then repeats a phrase to the
        # token cap ("what your country can do for you? what your country ..."). The full window
        # rarely does: those few utterances pay for both.
        if self._redo_loops and looped(text, len(tokens), cap, c.fallback_compression):
            self.fallbacks += 1
            return self._transcribe_full(audio, c)
        return text, result.no_speech_prob


class ASRStage:
    """Utterance in, Transcript out (with why it was dropped, if it was)."""

    def __init__(self, model: SpeechModel, config: ASRConfig = ASRConfig()):
        self.model = model
        self.config = config
        self.translating = False  # set by the session in translation mode: Whisper's translate task

    def setup(self) -> None:
        if hasattr(self.model, "setup"):
            self.model.setup()

    def process(self, utt: Utterance) -> Transcript:
        t0 = time.perf_counter()
        if level_db(utt.audio) < self.config.min_level_db:
            text, no_speech = "", 1.0  # skip the model: nothing above the noise floor
        else:
            # Translating, the other speaker's language is detected and their words come out in English
            text, no_speech = (self.model.transcribe(utt.audio, task="translate") if self.translating
                               else self.model.transcribe(utt.audio))
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

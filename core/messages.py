"""Typed messages that travel between stages, grouped by the edge they travel.

Times are session seconds (media time in replay, seconds since start live): every
stage reads the one session clock, never the wall clock, so a replay is deterministic.
Wall-clock stopwatches (time.perf_counter) are used only to *measure* compute latency.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 16_000  # every AudioChunk is 16 kHz mono float32 in [-1, 1]


# --- source -> hearing / seeing -------------------------------------------------------
@dataclass(frozen=True)
class AudioChunk:
    t: float  # session time of the first sample
    samples: np.ndarray  # (N,) float32, 16 kHz mono
    settled: bool = True  # False while an echo canceller is still converging: its output may hold the answer's echo


@dataclass(frozen=True)
class VideoFrame:
    t: float  # session time at which the frame is shown
    image: np.ndarray  # (H, W, 3) uint8 BGR, already downscaled by the source


@dataclass(frozen=True)
class EndOfStream:
    t: float  # session time of the end of the media


# --- hearing -> control -----------------------------------------------------------------
@dataclass(frozen=True)
class SpeechStarted:
    t: float  # session time the VAD says speech began
    detected_at: float = 0.0  # session time it had lasted long enough to count (barge-in)


@dataclass(frozen=True)
class Utterance:
    start: float  # session time speech began
    end: float  # session time speech ended (the "end of the user's speech")
    detected_at: float  # session time the endpointer decided the turn was over
    audio: np.ndarray  # (N,) float32 16 kHz, padded a little on both sides
    detected_perf: float = 0.0  # time.perf_counter() at that decision: latencies run from here
    push_to_talk: bool = False  # held the button: a question, no wake phrase needed
    early: bool = False  # cut when the silence began, before the endpointer decided (early ASR)


@dataclass(frozen=True)
class SpeechOnset:
    """Speech has lasted long enough to be speech (not a click): speculation may start."""

    start: float
    t: float


@dataclass(frozen=True)
class SpeechHint:
    """Speech may have begun: a quick, sensitive sign (a few voiced windows at a low threshold),
    well before `SpeechStarted`. Over an answer the answer pauses (the wearer has the floor)."""

    start: float  # session time the sign began
    t: float  # session time it was given


@dataclass(frozen=True)
class SpeechHintEnded:
    """A hint that never became speech long enough to interrupt ("mm-hmm", "stop", a cough): a
    paused answer goes on, at once if nothing was said (`words` False), else once the words
    are known (a "stop" must not let it go on for a moment first)."""

    t: float
    words: bool = False  # the endpointer heard an utterance in it: a transcript follows


@dataclass(frozen=True)
class SpeechContinues:
    """Speech is still under way: the wearer may have turned their head, so speculative vision
    looks at the view again (sent every `look_every` s of speech)."""

    start: float  # when the utterance began
    t: float


@dataclass(frozen=True)
class SpeechPaused:
    """Silence began inside an utterance: the question may be over (speculation starts here)."""

    start: float  # when the utterance began
    end: float  # when its speech stopped (so far)


@dataclass(frozen=True)
class SpeechResumed:
    """Speech went on after a pause: an early transcript (and an answer begun on it) is stale."""

    start: float
    t: float


@dataclass(frozen=True)
class Transcript:
    start: float
    end: float
    detected_at: float
    text: str
    asr_s: float  # wall seconds spent transcribing
    no_speech_prob: float = 0.0
    dropped: str = ""  # non-empty: why the hallucination guard dropped the text
    detected_perf: float = 0.0
    push_to_talk: bool = False
    early_asr: str = ""  # "early": cut at a pause (tentative); "reused": that cut was final; "redone": speech resumed


@dataclass(frozen=True)
class TypedQuestion:
    t: float  # session time the question is asked (--ask, or typed live)
    text: str
    detected_perf: float = 0.0


@dataclass(frozen=True)
class Announcement:
    """Something a skill says unasked when it is due (a timer, a reminder), at session time t."""

    t: float
    text: str
    source: str  # the skill that said it, for the log
    detected_perf: float = 0.0


@dataclass(frozen=True)
class PushToTalk:
    """The temple button: pressed starts a question (no wake phrase), released ends it."""

    t: float
    pressed: bool


@dataclass(frozen=True)
class ModeSwitch:
    t: float
    mode: str  # "instant" | "thinking" | "contemplating" | "next" (cycle)


# --- control -> seeing / answering ------------------------------------------------------
@dataclass(frozen=True)
class FrameSnapshot:
    t: float
    image: np.ndarray  # (H, W, 3) uint8 BGR
    sharpness: float
    exposure: float
    thumb: np.ndarray | None = field(default=None, repr=False, compare=False)  # vision.thumbnail, made once


@dataclass(frozen=True)
class VLMRequest:
    question: str
    image: np.ndarray | None  # RGB uint8, or None when there is nothing to look at
    history: tuple[tuple[str, str], ...] = ()  # (question, answer) of recent turns
    system: str = ""
    max_new_tokens: int = 60
    prefix: object | None = None  # speculative vision: this prompt's start, already encoded (vlm.Prefix)


# --- answering -> speaking --------------------------------------------------------------
@dataclass(frozen=True)
class SpeechAudio:
    text: str
    samples: np.ndarray  # (N,) float32 mono
    rate: int


@dataclass(frozen=True)
class AnswerFinished:
    """An answer's thread is done: its audio is handed to the speaker, or it was cancelled."""

    turn: int  # the answer's id (turn-taking ignores a finished answer it no longer waits for)
    question: str
    answer: str  # what was generated (partial when cancelled)
    end: float  # session time its last audio ends (or it finished, when nothing was spoken)
    cancelled: bool = False
    discarded: bool = False  # begun on an early transcript that did not hold: no answer at all


@dataclass(frozen=True)
class StageError:
    stage: str
    message: str
    t: float = 0.0


# --- control -> display -----------------------------------------------------------------
@dataclass(frozen=True)
class Evidence:
    """What an answer rests on, shown in a corner of the display: a memory's thumbnail
    (pipelines/memory/skill.py), or a skill's card (a product and its price, a photo taken; entry 0).

    Equal when the entry and the label are: the image is left out of comparison and hash, so a
    DisplayState holding one still compares (the window redraws on a change) and hashes."""

    entry: int  # the memory entry's id (the turn record names it too)
    label: str  # e.g. "seen 4 min ago"
    image: np.ndarray | None = field(default=None, repr=False, compare=False)  # (h, w, 3) uint8 BGR, faces blurred


@dataclass(frozen=True)
class DisplayState:
    """Everything the glasses' display shows at one moment; drawn by glasses.display."""

    caption: str = ""  # live caption of what was heard
    answer: str = ""  # the answer text as it streams
    light: bool = False  # capture indicator: on while camera/mic are used for the assistant
    status: str = "idle"  # idle | listening | thinking | speaking
    mode: str = "instant"
    skill: str = ""  # the standing skill mode ("shopping", "translate"), shown beside the mode
    by: str = ""  # the skill answering the current question ("shopping", "reading"), "" for the VLM
    latency: float | None = None  # last turn's voice-to-voice seconds
    banner: str = ""  # e.g. "RANDOM WEIGHTS: wiring smoke run" or "no camera"
    notes: tuple[str, ...] = field(default_factory=tuple)
    recording: bool = False  # a video is being recorded ("record a video"): the capture light is on
    storing: bool = False  # memory keeps frames (--memory): the capture light stays on while it does
    badge: str = ""  # a small privacy note by the light, e.g. "faces blurred" while memory keeps frames
    evidence: Evidence | None = None  # a memory answer's thumbnail; cleared when the next question starts

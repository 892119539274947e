"""The latency benchmark's scenario: spoken questions with pauses, over drawn frames.

Everything is generated, so the true start and end of each question are known from the
audio itself rather than guessed by a VAD: espeak-ng speaks each question, the leading and
trailing silence it writes is trimmed off (10 ms frames above -50 dBFS), and the trimmed
speech is placed at a known sample. The camera shows a simple OpenCV scene per question
with a moving ball, so consecutive frames differ as a real camera's do. The same call
gives the same scenario: espeak-ng is deterministic and the background noise is seeded.
`PacedSource` plays a scenario into a session as the glasses' microphone and camera would.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from glasses.fakes import ScriptedSource
from core.audio import read_wav, resample
from core.messages import SAMPLE_RATE, AudioChunk

# No commas: a comma makes espeak-ng pause, and the benchmark wants one utterance per question.
QUESTIONS = (
    "What is this?",
    "What colour is the mug?",
    "Can you read the sign for me?",
    "How much does this cost?",
    "Which bus is this?",
    "Is it safe to cross the street now?",
    "Who is at the door?",
    "What does the label say?",
    "Describe the room in front of me.",
    "Is the light green?",
    "What time does the bus leave?",
    "Is there a plant on the table?",
)
# The fixed answer every turn speaks (its tokens are forced, so every run generates the same
# number of tokens). Its first clause is 12 words, so a 12-word first-chunk policy cuts there.
ANSWER = ("It looks like a red mug on a table near the window, with a laptop to its left and a small "
          "green plant behind it. The mug is half full.")
SCENES = ("MUG", "EXIT", "3.99", "BUS 42", "WALK", "DOOR", "LABEL", "ROOM", "GREEN", "10:15", "PLANT", "SIGN")


@dataclass(frozen=True)
class Question:
    text: str
    start: float  # seconds: first sample of speech
    end: float  # seconds: last sample of speech (the "true end" voice-to-voice counts from)
    said: str = ""  # everything said, wake phrase included ("": the wake phrase, then `text`)
    hesitation: float = 0.0  # seconds of the pause inside it (realistic scenario)
    head_turn: float | None = None  # when the view changed while it was asked


@dataclass(frozen=True)
class Said:
    """One stretch of voice in the track: its words, its times, and whose they are."""

    text: str
    start: float
    end: float
    question: int | None  # the question it is part of; None: someone else talking


@dataclass(frozen=True)
class Scenario:
    audio: np.ndarray  # (N,) float32, 16 kHz mono
    questions: tuple[Question, ...]
    fps: float = 10.0
    size: tuple[int, int] = (640, 360)  # (width, height)
    said: tuple[Said, ...] = ()  # every stretch of voice, when the ASR double should hear words as said
    views: tuple[tuple[float, int], ...] = ()  # (from, scene): where the wearer looks; (): a scene per question
    pans: tuple[tuple[float, float], ...] = ()  # head turns under way: their frames are motion-blurred

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    def index_at(self, t: float) -> int:
        """Which question's scene the camera shows at time t (the one being asked or answered)."""
        i = 0
        for k, q in enumerate(self.questions):
            if q.start - 0.5 <= t:
                i = k
        return i

    def question_at(self, start: float, end: float) -> int | None:
        """Index of the question that overlaps [start, end] the most, or None."""
        best, best_overlap = None, 0.0
        for k, q in enumerate(self.questions):
            overlap = min(end, q.end) - max(start, q.start)
            if overlap > best_overlap:
                best, best_overlap = k, overlap
        return best

    def words_between(self, start: float, end: float) -> str | None:
        """What was said in an utterance cut from `start` to `end`: the stretches of voice whose
        middle lies inside it (None when the scenario does not list them)."""
        if not self.said:
            return None
        return " ".join(s.text for s in self.said if start <= (s.start + s.end) / 2 <= end)

    def frame(self, t: float) -> np.ndarray:
        """The camera frame at time t: (H, W, 3) uint8 BGR."""
        if not self.views:
            return draw_scene(self.index_at(t), t, self.size)
        scene = next((s for at, s in reversed(self.views) if at <= t), self.views[0][1])
        img = draw_scene(scene, t, self.size)
        if any(a <= t < b for a, b in self.pans):  # the head is turning: a horizontal smear
            img = cv2.blur(img, (41, 1))
        return img


def draw_scene(i: int, t: float, size: tuple[int, int]) -> np.ndarray:
    """Scene `i` at time t: a coloured panel with a word on it and a ball crossing the bottom.
    Scenes 100 and up are where a head turn leads: the panel on the left, another background."""
    w, h = size
    turned = i >= 100
    img = np.full((h, w, 3), (40 if turned else 90) + 12 * (i % 6), np.uint8)
    side = h // 2
    colour = ((0, 0, 220), (0, 160, 0), (200, 120, 0))[i % 3]
    x0 = w // 10 if turned else w // 2 - side // 2
    cv2.rectangle(img, (x0, h // 4), (x0 + side, h // 4 + side), colour, -1)
    cv2.putText(img, SCENES[i % len(SCENES)], (x0 + 8, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 3)
    x = int((t * w / 4) % w)  # crosses the frame every 4 s
    cv2.circle(img, (x, h - h // 8), h // 16, (255, 0, 0), -1)
    return img


def speech_bounds(samples: np.ndarray, rate: int, floor_db: float = -50.0, frame: float = 0.01) -> tuple[int, int]:
    """(first, last+1) sample of the 10 ms frames louder than floor_db: where the voice is."""
    n = max(1, int(rate * frame))
    frames = len(samples) // n
    if frames == 0:
        return 0, 0
    rms = np.sqrt(np.mean(np.square(samples[: frames * n].reshape(frames, n), dtype=np.float64), axis=1))
    loud = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-10)) > floor_db)
    if len(loud) == 0:
        return 0, 0
    return int(loud[0] * n), int((loud[-1] + 1) * n)


def espeak(text: str, voice: str = "en") -> np.ndarray:
    """16 kHz mono float32 speech of `text` from espeak-ng (160 words a minute)."""
    from glasses.sample import speak_to_wav

    with tempfile.TemporaryDirectory() as tmp:
        samples, rate = read_wav(speak_to_wav(text, Path(tmp) / "q.wav", voice=voice))
    return resample(samples, rate, SAMPLE_RATE)


def make_scenario(n: int = 10, *, pause: float = 7.0, lead: float = 1.0, tail: float | None = None,
                  noise_db: float = -60.0, seed: int = 0, speak: Callable[[str], np.ndarray] = espeak) -> Scenario:
    """`n` questions (QUESTIONS in order, repeated if n > 12), each followed by `pause` seconds.

    `tail` (default: `pause`) is the silence after the last question, so its answer finishes
    inside the clip. Faint seeded noise keeps the silence from being digitally exact.
    """
    if n < 1:
        raise ValueError("a scenario needs at least one question")
    pieces, questions = [], []
    cursor = int(lead * SAMPLE_RATE)
    for k in range(n):
        text = QUESTIONS[k % len(QUESTIONS)]
        voice = speak(text)
        a, b = speech_bounds(voice, SAMPLE_RATE)
        if b <= a:
            raise RuntimeError(f"no speech was generated for {text!r}")
        voice = voice[a:b]
        pieces.append((cursor, voice))
        questions.append(Question(text, cursor / SAMPLE_RATE, (cursor + len(voice)) / SAMPLE_RATE))
        gap = pause if k < n - 1 else (pause if tail is None else tail)
        cursor += len(voice) + int(gap * SAMPLE_RATE)
    audio = np.random.default_rng(seed).standard_normal(cursor).astype(np.float32) * np.float32(10 ** (noise_db / 20))
    for at, voice in pieces:
        audio[at : at + len(voice)] += voice
    return Scenario(np.clip(audio, -1, 1), tuple(questions))


class PacedSource:
    """The scenario as a microphone and camera deliver it: each audio block once its last
    sample has been recorded (ScriptedSource stamps a block with its first sample's time)."""

    def __init__(self, scenario: Scenario, clock, chunk: int = 512):
        self.scenario, self.clock = scenario, clock
        self.inner = ScriptedSource(scenario.audio, scenario.frame, scenario.fps, chunk)
        self.device_cpu_s = 0.0  # CPU spent being the devices (drawing frames, slicing and pacing audio)

    def events(self):
        made = self.inner.events()
        while True:
            c0 = time.thread_time()
            ev = next(made, None)
            if isinstance(ev, AudioChunk):
                self.clock.wait_until(ev.t + len(ev.samples) / SAMPLE_RATE)
            self.device_cpu_s += time.thread_time() - c0
            if ev is None:
                return
            yield ev

    def close(self) -> None:
        pass

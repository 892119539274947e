"""Hesitant questions made from real speech: a pause put into a real utterance at a word gap.

A wearer asking a question hesitates ("what's ... this", "how much is, um, that one"), and
the shared media hold none of that: it is read or spoken fluently. So each reference
utterance of 1 to 8 s that ends before its clip does is cut out, and at one of its word gaps
(a dip of Silero's probability well inside it, cut at the quietest 10 ms there) the clip's
own background is put in for 0.4, 0.7 or 1.0 s. Before it go 0.5 s of that background and
after it 2 s, so the end of the utterance is heard too. The whole is one utterance: an end
at the inserted pause is a false end.

What this cannot give: the drawn-out last syllable and the "um" of a real hesitation (the
words before the pause were spoken fluently, so their prosody says "more to come"), and no
filled pause exists in the media. A real hesitation may sound more final than these do.
"""
from __future__ import annotations

import numpy as np

from core.messages import SAMPLE_RATE

PAUSES = (0.4, 0.7, 1.0)  # s of silence put in: under, around and over the 0.5 s silence
GAPS_PER_UTTERANCE = 2  # the deepest dips, so one long sentence does not outweigh the rest
EDGE = 0.4  # s: a gap this far inside the utterance, between words rather than before the first
DIP = 0.95  # a word gap: Silero's probability dips below this inside speech
LENGTH = (1.0, 8.0)  # s: utterances this long (the model hears 8 s; JFK's 10 s has pauses of its own)
LEAD, TRAIL = 0.5, 2.0  # s of background before and after
W = 512 / SAMPLE_RATE


def word_gaps(probs, utterance: tuple[float, float], edge: float = EDGE, dip: float = DIP) -> list[float]:
    """Times of the word gaps inside an utterance, deepest first: the local minima of Silero's
    probability under `dip` (within a word it stays near 1; loudness alone would also find
    the closure of every stop consonant)."""
    a, b = utterance
    found = [(probs[i], (i + 0.5) * W) for i in range(1, len(probs) - 1)
             if a + edge <= (i + 0.5) * W <= b - edge and probs[i] < dip and probs[i] <= min(probs[i - 1], probs[i + 1])]
    return [t for _, t in sorted(found)]


def spaced(times: list[float], n: int, apart: float = 0.5) -> list[float]:
    """The first n times (in the given order) that lie at least `apart` from those already taken."""
    out: list[float] = []
    for t in times:
        if len(out) < n and all(abs(t - u) >= apart for u in out):
            out.append(t)
    return sorted(out)


def quietest(audio: np.ndarray, t: float, reach: float = W) -> int:
    """The sample in the middle of the quietest 10 ms around t: where the words part."""
    frame = SAMPLE_RATE // 100
    lo, hi = max(0, int((t - reach) * SAMPLE_RATE)), min(len(audio), int((t + reach) * SAMPLE_RATE))
    starts = range(lo, max(lo + 1, hi - frame), frame // 2)
    best = min(starts, key=lambda s: float(np.mean(audio[s:s + frame] ** 2)))
    return best + frame // 2


def background(audio: np.ndarray, probs, seconds: float, piece: float = 0.25) -> np.ndarray:
    """The clip's quietest `piece` where Silero hears no speech, repeated to `seconds`."""
    n, k = int(piece * SAMPLE_RATE), -(-int(piece * SAMPLE_RATE) // 512)  # samples, windows
    starts = [i * 512 for i in range(len(probs) - k + 1) if max(probs[i:i + k]) < 0.1]
    if not starts:
        return np.zeros(int(round(seconds * SAMPLE_RATE)), np.float32)
    start = min(starts, key=lambda s: float(np.mean(audio[s:s + n] ** 2)))
    return np.resize(audio[start:start + n], int(round(seconds * SAMPLE_RATE))).astype(np.float32)


def hesitant(audio: np.ndarray, probs, utterance: tuple[float, float], gap: float, pause: float):
    """(audio, (start, end) of the one utterance in it) with `pause` s put in at the gap."""
    a, b = utterance
    lo, hi = int(max(0.0, a - 0.25) * SAMPLE_RATE), int(min(len(audio) / SAMPLE_RATE, b + 0.25) * SAMPLE_RATE)
    cut = quietest(audio, gap)
    parts = [background(audio, probs, LEAD), audio[lo:cut], background(audio, probs, pause), audio[cut:hi],
             background(audio, probs, TRAIL)]
    shift = LEAD - lo / SAMPLE_RATE
    return np.concatenate(parts).astype(np.float32), (a + shift, b + shift + pause)


def sources(clips) -> list[tuple[str, np.ndarray, list, tuple[float, float]]]:
    """(name, audio, probabilities, utterance) for each utterance a hesitant copy is made of."""
    out = []
    for clip, probs in clips:
        seconds = len(clip.audio) / SAMPLE_RATE
        for k, (a, b) in enumerate(clip.utterances):
            if LENGTH[0] <= b - a <= LENGTH[1] and b + 0.2 <= min(seconds, clip.span[1]):
                out.append((f"{clip.name} #{k + 1}", clip.audio, probs, (a, b)))
    return out


def make(clips) -> list[tuple[str, np.ndarray, tuple[float, float], float, float]]:
    """(name, audio, utterance, gap time in the source, pause) for every hesitant copy."""
    out = []
    for name, audio, probs, utterance in sources(clips):
        for gap in spaced(word_gaps(probs, utterance), GAPS_PER_UTTERANCE):
            for pause in PAUSES:
                new, span = hesitant(audio, probs, utterance, gap, pause)
                out.append((f"{name} +{pause:.1f}s at {gap:.2f}s", new, span, gap, pause))
    return out


def clips(fluent) -> list:
    """The hesitant copies as benchmark clips (benchmarks.endpoint.Clip), with their Silero probabilities."""
    from benchmarks.endpoint import Clip, probabilities

    out = []
    for name, audio, utterance, _, pause in make(fluent):
        clip = Clip(name, audio, (utterance,), (0.0, len(audio) / SAMPLE_RATE),
                    f"one utterance, {pause:.1f} s put in at a word gap", hesitant=True)
        out.append((clip, probabilities(audio)))
    return out

"""Turn-taking decisions as pure functions: wake phrase, follow-up window, stop words.

Whisper writes the wake phrase many ways ("Hey, glasses.", "hey glass", "Hi glasses!"),
so matching is on normalised words with a fuzzy score, not on exact text.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from difflib import SequenceMatcher

# Greetings Whisper substitutes for "hey" often enough to accept them.
_GREETINGS = {"hey", "hi", "hay", "he", "hei", "a", "ok", "okay", "hello", "yo"}
_STOP_WORDS = {"stop", "cancel", "nevermind", "never mind", "shut up", "quiet", "be quiet", "stop it", "stop talking"}
# Fillers that may precede the wake phrase ("oh hey glasses").
_FILLERS = {"oh", "um", "uh", "so", "and", "well", "okay", "ok"}


def normalise(text: str) -> str:
    """Lower-case ASCII words separated by single spaces; punctuation dropped."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).replace("'", "").split())


def _similar(a: str, b: str) -> float:
    return SequenceMatcher(None, a, b).ratio()


@dataclass(frozen=True)
class WakeMatch:
    matched: bool
    remainder: str = ""  # what followed the wake phrase, original casing kept


def match_wake(text: str, phrase: str = "hey glasses", threshold: float = 0.75) -> WakeMatch:
    """Find the wake phrase among the first few words of `text`.

    The phrase's first word may be any common greeting when the phrase starts with one
    ("hi glasses" counts for "hey glasses"); the rest is matched fuzzily so "glass" or
    "glasses," still count.
    """
    words = text.split()
    norm = [normalise(w) for w in words]
    target = normalise(phrase).split()
    if not target:
        return WakeMatch(True, text.strip())
    n = len(target)
    for start in range(0, min(3, len(words))):
        if start and norm[start - 1] not in _FILLERS and norm[start - 1]:
            break  # the wake phrase must open the utterance, after fillers at most
        window = [w for w in norm[start : start + n] if w]
        if len(window) < n:
            continue
        head_ok = target[0] not in _GREETINGS or window[0] in _GREETINGS or _similar(window[0], target[0]) >= threshold
        tail = " ".join(window[1:]) if target[0] in _GREETINGS else " ".join(window)
        want = " ".join(target[1:]) if target[0] in _GREETINGS else " ".join(target)
        if head_ok and (not want or _similar(tail, want) >= threshold):
            rest = " ".join(words[start + n :]).lstrip(" ,.!?;:-")
            return WakeMatch(True, rest)
    return WakeMatch(False)


def is_stop(text: str) -> bool:
    """True when the whole utterance is a stop command ("Stop.", "cancel that", "never mind")."""
    norm = normalise(text)
    norm = re.sub(r"^(hey glasses|ok|okay|please)\s+", "", norm)
    norm = re.sub(r"\s+(that|it|please|now)$", "", norm)
    return norm in _STOP_WORDS


@dataclass(frozen=True)
class Decision:
    action: str  # "ask" | "wake" | "stop" | "ignore"
    question: str = ""
    reason: str = ""


def decide(text: str, t: float, *, phrase: str, follow_up_until: float, busy: bool, push_to_talk: bool = False) -> Decision:
    """What to do with one finished utterance heard at session time `t`.

    `follow_up_until`: end of the window in which no wake phrase is needed.
    `busy`: the assistant is generating or speaking (so "stop" has something to stop).
    `push_to_talk`: the wearer held the button, so it is a question with or without the phrase.
    """
    if not normalise(text):
        return Decision("ignore", reason="empty")
    in_window = t <= follow_up_until
    if is_stop(text):
        if busy or in_window:
            return Decision("stop", reason="stop word")
        return Decision("ignore", reason="stop word with nothing to stop")
    wake = match_wake(text, phrase)
    if push_to_talk:  # the button says it is a question: a wake phrase, if said, is dropped
        question = wake.remainder if wake.matched else text.strip()
        return Decision("ask", question, reason="push-to-talk") if normalise(question) else Decision("ignore", reason="empty")
    if wake.matched:
        if normalise(wake.remainder):
            return Decision("ask", wake.remainder, reason="wake phrase")
        return Decision("wake", reason="wake phrase alone: listening for the question")
    if in_window:
        return Decision("ask", text.strip(), reason="follow-up window")
    return Decision("ignore", reason="no wake phrase")

"""Turn-taking decisions as pure functions: wake phrase, follow-up window, stop words.

Whisper writes the wake phrase many ways ("Hey, glasses.", "hey glass", "Hi glasses!"),
so matching is on normalised words with a fuzzy score, not on exact text. Normalising keeps
the letters and digits of every script ("привет очки", "你好眼镜"): a phrase that normalised
to nothing would otherwise match everything and silently switch the wake gate off.

Scripts written without spaces (Chinese, Japanese, Thai, ...) are matched character by
character: "你好眼镜这是什么" holds the phrase "你好眼镜" although no space follows it.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from difflib import SequenceMatcher

# Greetings Whisper substitutes for "hey" often enough to accept them.
_GREETINGS = {"hey", "hi", "hay", "he", "hei", "a", "ok", "okay", "hello", "yo"}
# "Wait" and "hold on" said alone over an answer: the wearer wants it to stop (it pauses at once, then stops).
_STOP_WORDS = {"stop", "cancel", "nevermind", "never mind", "shut up", "quiet", "be quiet", "stop it", "stop talking",
               "wait", "hold on", "hang on", "one moment", "one second", "wait a moment", "wait a second"}
# Fillers that may precede the wake phrase ("oh hey glasses").
_FILLERS = {"oh", "um", "uh", "so", "and", "well", "okay", "ok"}
_APOSTROPHES = "'\u2019\u02bc"  # "don't", "don’t": one word, written "dont"
# Combining marks that are accents on Latin, Greek and Cyrillic letters ("é", "ё", "й"): dropped.
# Marks of other scripts (Devanagari vowel signs, Japanese voicing marks) are part of the letter.
_ACCENTS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_UNSPACED = ("CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR", "TIBETAN", "YI ")

# Tests and benchmarks where every utterance is a question (never a user's choice: the command
# line refuses a phrase without letters). An empty phrase means no wake phrase at all.
EVERY_UTTERANCE = "*"


def _fold(ch: str) -> str:
    """One character's part of the normalised text: its folded letters, "" (joins), or " " (breaks)."""
    if ch in _APOSTROPHES:
        return ""
    folded = unicodedata.normalize("NFC", _ACCENTS.sub("", unicodedata.normalize("NFKD", ch.casefold())))
    if not folded:
        return ""  # an accent on its own belongs to the letter before it
    return "".join(c for c in folded if unicodedata.category(c)[0] in "LNM") or " "


def _unspaced(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith(_UNSPACED)


def normalise(text: str) -> str:
    """Case-folded words of any script separated by single spaces; accents and punctuation dropped."""
    folded = "".join(map(_fold, unicodedata.normalize("NFC", text)))
    return unicodedata.normalize("NFC", " ".join(folded.split()))


def tokens(text: str) -> list[tuple[str, int]]:
    """The normalised words of `text`, each with where it ends in `text`.

    A character of a script written without spaces is a word of its own, so a phrase in
    such a script is found however the transcript runs on after it."""
    out: list[tuple[str, int]] = []
    word, end = "", 0
    for i, ch in enumerate(text):  # `text` as given, so the ends index it (not its NFC form)
        folded = _fold(ch)
        if folded == " " or (folded and _unspaced(ch)):
            if word:
                out.append((word, end))
            word = ""
            if folded != " ":
                out.append((folded, i + 1))
            continue
        word += folded
        end = i + 1
    if word:
        out.append((word, end))
    return out


def has_letters(phrase: str) -> bool:
    """Whether a wake phrase can be heard at all: it needs letters (of any script)."""
    return any(unicodedata.category(c).startswith("L") for c in normalise(phrase))


def _join(words: list[str]) -> str:
    """Words back into text: spaces between words, none between characters of unspaced scripts."""
    out = ""
    for i, w in enumerate(words):
        if i and not (_unspaced(w[0]) and _unspaced(words[i - 1][-1])):
            out += " "
        out += w
    return out


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
    "glasses," still count. An empty phrase (no wake phrase) never matches.
    """
    if phrase == EVERY_UTTERANCE:
        return WakeMatch(True, text.strip())
    target = [w for w, _ in tokens(phrase)]
    if not target:
        return WakeMatch(False)
    found = tokens(text)
    norm = [w for w, _ in found]
    n = len(target)
    greeting = target[0] in _GREETINGS
    want = _join(target[1:] if greeting else target)
    for start in range(0, min(3, len(norm))):
        if start and norm[start - 1] not in _FILLERS:
            break  # the wake phrase must open the utterance, after fillers at most
        window = norm[start : start + n]
        if len(window) < n:
            break
        head_ok = not greeting or window[0] in _GREETINGS or _similar(window[0], target[0]) >= threshold
        tail = _join(window[1:] if greeting else window)
        # Each word must resemble its own, or a shared first word carries the match alone:
        # "привет, как дела" is not "привет очки". (Characters of unspaced scripts are compared
        # as one string: one of four may differ.)
        pairs = zip(window[1:], target[1:]) if greeting else zip(window, target)
        words_ok = all(_unspaced(t[0]) or _similar(w, t) >= 0.5 for w, t in pairs)
        if head_ok and words_ok and (not want or _similar(tail, want) >= threshold):
            rest = text[found[start + n - 1][1]:]
            skip = next((i for i, ch in enumerate(rest) if _fold(ch) != " "), len(rest))
            return WakeMatch(True, " ".join(rest[skip:].split()))
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
    if not tokens(phrase):
        return Decision("ignore", reason="no wake phrase is set: push-to-talk or a follow-up only")
    return Decision("ignore", reason="no wake phrase")

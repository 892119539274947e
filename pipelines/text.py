"""Splitting streamed answer text into pieces to speak, as a pure function.

Speech starts with the first sentence, not after the whole answer: each time the
model's stream completes a sentence (or a long clause), that piece goes to TTS.

The first piece is special, because the wearer is waiting for it (`first_piece`): it ends
at the first clause or sentence boundary, or after `first_words` words, whichever comes
first. Later pieces are whole sentences, rendered while the one before plays.
"""
from __future__ import annotations

import re
import unicodedata

# A sentence ends at . ! ? followed by a space; a clause at , ; : followed by a space.
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:]\s")
_ABBREV = ("e.g.", "i.e.", "mr.", "mrs.", "dr.", "st.", "vs.", "etc.", "no.")


def first_piece(buffer: str, first_words: int, *, min_chars: int = 12) -> tuple[list[str], str]:
    """The first piece of an answer: at the first clause or sentence end, or after `first_words`
    complete words (a word is complete when a space follows it), whichever comes first.
    `first_words` 0: whole sentences only, like the pieces after it."""
    if first_words <= 0:
        return split_ready(buffer, min_chars=min_chars)
    ready, _ = split_ready(buffer, min_chars=min_chars, clause_words=1)
    ends = [buffer.find(ready[0]) + len(ready[0])] if ready else []
    words = list(re.finditer(r"\S+\s", buffer))
    if len(words) >= first_words:
        ends.append(words[first_words - 1].end())
    if not ends:
        return [], buffer
    cut = min(ends)
    return [buffer[:cut].strip()], buffer[cut:].lstrip()


def split_ready(buffer: str, *, min_chars: int = 12, clause_words: int = 0) -> tuple[list[str], str]:
    """Take complete sentences off the front of `buffer`.

    Returns (pieces ready to speak, the rest still streaming). A sentence shorter than
    `min_chars` is merged with the next one so TTS is not called for "Yes." alone.
    If `clause_words` > 0, a clause boundary (comma, colon) after at least that many
    words also ends a piece: the first sound comes sooner on long sentences.
    """
    pieces: list[str] = []
    start = 0
    pos = 0
    while True:
        m = _SENTENCE_END.search(buffer, pos)
        c = _CLAUSE_END.search(buffer, pos) if clause_words else None
        if c and (not m or c.start() < m.start()) and len(buffer[start : c.end()].split()) >= clause_words:
            m = c
        if not m:
            break
        candidate = buffer[start : m.end()].strip()
        pos = m.end()
        if candidate.lower().endswith(_ABBREV) or len(candidate) < min_chars:
            continue  # keep growing this piece
        pieces.append(candidate)
        start = m.end()
    return pieces, buffer[start:]


def clean_for_speech(text: str) -> str:
    """Drop markup and characters a TTS engine would read out or choke on."""
    text = re.sub(r"[*_#`>|\[\]{}<>]", " ", text)
    # U+FFFD (a broken byte sequence) and control/unassigned characters make espeak-ng
    # silently write no audio at all, so they go; letters of any language stay.
    text = "".join(" " if ch == "\ufffd" or unicodedata.category(ch)[0] == "C" else ch for ch in text)
    return " ".join(text.split())

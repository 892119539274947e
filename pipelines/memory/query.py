"""Recall's pure parts: a question becomes a safe FTS5 query, and candidates are ranked.

A question's words go to SQLite's full-text index, whose query language has its own operators
(AND, OR, NOT, NEAR, quotes, `*`, `^`, `:`, parentheses, `-`). A wearer's words must never be
read as operators, so the question is cut into plain words (letters and digits only), the words
that say nothing about *what* was seen are dropped ("where did I leave my ..."), and each word
is quoted and OR-ed: an entry matches when it shares any word with the question, and BM25 ranks
entries sharing more, and rarer, words higher.

Ranking combines BM25 with recency in `rank` (documented there): for "where did I leave my
keys?" the latest sighting of the keys is the answer, but a clearly better match beats a
slightly newer, weaker one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MAX_TERMS = 16  # a rambling question cannot make one query arbitrarily expensive
MAX_TERM_CHARS = 40

# Words a question about the past is made of but a caption, a sign or an object never needs
# to share with it. Kept small on purpose: "off", "left" of a table, colours and places stay.
STOP_WORDS = frozenset("""
a an the i i'm me my mine myself we us our you your yours he him his she her it its they them their
this that these those there here where when what which who whom whose why how
do did does done doing was were is are am be been being have has had having will would shall
should can could may might must to of in on at by for with from into onto about as and or but
not no nor so if then than too very just again ever any some all please tell show remind
know knew see saw seen look looked looking find found lost leave leaving put placed last
time ago today yesterday earlier recently now hey ok okay remember recall thing things
say said says written write wrote read name named called
""".split())

_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # letters and digits in any script; no punctuation


def query_terms(question: str) -> list[str]:
    """The question's searchable words: lower case, no stop words, no duplicates, in order.

    Single letters are dropped (the "t" of "don't"), digits are kept ("B12", "4")."""
    terms: list[str] = []
    for word in _WORD.findall(question.casefold()):
        word = word[:MAX_TERM_CHARS]
        if word in STOP_WORDS or (len(word) == 1 and not word.isdigit()) or word in terms:
            continue
        terms.append(word)
        if len(terms) == MAX_TERMS:
            break
    return terms


def fts_query(terms: list[str]) -> str:
    """An FTS5 MATCH expression that is any of `terms`; "" when there are none.

    Each term is a quoted string, so no word can act as an operator; `query_terms` already
    keeps letters and digits only, and any quote is still doubled, as FTS5 escapes it."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms if t)


@dataclass(frozen=True)
class Candidate:
    id: int
    bm25: float  # sqlite's bm25(): negative, lower is better
    wall: float


@dataclass(frozen=True)
class Ranked:
    id: int
    score: float
    bm25: float
    recency: float


HALF_LIFE_S = 6 * 3600.0  # an entry's recency halves every 6 hours
RECENCY_WEIGHT = 0.5      # at most half of a perfect text match


def recency(age_s: float, half_life_s: float = HALF_LIFE_S) -> float:
    """1 for now, 0.5 after one half-life, towards 0 after; a future time counts as now."""
    return 0.5 ** (max(age_s, 0.0) / half_life_s)


def rank(candidates: list[Candidate], now: float, limit: int, *, weight: float = RECENCY_WEIGHT,
         half_life_s: float = HALF_LIFE_S) -> list[Ranked]:
    """The best `limit` candidates, best first.

    score = relevance + weight * recency, where relevance is the candidate's BM25 relative to
    the best BM25 among the candidates (the best is 1, one half as good 0.5). Relative because
    raw BM25 values grow with the size of the memory and the rarity of the words, while the
    trade-off against recency should not. With the defaults:
    - two equal matches: the newer wins;
    - a weaker match wins only with a recency lead above twice its relevance gap: one 80% as
      good as the best needs a lead above 0.4 (e.g. just seen, against 6 hours ago), one less
      than half as good never wins (the lead is at most 1);
    - minutes of difference (a lead of about 0.01) never outweigh a clearly better match.
    Ties go to the newer entry, then the higher id."""
    if not candidates or limit <= 0:
        return []
    best = min(c.bm25 for c in candidates)
    out = []
    for c in candidates:
        relevance = c.bm25 / best if best < 0 else 1.0
        r = recency(now - c.wall, half_life_s)
        out.append(Ranked(c.id, relevance + weight * r, c.bm25, r))
    walls = {c.id: c.wall for c in candidates}
    out.sort(key=lambda h: (h.score, walls[h.id], h.id), reverse=True)
    return out[:limit]

"""Memory's decisions as pure functions of words: what kind of memory question this is, what
fact it states, what it asks about, whether anything kept fits, which facts bear on it.
`pipelines/memory/skill.py` runs them; they test without a store, a model or a clock.

- `kind_of(question)`: "recall" (about the past), "remember", "list_facts", "forget_fact",
  "forget_all", or "" (not memory: the VLM answers). A question about the view now ("what is
  written here?", "what colour is the square?") is never memory; a recall question with nothing
  to look for ("what was that?") is not memory either, since the store could only say "I didn't
  see that" to a question the current frame may answer.
- `fitting(hits, question)`: the hits that name the thing the wearer asks about (`topic`). Scores
  rank; they do not decide: BM25 rises with any matched word, including one the question only
  happens to share ("the table" of "my passport on the table"), so a hit counts only when it
  names the thing asked about. Nothing fits -> "I didn't see that." The skill never guesses.

How it is told (times in words, the prompt, the image) is in pipelines/memory/prompt.py.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

from pipelines.wake import normalise, tokens

# --- what kind of question --------------------------------------------------------------
KINDS = ("recall", "remember", "list_facts", "forget_fact", "forget_all")

_FORGET_ALL = re.compile(
    r"^(?:(?:please|ok|okay|now|and) )*(?:forget|erase|delete|wipe|clear) (?:"
    r"everything|every thing"
    r"|all (?:of )?(?:it|that|your memory|your memories|memories|my data|you (?:know|remember|kept|saw))"
    r"|your (?:whole |entire )?memory|your memories|my data|what you know about me)\b")
# "forget it" is how people wave a question away: only "that" or words naming a stored thing delete.
_FORGET_FACT = re.compile(
    r"^(?:(?:please|no|ok|okay|oh|actually|never mind|nevermind|wait|and) )*(?:forget|delete|erase|scratch|remove) "
    r"(?:that|what i (?:just )?(?:said|told you)|the last (?:one|thing|fact)|the last thing i (?:said|told you))\b")
_REMEMBER = re.compile(
    r"^(?:(?:please|hey|ok|okay|and|also) )*(?:remember|dont forget|do not forget|memori[sz]e|note|make a note|"
    r"take a note|keep in mind)(?: (?:that|this))? (?P<rest>.+)$")
_REMEMBER_AFTER = re.compile(r"^(?P<rest>.+?) (?:please )?(?:remember|note|memori[sz]e) (?:that|this|it)(?: please)?$")
# "remember where I put ..." and "remember to ..." are not facts: a question, and a reminder (not kept).
_REMEMBER_NOT_A_FACT = re.compile(r"^(?:where|what|when|who|whom|which|how|if|whether|why|to|seeing|the name)\b")
_LIST_FACTS = re.compile(
    r"\bwhat (?:(?:do|did|else do|else did|have) )?you "
    r"(?:know|remember|learn|learned|kept|keep|got|noted) (?:about|of|on) me\b"
    r"|\bwhat (?:have|did) i (?:told|tell) you\b|\bwhat have i told you\b"
    r"|\b(?:list|tell me|read|say) (?:my|the|all|all my|your) (?:facts|notes)\b|\bwhat facts\b"
    r"|\bwhat (?:have|did) you (?:remembered|remember|noted|kept)\b|^what do you remember$"
    r"|\bwhat do you know about me\b")

_RECALL = re.compile("|".join((
    r"\bwhere (?:did|have|had|was|were) (?:i|we)\b",
    r"\bwhere(?:s| is| are| was| were) (?:my|our)\b",
    r"\b(?:have|did|had) (?:you|i|we) (?:\w+ )?(?:seen|see|saw|notice|noticed|spot|spotted|pass|passed|read)\b",
    r"\bdid (?:i|we) \w+",
    r"\bwhen (?:did|was|were|have) (?:i|we|you|the last|it|my)\b",
    r"\bwhat (?:was|were)\b",
    r"\bwhat did (?:i|we|it|the|that|those|my)\b",
    r"\b(?:which|what) \w+ (?:was|were|did)\b",
    r"\b(?:do|can|could) you (?:remember|recall)\b|\bremember (?:where|what|when|who|which|how|if|whether)\b",
    r"\b(?:earlier|yesterday|last time|this morning|this afternoon|previously|the other day|a while ago)\b",
    r"\b(?:minutes?|hours?|seconds?|moment|while|bit) ago\b",
    r"\bthe name of that\b",
    r"^remember (?:that|those|the)\b",  # what is left of "remember that ..." after fact_of: a question
)))
# Words that put a question in the present view: "what is written here", "did I do this right".
_HERE_NOW = re.compile(r"\b(?:this|these|here|right now|currently|at the moment)\b")
_PAST_TIME = re.compile(r"\b(?:earlier|yesterday|ago|last time|this morning|this afternoon|before)\b")
# About the conversation, not the world: the session's history answers those.
_ABOUT_TALK = re.compile(
    r"\b(?:what|did) (?:did )?you (?:just )?(?:say|said|mean|tell me)\b"
    r"|\byou (?:just )?said\b|\byour (?:last )?answer\b"
    r"|\bwhat did i (?:just )?(?:say|ask|said)\b|\bmy (?:last )?question\b"
    r"|\bwe (?:were )?(?:talking|talked|discussing|discussed|saying)\b")

# Words that carry no "what": question words, pronouns, verbs of seeing and leaving, fillers.
STOP_WORDS = frozenset("""
a an the and or but of to in on at by for from with without into onto off out up down over under near next
about above below behind beside between inside outside around
i me my mine myself we us our you your yours he she it its they them their this that these those there here
is are was were be been being am do does did done have has had having will would can could should shall may might
must not no yes
what where when which who whom whose why how whats wheres whens
leave left leaving put putting place placed set see saw seen seeing look looked looking notice noticed spot spotted
last lastly first earlier before ago yesterday today morning afternoon evening night time times while moment minute
minutes hour hours second seconds just now still again ever once recently previously other day
remember recall forget know think tell say said written write wrote read name named called
turn turned switch switched lock locked close closed open opened shut unplug unplugged leave go went gone come came
get got find found keep kept take took bring brought pass passed visit visited buy bought
please ok okay oh um uh so then well also really doing happen happened
thing things something anything stuff one ones some any all
colour color colours colors kind type sort brand size shape number price
""".split())


def words(text: str) -> list[str]:
    return normalise(text).split()


def stem(word: str) -> str:
    """A light stem so that "keys" finds "key", "glasses" "glass" and "parked" "parking"."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "xes", "ches", "shes", "zes")):
        return word[:-2]
    if len(word) > 5 and (word.endswith("ing") or (word.endswith("ed") and not word.endswith("eed"))):
        base = word[:-3] if word.endswith("ing") else word[:-2]
        return base[:-1] if len(base) > 2 and base[-1] == base[-2] and base[-1] not in "lsz" else base
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def content_words(text: str, stemmed: bool = True) -> list[str]:
    """What `text` is about: its words less STOP_WORDS, in order, without repeats; stemmed, or as
    said (for the store, whose index stems with Porter itself)."""
    out: list[str] = []
    for w in words(text):
        s = stem(w)
        kept = s if stemmed else w
        if w not in STOP_WORDS and s not in STOP_WORDS and kept not in out and not (len(s) == 1 and not s.isdigit()):
            out.append(kept)
    return out


def kind_of(question: str) -> str:
    """"recall" | "remember" | "list_facts" | "forget_fact" | "forget_all" | "" (not memory)."""
    q = " ".join(words(question))
    if not q:
        return ""
    if _FORGET_ALL.search(q):
        return "forget_all"
    if _FORGET_FACT.search(q):
        return "forget_fact"
    if _LIST_FACTS.search(q):
        return "list_facts"
    if fact_of(question):
        return "remember"
    if _ABOUT_TALK.search(q):
        return ""
    if not _RECALL.search(q):
        return ""
    if _HERE_NOW.search(q) and not _PAST_TIME.search(q):
        return ""  # "what is written here", "where did this come from": the view now
    if not content_words(q) and ago_of(question) is None:
        return ""  # "what was that?": nothing to look for in memory; the current frame may answer
    return "recall"


def ago_of(question: str) -> float | None:
    """The seconds of "an hour ago", "twenty minutes ago" in a question ("what was I doing an hour
    ago?"); None without such a time. Read by the timers' duration parser, so both read alike."""
    from pipelines.skills.timers import duration_runs, tokenize  # timers imports this module

    norm = " ".join(t.norm for t in tokenize(question))
    return next((seconds for _, end, seconds in duration_runs(norm) if re.match(r"\s*ago\b", norm[end:])), None)


def fact_of(question: str) -> str:
    """The fact in "remember that my parking spot is B12" ("my parking spot is B12"), as said
    (case and digits kept: "B12"), or "" when the words store no fact. A question ("remember
    that café?") is no fact."""
    said = question.strip()
    toks = tokens(said)
    q = " ".join(w for w, _ in toks)
    m = _REMEMBER.match(q) or _REMEMBER_AFTER.match(q)
    if (not m or said.endswith("?") or _REMEMBER_NOT_A_FACT.match(m.group("rest"))
            or not content_words(m.group("rest"))):
        return ""
    n = len(m.group("rest").split())  # the fact's words, cut from what was said (tokens know where)
    if m.re is _REMEMBER:
        first = len(toks) - n
        text = said[toks[first - 1][1] if first > 0 else 0:]
    else:
        text = said[:toks[n - 1][1]]
    text = text.strip(" \t,;:.!?\"'")
    first_word = text.split(" ", 1)[0]
    return first_word.lower() + text[len(first_word):] if first_word in _LOWER_FIRST else text


_LOWER_FIRST = {"My", "Our", "The", "A", "An", "Your"}  # a sentence's capital, not a name's


def forget_target(question: str) -> str:
    """What "forget that my parking spot is B12" names after "forget that" ("" for "forget that")."""
    q = " ".join(words(question))
    m = _FORGET_FACT.search(q)
    return q[m.end():].strip() if m else ""


# --- facts in the wearer's words, spoken back ---------------------------------------------
_SECOND_PERSON = (
    (r"\bi am\b", "you are"), (r"\bi'm\b", "you're"), (r"\bim\b", "you're"), (r"\bi was\b", "you were"),
    (r"\bi've\b", "you've"), (r"\bi'll\b", "you'll"), (r"\bi'd\b", "you'd"), (r"\bmyself\b", "yourself"),
    (r"\bmine\b", "yours"), (r"\bmy\b", "your"), (r"\bme\b", "you"), (r"\bi\b", "you"),
)


def to_second_person(fact: str) -> str:
    """"my parking spot is B12" -> "your parking spot is B12" (the wearer's words, said back)."""
    out = fact
    for pattern, repl in _SECOND_PERSON:
        out = re.sub(pattern, repl, out, flags=re.IGNORECASE)
    return out


def relevant_facts(facts: Iterable, question: str, limit: int = 3) -> list[str]:
    """The facts (Fact rows or strings) that share a word with `question`, most shared first,
    then newest first; each in the second person, ready for a prompt. At most `limit`."""
    asked = set(content_words(question))
    if not asked:
        return []
    scored = []
    for i, fact in enumerate(facts):
        text = getattr(fact, "text", fact)
        shared = len(asked & set(content_words(text)))
        if shared:
            scored.append((-shared, -i, to_second_person(text)))
    return [text for _, _, text in sorted(scored)[:limit]]


FACTS_NOTE = "What the wearer told you about themselves (use it if it helps): {facts}."


def facts_note(facts: Iterable, question: str) -> str:
    """A sentence for the system prompt of any answer, or "" when no fact bears on `question`."""
    found = relevant_facts(facts, question)
    return FACTS_NOTE.format(facts="; ".join(found)) if found else ""


# --- does anything fit ------------------------------------------------------------------
def entry_words(entry) -> set[str]:
    return set(content_words(" ".join((entry.caption, entry.text, " ".join(entry.objects)))))


_DETERMINERS = frozenset("my our the that those a an his her their your this these".split())


def topic(question: str) -> str:
    """The thing asked about, stemmed: the last word of the first phrase after a determiner that
    has content ("my car keys" -> "key", "the name of that café" -> "cafe", "the stove" -> "stove");
    "" when there is none ("where did I park?")."""
    ws = words(question)
    for i, w in enumerate(ws):
        if w not in _DETERMINERS:
            continue
        phrase = []
        for nxt in ws[i + 1:]:
            if nxt in STOP_WORDS or stem(nxt) in STOP_WORDS or nxt in _DETERMINERS:
                break
            phrase.append(stem(nxt))
        if phrase:
            return phrase[-1]
    return ""


def fitting(hits: Sequence, question: str = "", min_score: float = 0.0) -> list:
    """The hits an answer may rest on, newest first: score at least `min_score` and, when `question`
    is given, naming what it asks about: its `topic` when it has one ("did I leave my passport on
    the table?" needs the passport, not any table), else any of its content words.

    Newest first, not by score: once entries name the thing, the latest sighting answers "where did
    I leave it" (where it is now) and "what did the whiteboard say" (what it said last). The store's
    score, which may prefer a shorter caption from hours ago, only chose the candidates."""
    head = topic(question) if question else ""
    asked = {head} if head else set(content_words(question))
    kept = [h for h in hits if h.score >= min_score and (not question or asked & entry_words(h.entry))]
    return sorted(kept, key=lambda h: (h.entry.wall, h.entry.id), reverse=True)


def fits(hits: Sequence, question: str = "", min_score: float = 0.0) -> bool:
    """Whether an answer may rest on any of `hits`; when not, the skill says it did not see that."""
    return bool(fitting(hits, question, min_score))


def search_query(question: str) -> str:
    """What the store is searched for: the question's content words ("keys", "whiteboard")."""
    return " ".join(content_words(question, stemmed=False))

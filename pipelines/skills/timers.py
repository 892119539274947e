"""Timers and reminders in words: what the wearer asked for, and what to say, as pure functions.

`parse_when(text, now_wall)` turns "set a timer for 5 minutes", "remind me to call mum at 6 pm"
or "remind me tomorrow at 9 to call the bank" into a `When`: the wall time it is due, what to
remind of, and its kind ("timer" | "reminder"). It returns None whenever the words could mean
two things or name a day it does not handle ("on Monday", "next week"): the skill then asks
again. A wrong timer is worse than a question.

Why a small parser of our own rather than a library: on this module's phrasing table (the 38
phrases of tests/test_timers.py) `dateparser` 1.5 (search_dates, future preference) got 27
right and `parsedatetime` 2.6 got 23; both were silently wrong where it matters: "half an
hour" became an hour, "1.5 hours" 7 PM, "an hour and a half" an hour, "half past six" and
"at 6" nothing, and dateparser read "on Monday at 9" as a date in September of next year.
dateparser also brings ~10 MB (regex, pytz, tzlocal). The phrasings of a spoken timer are few.

Rules, so that a log reader can predict the answer:
- Durations: numbers in digits or words (one..sixty, "twenty-five"), "a"/"an", "1.5 hours",
  "half an hour", "an hour and a half", "two and a half hours", "a quarter of an hour",
  several parts ("1 hour 30 minutes").
- Times of day: "6 pm", "7:15 a.m.", "18:30", "noon", "midnight", "half past six",
  "quarter to seven", "at 6" / "6 o'clock". A bare hour without am/pm is the next one to come
  (at 2 PM "at 6" is 6 PM, at 11 PM it is 6 AM); with a day named ("tomorrow at 9") 7-11 are
  morning hours and 12-6 afternoon ones; "in the morning", "tonight", "this evening" decide.
  A time of day already passed today is tomorrow, unless "today"/"tonight" was said (then the
  due time is in the past and the skill says so).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from pipelines.memory.recall import to_second_person

# --- words to tokens ------------------------------------------------------------------------
_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60}
_APOSTROPHES = "'\u2019\u02bc"
_PIECE = re.compile(r"\d+(?:[:.]\d+)?|[^\W\d_]+")


@dataclass(frozen=True)
class Token:
    norm: str  # lower case, numbers in digits
    said: str  # as the wearer said it (case kept), for the reminder's words


def tokenize(text: str) -> list[Token]:
    """Words in lower case with numbers in digits ("twenty-five" -> "25", "6pm" -> "6", "pm",
    "a.m." -> "am"), each keeping how it was said."""
    out: list[Token] = []
    for word in text.split():
        said = word.strip(".,;:!?\"()[]")
        low = re.sub(r"\b([ap])\.\s?m\b\.?", r"\1m", word.lower())
        low = "".join(c for c in low if c not in _APOSTROPHES).replace("-", " ")
        pieces = _PIECE.findall(low)
        for piece in pieces:
            out.append(Token(piece, said if len(pieces) == 1 else piece))
    merged: list[Token] = []
    for tok in out:  # "twenty five" -> 25, "one" -> 1
        if tok.norm in _UNITS and merged and merged[-1].norm in _TENS and 0 < _UNITS[tok.norm] < 10:
            prev = merged.pop()
            merged.append(Token(str(_TENS[prev.norm] + _UNITS[tok.norm]), f"{prev.said} {tok.said}"))
        else:
            merged.append(tok)
    return [Token(str(_UNITS.get(t.norm, _TENS.get(t.norm, t.norm))), t.said) for t in merged]


# --- what the words name --------------------------------------------------------------------
NUM = r"\d+(?:\.\d+)?"
UNIT = r"(?:hours?|hrs?|h|minutes?|mins?|min|seconds?|secs?|sec|days?)"
_SECONDS = {"h": 3600, "m": 60, "s": 1, "d": 86400}
DURATION_PART = re.compile(
    rf"\b(?:(?P<n>{NUM}|an?|a couple of|a couple) (?P<u>{UNIT})(?P<half> and a half)?"
    rf"|(?P<n2>\d+|an?) and a half (?P<u2>{UNIT})"
    rf"|half (?:an? )?(?P<u3>hour|minute)"
    rf"|(?P<q>(?:a |1 |3 )?quarters?) (?:of )?(?:an? )?hour)\b")
_JOIN = re.compile(r"^(?: and| plus)? $")  # between two parts of one duration
_BEFORE_DURATION = re.compile(r"\b(?:in|after|within|for)\s*$")
_AFTER_DURATION = re.compile(r"^\s*(?:s )?(?:from now|later|time)\b")
_AT = r"(?:(?:at|by|around|about|for) )?"
CLOCK = re.compile("|".join((
    rf"\b{_AT}(?P<word>noon|midday|midnight)\b",
    rf"\b{_AT}(?P<m>half|quarter|\d{{1,2}})(?: minutes?)? (?P<dir>past|after|to|till|til) (?P<h1>\d{{1,2}})"
    rf"(?: (?P<ap1>am|pm))?\b",
    rf"\b{_AT}(?P<h2>\d{{1,2}})(?:[:.](?P<mm2>\d{{2}})| (?P<mm2b>\d{{2}}))? (?P<ap2>am|pm)\b",
    rf"\b{_AT}(?P<h3>\d{{1,2}})[:](?P<mm3>\d{{2}})\b",
    r"\b(?:at|by|around) (?P<h4>\d{1,2})(?:[.](?P<mm4>\d{2})| (?P<mm4b>[0-5]\d))?(?: oclock)?\b",
    r"\b(?P<h5>\d{1,2}) oclock\b",
)))
DAY = re.compile(r"\b(?P<day>today|tonight|tomorrow)(?: (?P<part1>morning|afternoon|evening|night))?\b"
                 r"|\b(?:this|in the) (?P<part2>morning|afternoon|evening)\b|\bat (?P<part3>night)\b")
# Days, dates and repeats this parser does not handle: their presence makes the words unparseable
# (else "remind me on Monday at 9" would be read as today's 9 o'clock).
OTHER_DAY = re.compile(
    r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekend|"
    r"(?:next|this|a|in a|every|per|one) (?:week|month|year)|"
    r"january|february|march|april|june|july|august|september|october|november|december|"
    r"day after|\d+ (?:st|nd|rd|th)|"
    r"every (?:day|morning|afternoon|evening|night|hour|\w+day)|daily|weekly|hourly)\b")
_PM_PARTS = {"afternoon", "evening", "night", "tonight"}


@dataclass(frozen=True)
class When:
    due: datetime  # wall time, of the same kind (naive or aware) as the `now_wall` it came from
    what: str  # a reminder's words in the second person ("call your mum"), a timer's label, or ""
    kind: str  # "timer" | "reminder"
    said: str = ""  # the time in words for the confirmation: "5 minutes", "6 PM", "9 AM tomorrow"
    length: timedelta | None = None  # a duration's length; None for a time of day


def parse_when(text: str, now_wall: datetime) -> When | None:
    """The timer or reminder that `text` asks for, from `now_wall`; None when no time in it can
    be read with certainty. Amounts are not checked here (0 or 30 hours parse; the skill refuses)."""
    toks = tokenize(text)
    norm = " ".join(t.norm for t in toks)
    kind = "reminder" if re.search(r"\b(?:remind|reminder|wake|alarm)\b", norm) else "timer"
    if OTHER_DAY.search(norm):
        return None
    used: list[tuple[int, int]] = []  # character spans of `norm` that the time took
    clocks = clock_matches(norm, kind)
    runs = [r for r in duration_runs(norm) if not any(_overlaps(r[:2], c.span()) for c in clocks)]
    days = list(DAY.finditer(norm))
    if len(clocks) > 1 or len(days) > 1 or (clocks and runs):
        return None
    if clocks:
        due = clock_due(clocks[0], days[0] if days else None, now_wall)
        if due is None:
            return None
        used = [clocks[0].span()] + ([days[0].span()] if days else [])
        said, length = clock_words(due, now_wall), None
    else:
        if len(runs) != 1 or days:  # none, or two ("in 5 minutes ... for 10 minutes"): which one?
            return None
        start, end, seconds = runs[0]
        length = timedelta(seconds=seconds)
        due = _add(now_wall, length)
        used = [(start, end)]
        said = duration_words(length)
    what = _leftover(toks, norm, used)
    words = reminder_words(what) if kind == "reminder" else timer_label(what)
    if words is None and kind == "timer" and _task_follows(what):  # "a timer for 5 minutes to take the bread out"
        kind, words = "reminder", reminder_words(what)
    if words is None:
        return None
    return When(due, words, kind, said, length)


def clock_matches(norm: str, kind: str) -> list[re.Match]:
    """The times of day in the words. "2 to 3" needs "at" to be a time ("buy 2 to 3 apples"); a
    timer's "for 5:30" could be a length: a timer takes a time of day only with am/pm, noon,
    midnight or "at"."""
    out = []
    for m in CLOCK.finditer(norm):
        at = re.match(r"(?:at|by|around|about) ", m.group(0))
        if m.group("m") and m.group("m").isdigit() and not at:
            continue
        if kind == "timer" and not (at or m.group("word") or m.group("ap1") or m.group("ap2")):
            continue
        out.append(m)
    return out


def duration_runs(norm: str) -> list[tuple[int, int, float]]:
    """(start, end, seconds) of each duration in the words; adjacent parts are one duration
    ("1 hour 30 minutes", "2 hours and 15 minutes"), with "in"/"for" and "from now" taken along."""
    runs: list[list] = []
    for m in DURATION_PART.finditer(norm):
        seconds = _part_seconds(m)
        if runs and _JOIN.match(norm[runs[-1][1]:m.start()]):
            runs[-1][1], runs[-1][2] = m.end(), runs[-1][2] + seconds
        else:
            runs.append([m.start(), m.end(), seconds])
    out = []
    for start, end, seconds in runs:
        before, after = _BEFORE_DURATION.search(norm[:start]), _AFTER_DURATION.match(norm[end:])
        out.append((before.start() if before else start, end + (after.end() if after else 0), seconds))
    return out


def _part_seconds(m: re.Match) -> float:
    if m.group("q"):
        return {"3": 2700}.get(m.group("q").split()[0], 900)
    if m.group("u3"):
        return _SECONDS[m.group("u3")[0]] / 2
    n, unit = (m.group("n"), m.group("u")) if m.group("u") else (m.group("n2"), m.group("u2"))
    amount = 2.0 if n.startswith("a couple") else 1.0 if n in ("a", "an") else float(n)
    if m.group("half") or m.group("u2"):
        amount += 0.5
    return amount * _SECONDS[unit[0]]


def clock_due(m: re.Match, day: re.Match | None, now: datetime) -> datetime | None:
    """The wall time a time of day names, by the rules in the module's doc; None when invalid."""
    g = m.groupdict()
    part = (day.group("part1") or day.group("part2") or day.group("part3")) if day else None
    named = day.group("day") if day else None
    if named == "tonight":
        part = part or "tonight"
    if g["word"]:
        hour, minute, ap = (0 if g["word"] == "midnight" else 12), 0, "fixed"
    elif g["h1"]:
        hour = int(g["h1"])
        minute = {"half": 30, "quarter": 15}.get(g["m"]) or int(g["m"])
        if g["dir"] in ("to", "till", "til"):
            hour, minute = hour - 1, 60 - minute
        ap = g["ap1"]
        if hour < 0 or minute <= 0 or minute >= 60:
            return None
        hour = hour or 12  # "quarter to one"
    else:
        h = next(k for k in ("h2", "h3", "h4", "h5") if g[k])
        hour = int(g[h])
        minute = int(g.get({"h2": "mm2", "h3": "mm3", "h4": "mm4"}.get(h, "")) or
                     g.get({"h2": "mm2b", "h4": "mm4b"}.get(h, "")) or 0)
        ap = g["ap2"] if h == "h2" else ("fixed" if g[h].startswith("0") or hour > 12 or hour == 0 else None)
    if hour > 23 or minute > 59 or (ap in ("am", "pm") and not 1 <= hour <= 12):
        return None
    if ap == "am":
        hour = 0 if hour == 12 else hour
    elif ap == "pm":
        hour = hour if hour == 12 else hour + 12
    elif ap is None and part in ("night", "tonight") and (hour <= 5 or hour == 12):
        hour, part, named = hour % 12, None, None  # "tonight at 1": the coming 1 AM
        ap = "am"
    elif ap is None and part:
        hour = hour if part == "morning" and hour == 12 else hour % 12 + (12 if part in _PM_PARTS else 0)
    elif ap is None and named:
        hour = hour if 7 <= hour <= 12 else (hour % 12) + 12  # "tomorrow at 9": 9 AM; "at 3": 3 PM
    at = lambda h, d: now.replace(hour=h, minute=minute, second=0, microsecond=0) + timedelta(days=d)
    if named in ("today", "tonight"):
        return at(hour, 0)
    if named == "tomorrow":
        return at(hour, 1)
    hours = [hour] if ap is not None or part else [hour, (hour + 12) % 24]
    return min((at(h, d) for d in (0, 1) for h in hours if at(h, d) > now), default=None)


def _add(now: datetime, length: timedelta) -> datetime:
    """`now` + `length` in elapsed time (an aware time crosses a clock change correctly)."""
    if now.tzinfo is None:
        return now + length
    return (now.astimezone(timezone.utc) + length).astimezone(now.tzinfo)


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _leftover(toks: list[Token], norm: str, used: list[tuple[int, int]]) -> list[Token]:
    """The tokens outside the time's spans."""
    out, pos = [], 0
    for tok in toks:
        span = (pos, pos + len(tok.norm))
        if not any(_overlaps(span, u) for u in used):
            out.append(tok)
        pos = span[1] + 1
    return out


# --- what is left: the reminder's words, or a timer's label -----------------------------------
_LEAD = re.compile(
    r"^(?:(?:um|uh|er|hey|ok|okay|so|and|please|hi|oh|glasses|now|also|just|then) )*"
    r"(?:(?:can|could|would|will) you (?:please )?|i (?:want|need|would like|d like) you to |please )?"
    r"(?:(?:remind|wake) me(?: up)?|(?:set|make|create|add|put|start|give me|set up) "
    r"(?:me )?(?:an? |my |the |another |new )*(?:[^\W\d_]+ )?(?:reminder|alarm|timer)s?"
    r"|(?:a |an )?(?:reminder|alarm|timer)|count ?down)\b")
_FILLER_WORDS = {"please", "ok", "okay", "thanks", "thank", "you", "now", "for", "me", "up"}
_LEADING = {"to", "that", "about", "of", "at", "in", "on", "by", "for", "and", "please", "then", "so", "also", "up"}
_TRAILING = {"at", "in", "on", "by", "for", "and", "to", "of", "about", "the", "a", "an", "please", "then", "okay",
             "ok", "thanks", "so", "around", "after", "before", "from", "up", "also", "today"}
_NOT_WORDS = re.compile(rf"\b(?:{UNIT}|half|quarter|am|pm|oclock|sometime|sometimes|later|soon|in an? (?:while|bit))\b")


def reminder_words(toks: list[Token]) -> str | None:
    """"to call mum" -> "call your mum" (second person, as said); "" for none; None when a stray
    time word is left ("remind me sometime", "in a few minutes"): the time was not understood."""
    norm = " ".join(t.norm for t in toks)
    lead = _LEAD.match(norm)
    rest = _strip(toks, len(lead.group(0).split()) if lead else 0, norm)
    if re.match(r"(?:to )?wake(?: up)?$|$", " ".join(t.norm for t in rest)) and "wake" in norm:
        return "wake up"
    text = " ".join(t.norm for t in rest)
    if _NOT_WORDS.search(text) or re.search(r"\d", text) and not re.search(r"[^\W\d_]", text):
        return None
    duty = re.match(r"i (?:need to|have to|must|should|ought to|want to) ", text)
    rest = rest[len(duty.group(0).split()):] if duty else rest
    return to_second_person(" ".join(t.said for t in rest)).strip(" ,.;:")


def _task_follows(toks: list[Token]) -> bool:
    norm = " ".join(t.norm for t in toks)
    lead = _LEAD.match(norm)
    return bool(lead) and norm[lead.end():].startswith(" to ")


def timer_label(toks: list[Token]) -> str | None:
    """"for the pasta" -> "pasta" (a timer's name, said in "your pasta timer"); "" for none; None
    when anything else is left ("set a timer for five": a number without its unit)."""
    norm = " ".join(t.norm for t in toks)
    named = re.search(r"\b(?:a|an|my|the) (?P<label>[^\W\d_]+) timer\b", norm)
    if named and named.group("label") not in ("new", "quick", "short", "long", "another", "countdown", "kitchen"):
        return named.group("label")
    lead = _LEAD.match(norm)
    rest = _strip(toks, len(lead.group(0).split()) if lead else 0, norm)
    text = " ".join(t.norm for t in rest)
    m = re.fullmatch(r"(?:for )?(?:the |my )?(?P<label>[^\W\d_]+(?: [^\W\d_]+)?)", text)
    if not text:
        return ""
    if m and not _NOT_WORDS.search(text) and m.group("label").split()[-1] not in ("timer", "it", "that", "this"):
        return " ".join(t.said for t in rest[-len(m.group("label").split()):])
    return None


def _strip(toks: list[Token], skip: int, norm: str) -> list[Token]:
    rest = [t for t in toks[skip:] if t.norm not in ("um", "uh", "er")]
    while rest and rest[0].norm in _LEADING:
        rest = rest[1:]
    while rest and (rest[-1].norm in _TRAILING or rest[-1].norm in _FILLER_WORDS):
        rest = rest[:-1]
    return rest


# --- saying it -------------------------------------------------------------------------------
def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" + ("" if n == 1 else "s")


def duration_words(length: timedelta, adjective: bool = False) -> str:
    """"5 minutes", "1 hour 30 minutes", "90 seconds"; as an adjective "5 minute", "90 second"."""
    total = round(length.total_seconds())
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    if not h and m < 2 and s:  # "90 seconds", "45 seconds"
        m, s = 0, total
    parts = [(h, "hour"), (m, "minute"), (s, "second")]
    said = [f"{n} {u}" if adjective else _count(n, u) for n, u in parts if n]
    return " ".join(said) if said else ("0 second" if adjective else "0 seconds")


def left_words(left: timedelta) -> str:
    """Time left, rounded as a person would say it: "3 minutes 20 seconds", "2 hours 5 minutes",
    "less than a second"."""
    total = max(0, round(left.total_seconds()))
    if total == 0:
        return "less than a second"
    if total >= 600:  # seconds no longer matter past ten minutes
        total = round(total / 60) * 60
    return duration_words(timedelta(seconds=total))


def clock_words(due: datetime, now: datetime) -> str:
    """"6 PM", "6:30 PM", "noon", "midnight", with " tomorrow" when it is not today."""
    if (due.hour, due.minute) == (12, 0):
        said = "noon"
    elif (due.hour, due.minute) == (0, 0):
        said = "midnight"
    else:
        hour = due.hour % 12 or 12
        said = f"{hour}{f':{due.minute:02d}' if due.minute else ''} {'AM' if due.hour < 12 else 'PM'}"
    days = (due.date() - now.date()).days
    if said == "midnight" and days == 1:
        return said  # tonight's midnight is tomorrow's date: "midnight tomorrow" would mean a day later
    return said + {0: "", 1: " tomorrow", -1: " yesterday"}.get(days, f" on {due:%d %B}")

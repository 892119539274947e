"""The timers skill: sets, lists and cancels timers and reminders, and says them when they are due.

- `intent_of(question)` (pure): "set" | "list" | "cancel" | "". Only timer and reminder words
  are taken: "remind me ..." is this skill's, "remember ..." is memory's
  (pipelines/memory/recall.py), and "what time is it?" is the VLM's.
- `TimerSkill(store, wall)`: `wall` maps session seconds to wall time, so a replay runs the
  timers on its own clock. A question's "now" is the end of its speech (`ctx.end`). Times are
  kept as wall times, so a restart keeps them; one that fell due while the glasses were off is
  said at the first `due()` with the time it was due.
- `due(now)`: the texts to say at session second `now`, each exactly once. The session's hearing
  thread calls it after every audio chunk while the answer thread may add a timer: one lock
  guards the list and the store's writes.
- The store (`TimerStore`): `load()` and `save(timers)` of the whole list (at most MAX_PENDING).
  `JsonTimerStore` writes atomically and never overwrites a file it could not read: a corrupt
  file is renamed aside with a warning. `MemoryTimerStore` is for tests.
"""
from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Protocol

from pipelines.memory.recall import content_words
from pipelines.modes import ModeContext, ModeResult
from pipelines.skills.base import matches, say
from pipelines.skills.timers import clock_words, duration_words, left_words, parse_when, tokenize

log = logging.getLogger("timers")

MAX_PENDING = 50  # timers and reminders together; the next one is refused with a sentence
MAX_LENGTH = timedelta(hours=24)
LATE = timedelta(seconds=60)  # said later than this (the glasses were off): the due time is said too
SPOKEN = 5  # "what timers do I have?" reads at most this many, then "and N more"
ASK_AGAIN = "When should I set it for? Say for example: 5 minutes, or at 6 PM."
TOO_SHORT = "A timer needs some time. Say for example: set a timer for 5 minutes."
TOO_LONG = "I can only set timers up to 24 hours ahead."
TOO_MANY = f"You already have {MAX_PENDING} timers and reminders. Cancel one first."
NONE_SET = "You have no timers or reminders."
NOT_SAVED = " But I couldn't save it, so it won't survive a restart."

# --- what is asked (pure) --------------------------------------------------------------------
_NOUN = r"(?:timers?|reminders?|alarms?)"
_CANCEL = re.compile(rf"\b(?:cancel|stop|delete|remove|clear|turn off|switch off|dismiss|scrap|forget)"
                     rf"(?: \w+){{0,6}}? {_NOUN}\b")
_SET = re.compile(
    r"\bremind me\b(?! (?:what|where|who|which|how|why|whether|if|of what)\b)|\bwake me\b"
    r"|\b(?:set|start|make|create|add|put on|put|give me|set up)(?: \w+){0,4}? (?:timer|reminder|alarm)\b")
# Weaker: "timer 90 seconds", "5 minute timer"; a question about a timer ("how long is left on my 5
# minute timer?") is a list, so these count only when it is not one.
_SET_SHORT = re.compile(
    r"\btimer (?:for )?(?:\d|an? |one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|forty|fifty"
    r"|sixty|half)|\b\w+ (?:minute|second|hour) timer\b"
    r"|\bcount ?down (?:from |for )?\w+ (?:minutes?|seconds?|hours?)\b")
_LIST = re.compile(rf"\b(?:my|the|any|all|your|active|running|pending)(?: \w+){{0,3}} {_NOUN}\b"
                   r"|\b(?:timers|reminders|alarms)\b")
_ASKS = re.compile(r"^(?:\w+ )*?(?:what|whats|which|hows|any|list|show|read|tell me|how|when|do i|did i|are there"
                   r"|is there|have i|is my|is the|are my|check)\b")


def is_bare_time(text: str, words: int = 6) -> bool:
    """A time and little else ("5 minutes", "at 6 pm", "in half an hour"): the answer to "when?"."""
    return len(text.split()) <= words and parse_when(text, datetime(2000, 1, 1, 12)) is not None


def intent_of(question: str) -> str:
    """"set" | "list" | "cancel" | "" (not a timer question)."""
    if matches(_CANCEL, question):
        return "cancel"
    if matches(_SET, question):
        return "set"
    if matches(_LIST, question) and matches(_ASKS, question):
        return "list"
    return "set" if matches(_SET_SHORT, question) else ""


# --- what is kept ----------------------------------------------------------------------------
@dataclass
class Timer:
    id: int
    due: datetime
    what: str  # a reminder's words ("call mum"), a timer's label ("pasta"), or ""
    kind: str  # "timer" | "reminder"
    said: str  # the time as confirmed: "5 minutes", "6 PM"
    length_s: float | None  # a timer's length in seconds; None for a time of day

    def to_json(self) -> dict:
        return {**asdict(self), "due": self.due.isoformat()}

    @classmethod
    def from_json(cls, row: dict) -> "Timer":
        if row.get("kind") not in ("timer", "reminder"):
            raise ValueError(f"unknown kind {row.get('kind')!r}")
        length = row.get("length_s")
        return cls(int(row["id"]), datetime.fromisoformat(row["due"]), str(row.get("what", "")), row["kind"],
                   str(row.get("said", "")), None if length is None else float(length))


class TimerStore(Protocol):
    def load(self) -> list[Timer]: ...

    def save(self, timers: list[Timer]) -> None: ...


class MemoryTimerStore:
    """Keeps the list in memory (tests; a session that should forget its timers)."""

    def __init__(self, timers: list[Timer] | None = None):
        self.timers = list(timers or [])

    def load(self) -> list[Timer]:
        return list(self.timers)

    def save(self, timers: list[Timer]) -> None:
        self.timers = list(timers)


class TimerStoreError(Exception):
    """The timers file exists but cannot be read (permissions): one line naming it."""


class JsonTimerStore:
    """A JSON file: {"version": 1, "timers": [...]}. Written to a temporary file in the same folder
    and moved over the old one (os.replace), so a crash leaves the old file or the new, never half."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def load(self) -> list[Timer]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as err:
            if isinstance(err, UnicodeDecodeError):
                return self._aside(f"it is not text ({err.reason})", [])
            raise TimerStoreError(f"cannot read the timers file {self.path}: {err.strerror or err}") from None
        try:
            rows = json.loads(text)["timers"]
            if not isinstance(rows, list):
                raise TypeError("'timers' is not a list")
        except (ValueError, KeyError, TypeError) as err:
            return self._aside(f"it is not a timers file ({err})", [])
        kept, bad = [], 0
        for row in rows:
            try:
                kept.append(Timer.from_json(row))
            except (ValueError, KeyError, TypeError, AttributeError):
                bad += 1
        return self._aside(f"{bad} of its entries could not be read", kept) if bad else kept

    def _aside(self, why: str, kept: list[Timer]) -> list[Timer]:
        """Rename the unreadable file aside (never overwrite the wearer's file) and go on with `kept`."""
        n = 1
        while (aside := self.path.with_name(f"{self.path.name}.corrupt-{n}")).exists():
            n += 1
        os.replace(self.path, aside)
        log.warning("timers: %s could not be used (%s); kept it as %s and went on with %d timer(s)",
                    self.path, why, aside, len(kept))
        return kept

    def save(self, timers: list[Timer]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"version": 1, "timers": [t.to_json() for t in timers]}, indent=1)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# --- saying it (pure) ------------------------------------------------------------------------
def _comparable(dt: datetime, ref: datetime) -> datetime:
    """`dt` as the same kind of datetime as `ref` (a file written with aware times, read by a naive clock)."""
    if (dt.tzinfo is None) == (ref.tzinfo is None):
        return dt
    return dt.astimezone().replace(tzinfo=None) if ref.tzinfo is None else dt.astimezone(ref.tzinfo)


def _about(what: str) -> str:
    """"to call mum" or "about the meeting": the words that join "remind you" to `what`."""
    first = what.split(" ", 1)[0]
    if first.lower() in ("the", "your", "a", "an", "this", "that", "his", "her", "our", "their") or first[:1].isupper():
        return f"about {what}"
    return f"to {what}"


def name_of(timer: Timer) -> str:
    """"your 5 minute timer", "your pasta timer", "the reminder to call mum", "your wake-up call"."""
    if timer.kind == "timer":
        if timer.what:
            return f"your {timer.what} timer"
        if timer.length_s is not None:
            return f"your {duration_words(timedelta(seconds=timer.length_s), adjective=True)} timer"
        return f"your {timer.said.split(' tomorrow')[0]} timer"
    if timer.what == "wake up":
        return "your wake-up call"
    return f"the reminder {_about(timer.what)}" if timer.what else "your reminder"


def confirmation(timer: Timer) -> str:
    """What is said when it is set: "OK, timer set for 5 minutes.", "OK, I'll remind you to call mum at 6 PM."."""
    at = f"in {timer.said}" if timer.length_s is not None else f"at {timer.said}"
    if timer.kind == "timer":
        return f"OK, {timer.what + ' timer' if timer.what else 'timer'} set for {timer.said}."
    if timer.what == "wake up":
        return f"OK, I'll wake you {at}."
    return f"OK, I'll remind you {_about(timer.what) + ' ' if timer.what else ''}{at}."


def announcement(timer: Timer, now: datetime) -> str:
    """What is said when it is due: "Your 5 minute timer is done.", "Reminder: call mum."."""
    if timer.kind == "timer":
        text = name_of(timer)[0].upper() + name_of(timer)[1:] + " is done."
    elif timer.what == "wake up":
        text = "Time to wake up."
    else:
        text = f"Reminder: {timer.what}." if timer.what else f"Reminder: it's {clock_words(timer.due, timer.due)}."
    due = _comparable(timer.due, now)
    if now - due > LATE:
        text += f" It was due at {clock_words(due, now)}."
    return text


def listing(timers: list[Timer], now: datetime) -> str:
    """The pending ones with time left, soonest first, at most SPOKEN of them."""
    if not timers:
        return NONE_SET
    items, single = [], ""
    for t in timers:
        due = _comparable(t.due, now)
        left = left_words(due - now)
        if t.kind == "timer":
            items.append(f"{name_of(t)}, {left} left")
            single = f"{name_of(t)} has {left} left."  # "Your 5 minute timer has 3 minutes left."
        else:
            items.append(f"{name_of(t)} at {clock_words(due, now)}, in {left}")
            single = f"{name_of(t)} is at {clock_words(due, now)}, in {left}."
    if len(items) == 1:
        return single[0].upper() + single[1:]
    said = items[:SPOKEN]
    more = f", and {len(items) - SPOKEN} more" if len(items) > SPOKEN else ""
    body = "; ".join(said[:-1]) + ("; " if more else "; and ") + said[-1] + more
    kinds = {t.kind for t in timers}
    return f"You have {len(items)} {kinds.pop() + 's' if len(kinds) == 1 else 'timers and reminders'}: {body}."


_NOT_A_NAME = {"cancel", "stop", "delete", "remove", "clear", "turn", "switch", "dismiss", "scrap", "forget",
               "timer", "timers", "reminder", "reminders", "alarm", "alarms", "every", "both", "kitchen"}


def to_cancel(question: str, timers: list[Timer]) -> list[Timer] | None:
    """Which pending ones "cancel the timer" / "cancel the pasta timer" / "cancel all reminders"
    means: the newest of the kind named, the one whose words are named, all of them, or None
    when words name none of them."""
    norm = " ".join(t.norm for t in tokenize(question))
    kinds = {kind for kind, said in (("timer", r"\btimers?\b"), ("reminder", r"\b(?:reminders?|alarms?)\b"))
             if re.search(said, norm)}
    mine = [t for t in timers if t.kind in kinds or not kinds]
    if re.search(r"\b(?:all|every|everything|both)\b", norm):
        return mine
    named = [w for w in content_words(norm) if w not in _NOT_A_NAME]
    if not named:
        return mine[-1:]  # the newest
    # every named word must be the timer's: "the reminder to call the bank" is not "to call mum"
    fits = [t for t in mine if set(named) <= set(content_words(f"{t.what} {t.said}"))]
    return fits[-1:] or None


# --- the skill -------------------------------------------------------------------------------
class TimerSkill:
    name = "timers"

    def __init__(self, store: TimerStore, wall: Callable[[float], datetime], *, limit: int = MAX_PENDING):
        """`store`: where the timers are kept (loaded now). `wall`: session seconds -> wall time."""
        self.store, self.wall, self.limit = store, wall, limit
        self._lock = threading.Lock()
        self._timers = sorted(store.load(), key=lambda t: t.id)  # in the order set: the last is the newest
        self._next_id = max((t.id for t in self._timers), default=0) + 1
        self._asked: str = ""  # "set a timer" when the last answer asked when: the next words may be the time

    def wants(self, question: str, active: str = "") -> str:
        intent = intent_of(question)
        if intent:
            return f"timers: {intent}"
        if self._asked and is_bare_time(question):
            return "timers: the time it asked for"
        self._asked = ""  # only the very next question may answer "when?"
        return ""

    def pending(self) -> list[Timer]:
        """The timers not yet said, soonest first."""
        with self._lock:
            return sorted(self._timers, key=lambda t: (t.due.timestamp(), t.id))

    def due(self, now: float) -> list[str]:
        """The texts to say at session second `now`, each once (removed before they are returned)."""
        now_wall = self.wall(now)
        with self._lock:
            fired = [t for t in self._timers if _comparable(t.due, now_wall) <= now_wall]
            if not fired:
                return []
            ids = {t.id for t in fired}
            self._timers = [t for t in self._timers if t.id not in ids]
            self._save()
        return [announcement(t, now_wall) for t in sorted(fired, key=lambda t: (t.due.timestamp(), t.id))]

    def _save(self) -> bool:
        """Write the list (the lock held); False when the store failed (the timers stay in memory)."""
        try:
            self.store.save(list(self._timers))
            return True
        except OSError as err:
            log.warning("timers: could not save (%s); they are kept until the session ends", err)
            return False

    def answer(self, ctx: ModeContext) -> ModeResult:
        t0 = time.perf_counter()
        question, now = ctx.request.question, self.wall(ctx.end)
        intent = intent_of(question)
        if intent == "list":
            timers = self.pending()
            ctx.show("\n".join(f"{clock_words(_comparable(t.due, now), now)}  {name_of(t)}" for t in timers))
            return self._say(ctx, t0, listing(timers, now), {"kind": "list", "ids": [t.id for t in timers]})
        if intent == "cancel":
            return self._cancel(ctx, t0, question)
        if not intent and self._asked:  # "5 minutes", the answer to "when?": with what was asked before it
            question = f"{self._asked} {question}"
        return self._set(ctx, t0, question, now)

    def _set(self, ctx: ModeContext, t0: float, question: str, now: datetime) -> ModeResult:
        when = parse_when(question, now)
        record = {"kind": "set", "id": None}
        self._asked = ""
        if when is None:
            self._asked = question  # the time may come next, on its own ("5 minutes", "at 6")
            return self._say(ctx, t0, ASK_AGAIN, {**record, "error": "unparsed"})
        if when.due <= now:
            text = TOO_SHORT if when.length is not None else f"{when.said} has already passed today."
            return self._say(ctx, t0, text[0].upper() + text[1:], {**record, "error": "not ahead"})
        if when.length is not None and when.length > MAX_LENGTH:
            return self._say(ctx, t0, TOO_LONG, {**record, "error": "too long"})
        if ctx.cancel.is_set():  # a barge-in or a newer question: the wearer did not hear it confirmed
            return self._say(ctx, t0, "", {**record, "error": "cancelled"})
        with self._lock:
            if len(self._timers) >= self.limit:
                return self._say(ctx, t0, TOO_MANY, {**record, "error": "too many"})
            length = when.length.total_seconds() if when.length is not None else None
            timer = Timer(self._next_id, when.due, when.what, when.kind, when.said, length)
            self._next_id += 1
            self._timers.append(timer)
            saved = self._save()
        text = confirmation(timer) + ("" if saved else NOT_SAVED)
        return self._say(ctx, t0, text, {**record, "id": timer.id, "due": timer.due.isoformat(),
                                         "what": timer.what, "timer_kind": timer.kind, "saved": saved})

    def _cancel(self, ctx: ModeContext, t0: float, question: str) -> ModeResult:
        if ctx.cancel.is_set():  # as for setting: nothing changes that the wearer did not hear
            return self._say(ctx, t0, "", {"kind": "cancel", "ids": [], "error": "cancelled"})
        with self._lock:
            gone = to_cancel(question, self._timers)
            if gone:
                ids = {t.id for t in gone}
                self._timers = [t for t in self._timers if t.id not in ids]
                self._save()
        record = {"kind": "cancel", "ids": [t.id for t in gone or []]}
        if gone is None:
            return self._say(ctx, t0, "I couldn't find that one. Ask me what timers you have.", record)
        if not gone:
            noun = "reminders" if re.search(r"remind|alarm", question.lower()) else "timers"
            return self._say(ctx, t0, f"You have no {noun}.", record)
        kinds = {t.kind for t in gone}
        noun = f"{kinds.pop()}s" if len(kinds) == 1 else "timers and reminders"
        text = f"OK, I cancelled {name_of(gone[0])}." if len(gone) == 1 else f"OK, I cancelled all {len(gone)} {noun}."
        return self._say(ctx, t0, text, record)

    @staticmethod
    def _say(ctx: ModeContext, t0: float, text: str, record: dict) -> ModeResult:
        return say(ctx, t0, text, record, "timers")

"""`demo.py memory DIR ...`: see and manage everything the glasses keep.

    list [--limit N]            entries (newest first) and facts, with the folder's size
    search WORDS...             the entries a question would recall, best first
    show ID [--out FILE.jpg]    one entry in full; its thumbnail is written to FILE
                                (default memory-ID.jpg here; an existing file is never replaced)
    forget ID | forget --fact ID | forget --all [--yes]

`forget --all` asks first when run from a terminal; otherwise (a script, a pipe) it needs
`--yes`, so nothing is wiped by a stray command. The memory is opened without retention
(looking must not delete what a session with a longer --memory-days keeps). Times are local.
Exit codes: 0 done, 2 bad input (one line on stderr), 130 interrupted at the question.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.memory.query import query_terms
from pipelines.memory.store import Entry, Fact, Hit, MemoryFull, MemoryRefused, MemoryStore


@dataclass(frozen=True)
class MemoryOptions:
    folder: Path
    action: str                      # list, search, show, forget
    words: tuple[str, ...] = ()      # search
    id: int | None = None            # show, forget
    out: Path | None = None          # show
    fact: int | None = None          # forget --fact
    all: bool = False                # forget --all
    yes: bool = False                # forget --all without asking
    limit: int = 50                  # list, search (0: no limit for list)
    prog: str = "demo.py"
    now: float = field(default_factory=time.time)


class Bad(Exception):
    """Bad input: the one line, exit 2."""


def ago_words(seconds: float) -> str:
    """'just now', '4 min ago', '3 h ago', '2 days ago'; 'in the future' for a later time."""
    if seconds < -60:
        return "in the future"
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    n = int(seconds // 86400)
    return f"{n} day{'' if n == 1 else 's'} ago"


def when_words(wall: float, now: float) -> str:
    """Local time in plain words: 'today 14:03', 'yesterday 09:12', 'Mon 14:03' within a week,
    else '3 Nov 2026 14:03'; then how long ago."""
    seen, today = time.localtime(wall), time.localtime(now)
    days = (time.mktime((*today[:3], 0, 0, 0, 0, 0, -1)) - time.mktime((*seen[:3], 0, 0, 0, 0, 0, -1))) / 86400
    clock = time.strftime("%H:%M", seen)
    days = round(days)  # whole calendar days (a DST change makes 23 or 25 hours one)
    if days == 0:
        day = "today"
    elif days == 1:
        day = "yesterday"
    elif 2 <= days < 7:
        day = time.strftime("%a", seen)
    else:
        day = f"{seen.tm_mday} {time.strftime('%b %Y', seen)}"
    return f"{day} {clock} ({ago_words(now - wall)})"


def media_words(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d} into a replay"


def shown(text: str) -> str:
    """Stored text as a terminal may print it: a model's output could hold escape sequences."""
    return "".join(c if c.isprintable() or c in "\n\t" else "?" for c in text)


def entry_line(e: Entry, now: float) -> str:
    parts = [f"#{e.id}", when_words(e.wall, now), shown(e.caption) or "(no caption)"]
    if e.text:
        parts.append(f'text: "{shown(" ".join(e.text.split())[:60])}"')
    if e.objects:
        parts.append("objects: " + shown(", ".join(e.objects)))
    if e.has_thumbnail:
        parts.append("[thumbnail]")
    return "  ".join(parts)


def entry_block(e: Entry, now: float) -> list[str]:
    seen = when_words(e.wall, now) + (f", {media_words(e.media)}" if e.media is not None else "")
    return [f"entry {e.id}", f"  seen:      {seen}" + (f" (session {shown(e.session)})" if e.session else ""),
            f"  caption:   {shown(e.caption) or '(none)'}", f"  text read: {shown(e.text) or '(none)'}",
            f"  objects:   {shown(', '.join(e.objects)) or '(none)'}"]


def fact_line(f: Fact, now: float) -> str:
    return f"fact {f.id}  {when_words(f.wall, now)}  {shown(f.text)}"


def plural(n: int, word: str) -> str:
    return f"{n} {word if n == 1 else word[:-1] + 'ies' if word.endswith('y') else word + 's'}"


def size_words(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} KB"


def open_store(opts: MemoryOptions) -> MemoryStore:
    folder = opts.folder.expanduser()
    if not folder.is_dir():
        raise Bad(f"no memory folder at {opts.folder}" + (" (it is a file)" if folder.exists() else ""))
    if not (folder / MemoryStore.DB_NAME).exists():
        raise Bad(f"{opts.folder} holds no memory (no {MemoryStore.DB_NAME}): a session with --memory "
                  f"{opts.folder} makes one")
    try:
        return MemoryStore(folder, days=math.inf)
    except MemoryRefused as err:
        raise Bad(str(err)) from None


def list_action(store: MemoryStore, opts: MemoryOptions) -> None:
    counts = store.counts()
    print(f"memory in {opts.folder}: {plural(counts['entries'], 'entry')}, {plural(counts['facts'], 'fact')}, "
          f"{size_words(counts['bytes'])}")
    limit = counts["entries"] if opts.limit == 0 else opts.limit
    for e in store.recent(limit):
        print(entry_line(e, opts.now))
    if counts["entries"] > limit:
        print(f"... and {counts['entries'] - limit} older (--limit 0 lists them all)")
    for f in store.facts():
        print(fact_line(f, opts.now))


def search_action(store: MemoryStore, opts: MemoryOptions) -> None:
    words = " ".join(opts.words)
    if not query_terms(words):
        raise Bad(f"nothing to search for in {words!r}: give words naming what was seen (e.g. keys, whiteboard)")
    hits: list[Hit] = store.recall(words, now=opts.now, limit=opts.limit or 10)
    if not hits:
        print(f"nothing kept matches {words!r}")
    for h in hits:
        print(f"score {h.score:.2f}  {entry_line(h.entry, opts.now)}")


def show_action(store: MemoryStore, opts: MemoryOptions) -> None:
    entry = store.get(opts.id)
    if entry is None:
        raise Bad(f"no entry {opts.id} in {opts.folder} ('list' shows the ids)")
    lines = entry_block(entry, opts.now)
    jpeg = store.thumbnail(entry.id)
    if jpeg is None:
        lines.append("  thumbnail: none kept")
    else:
        out = opts.out or Path(f"memory-{entry.id}.jpg")
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # private, like the memory
        except FileExistsError:
            raise Bad(f"{out} already exists and is kept: give another --out") from None
        except OSError as err:
            raise Bad(f"cannot write {out}: {err.strerror or err}") from None
        with os.fdopen(fd, "wb") as f:
            f.write(jpeg)
        lines.append(f"  thumbnail: written to {out} ({size_words(len(jpeg))})")
    print("\n".join(lines))


def forget_action(store: MemoryStore, opts: MemoryOptions, stdin=None) -> int:
    chosen = (opts.id is not None) + (opts.fact is not None) + opts.all
    if chosen != 1:
        raise Bad("forget wants one of: an entry ID, --fact ID, or --all")
    if opts.id is not None:
        if not store.forget(opts.id):
            raise Bad(f"no entry {opts.id} in {opts.folder} ('list' shows the ids)")
        print(f"forgot entry {opts.id}")
        return 0
    if opts.fact is not None:
        if not store.forget_fact(opts.fact):
            raise Bad(f"no fact {opts.fact} in {opts.folder} ('list' shows the ids)")
        print(f"forgot fact {opts.fact}")
        return 0
    counts = store.counts()
    what = f"{plural(counts['entries'], 'entry')} and {plural(counts['facts'], 'fact')} in {opts.folder}"
    if not opts.yes:
        stdin = stdin or sys.stdin
        if not (stdin and stdin.isatty()):
            raise Bad(f"forget --all deletes {what} for good: add --yes (there is no terminal to ask)")
        try:
            print(f"forget {what}? This cannot be undone. [y/N] ", end="", flush=True)
            answer = stdin.readline().strip().lower()
        except KeyboardInterrupt:
            print("\nnothing was forgotten")
            return 130
        if answer not in ("y", "yes"):
            print("nothing was forgotten")
            return 0
    store.forget_all()
    print(f"forgot everything: {what} deleted and overwritten")
    return 0


ACTIONS = {"list": list_action, "search": search_action, "show": show_action}


def run_memory(opts: MemoryOptions, stdin=None) -> int:
    """Run one action; the exit code. Bad input and a refused memory are one line on stderr."""
    try:
        store = open_store(opts)
        try:
            if opts.action == "forget":
                return forget_action(store, opts, stdin)
            ACTIONS[opts.action](store, opts)
            return 0
        finally:
            store.close()
    except (Bad, MemoryRefused, MemoryFull) as err:
        print(f"{opts.prog} memory: error: {err}", file=sys.stderr, flush=True)
        return 2
    except BrokenPipeError:  # `... list | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0

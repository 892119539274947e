"""The wearer's memory: what the glasses saw (entries with thumbnails) and facts told to them.

One SQLite file, `memory.db`, in a folder only its owner can read (0700; the database and its
-wal and -shm files 0600). SQLite because it is in Python's standard library, keeps what was
committed through a crash or a kill (WAL mode, `synchronous=FULL`: a commit is on disk when
`add` returns, a power cut included), and has a full-text index with BM25 (FTS5).

Forgetting is real: `secure_delete` overwrites deleted rows and freed pages with zeros, merging
the full-text index takes the words out of its old segments, and every forget ends with a WAL checkpoint
that truncates the -wal file, where earlier copies of the pages would otherwise linger.
`forget_all` also VACUUMs, so the file shrinks back. Temporary tables stay in memory
(`temp_store`), so no copy goes to a temporary file.

Thread-safe: a describer thread writes while the answer thread recalls. Reads and writes use
separate connections, each behind its own lock, so a question never waits for a write's fsync.
Errors: a folder or file that cannot be used raises MemoryRefused (also later, if the file turns
out damaged); a full disk raises MemoryFull from the write that did not fit, and everything
committed before stays.
"""
from __future__ import annotations

import logging
import math
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence, TypeVar

from pipelines.memory import schema
from pipelines.memory.db import Database, MemoryFull, MemoryRefused  # noqa: F401 - the store's errors
from pipelines.memory.query import Candidate, fts_query, query_terms, rank

log = logging.getLogger("memory")
T = TypeVar("T")

CANDIDATES = 64  # per recall, the best by BM25 plus the newest matches, then ranked with recency
BM25_WEIGHTS = (1.0, 1.0, 2.0)  # caption, text, objects: an object named outright is the strongest sign


@dataclass(frozen=True)
class Entry:
    id: int
    wall: float          # unix seconds when seen
    media: float | None  # replay: media seconds in the session that stored it (None live)
    session: str         # id of the session that stored it
    caption: str
    text: str            # text read (OCR), "" if none
    objects: tuple[str, ...]
    has_thumbnail: bool


@dataclass(frozen=True)
class Fact:
    id: int
    wall: float
    text: str


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float    # combined: higher is better
    bm25: float     # sqlite's bm25() (lower is better, as sqlite returns it)
    recency: float  # 0..1


ENTRY_SQL = ("SELECT e.id, e.wall, e.media, e.session, e.caption, e.text, e.objects, t.entry_id IS NOT NULL "
             "FROM entries e LEFT JOIN thumbnails t ON t.entry_id = e.id")


def _entry(row) -> Entry:
    id_, wall, media, session, caption, text, objects, thumb = row
    return Entry(id_, wall, media, session, caption, text, tuple(objects.split("\n")) if objects else (), bool(thumb))


class MemoryStore(Database):

    def __init__(self, folder: Path, session: str = "", days: float = 7.0):
        """Open (or create) the memory in `folder`; entries older than `days` are deleted now
        (math.inf keeps everything: the `demo.py memory` command opens it so)."""
        if not (isinstance(days, (int, float)) and days > 0):
            raise ValueError(f"days must be a positive number, got {days!r}")
        super().__init__(folder)
        self.session = session
        try:
            schema.prepare_folder(self.folder, self.DB_NAME)
            fresh = schema.inspect(self.path)
            self._open(fresh)
            if math.isfinite(days):
                self.expire(time.time(), days)
        except schema.Full as err:  # the caller goes on without memory (nothing of the user's is at stake)
            self.close()
            raise MemoryFull(str(err)) from None
        except schema.Refused as err:
            self.close()
            raise MemoryRefused(str(err)) from None
        except MemoryFull:
            self.close()
            raise
        except MemoryRefused:
            self.close()
            raise

    # --- entries ---

    def add(self, *, wall: float, media: float | None, caption: str, text: str = "",
            objects: Sequence[str] = (), thumbnail: bytes | None = None) -> int:
        """Store one entry (committed, on disk) and return its id."""
        return self.add_many([dict(wall=wall, media=media, caption=caption, text=text, objects=objects,
                                   thumbnail=thumbnail)])[0]

    def add_many(self, items: Iterable[dict]) -> list[int]:
        """Store several entries (each a dict of `add`'s arguments) in one transaction: all or none."""
        rows = []
        for item in items:
            thumb = item.get("thumbnail")
            if thumb is not None:
                thumb = bytes(thumb)
                if len(thumb) > schema.MAX_THUMBNAIL:
                    raise ValueError(f"a thumbnail of {len(thumb)} bytes is too large "
                                     f"(at most {schema.MAX_THUMBNAIL})")
            row = schema.clean_entry(item["wall"], item.get("media"), item.get("caption", ""), item.get("text", ""),
                                     item.get("objects", ()))
            rows.append((row, thumb or None))

        def work(conn):
            ids = []
            for (wall, media, caption, text, objects), thumb in rows:
                cur = conn.execute("INSERT INTO entries(wall, media, session, caption, text, objects) "
                                   "VALUES (?, ?, ?, ?, ?, ?)", (wall, media, self.session, caption, text, objects))
                if thumb:
                    conn.execute("INSERT INTO thumbnails(entry_id, jpeg) VALUES (?, ?)", (cur.lastrowid, thumb))
                ids.append(cur.lastrowid)
            return ids
        return self._write(work) if rows else []

    def get(self, entry_id: int) -> Entry | None:
        row = self._read(lambda c: c.execute(ENTRY_SQL + " WHERE e.id = ?", (int(entry_id),)).fetchone())
        return _entry(row) if row else None

    def thumbnail(self, entry_id: int) -> bytes | None:
        """The entry's JPEG bytes, None if it has none (or no such entry)."""
        row = self._read(lambda c: c.execute("SELECT jpeg FROM thumbnails WHERE entry_id = ?",
                                             (int(entry_id),)).fetchone())
        return bytes(row[0]) if row else None

    def recent(self, limit: int = 20) -> list[Entry]:
        """The newest entries (by time seen), newest first."""
        rows = self._read(lambda c: c.execute(ENTRY_SQL + " ORDER BY e.wall DESC, e.id DESC LIMIT ?",
                                              (max(int(limit), 0),)).fetchall())
        return [_entry(r) for r in rows]

    def around(self, wall: float, span: float, limit: int = 3) -> list[Entry]:
        """The entries seen within `span` s of unix time `wall`, nearest first ("an hour ago")."""
        rows = self._read(lambda c: c.execute(ENTRY_SQL + " WHERE e.wall BETWEEN ? AND ? ORDER BY abs(e.wall - ?), e.id "
                                              "LIMIT ?", (wall - span, wall + span, wall, max(int(limit), 0))).fetchall())
        return [_entry(r) for r in rows]

    def recall(self, query: str, now: float, limit: int = 3) -> list[Hit]:
        """The entries that best answer `query`, best first (BM25 plus recency: see query.rank);
        [] when no entry shares a searchable word with it."""
        match = fts_query(query_terms(query))
        if not match or limit <= 0:
            return []
        n = max(CANDIDATES, 4 * limit)
        bm25 = f"bm25(entries_fts, {', '.join(map(str, BM25_WEIGHTS))})"

        def work(conn):
            # the best by text, and the newest matches (ids grow with time), so that the latest
            # sighting of a common object is a candidate even when many older ones score higher
            found = dict(conn.execute(f"SELECT rowid, {bm25} FROM entries_fts WHERE entries_fts MATCH ? "
                                      "ORDER BY 2 LIMIT ?", (match, n)).fetchall())
            found.update(conn.execute(f"SELECT rowid, {bm25} FROM entries_fts WHERE entries_fts MATCH ? "
                                      "ORDER BY rowid DESC LIMIT ?", (match, n)).fetchall())
            if not found:
                return []
            marks = ",".join("?" * len(found))
            walls = dict(conn.execute(f"SELECT id, wall FROM entries WHERE id IN ({marks})", list(found)).fetchall())
            ranked = rank([Candidate(i, b, walls[i]) for i, b in found.items() if i in walls], now, limit)
            marks = ",".join("?" * len(ranked))
            entries = {r[0]: _entry(r) for r in conn.execute(ENTRY_SQL + f" WHERE e.id IN ({marks})",
                                                             [r.id for r in ranked]).fetchall()}
            return [Hit(entries[r.id], r.score, r.bm25, r.recency) for r in ranked if r.id in entries]
        return self._read(work)

    def forget(self, entry_id: int) -> bool:
        """Delete one entry, its thumbnail and its index words, for real; False if there is none."""
        gone = self._write(lambda c: c.execute("DELETE FROM entries WHERE id = ?", (int(entry_id),)).rowcount > 0)
        if gone:
            self._scrub()
        return gone

    def expire(self, now: float, days: float) -> int:
        """Delete the entries seen more than `days` before `now`; how many."""
        cutoff = now - days * 86400.0
        n = self._write(lambda c: c.execute("DELETE FROM entries WHERE wall < ?", (cutoff,)).rowcount)
        if n:
            self._scrub()
        return n

    # --- facts ---

    def add_fact(self, text: str, wall: float) -> int:
        text = " ".join(str(text).split())[:schema.MAX_FACT]
        if not text or not schema.finite(wall):
            raise ValueError(f"a fact needs text and a finite time, got {text!r} at {wall!r}")
        return self._write(lambda c: c.execute("INSERT INTO facts(wall, text) VALUES (?, ?)", (float(wall), text))
                           .lastrowid)

    def facts(self) -> list[Fact]:
        """Every fact, oldest first."""
        return [Fact(*r) for r in self._read(lambda c: c.execute("SELECT id, wall, text FROM facts ORDER BY id")
                                             .fetchall())]

    def forget_last_fact(self) -> Fact | None:
        """Delete the newest fact; it, or None when there was none."""
        def work(conn):
            row = conn.execute("SELECT id, wall, text FROM facts ORDER BY id DESC LIMIT 1").fetchone()
            if row:
                conn.execute("DELETE FROM facts WHERE id = ?", (row[0],))
            return Fact(*row) if row else None
        fact = self._write(work)
        if fact:
            self._scrub()
        return fact

    def forget_fact(self, fact_id: int) -> bool:
        gone = self._write(lambda c: c.execute("DELETE FROM facts WHERE id = ?", (int(fact_id),)).rowcount > 0)
        if gone:
            self._scrub()
        return gone

    # --- everything ---

    def forget_all(self) -> None:
        """Delete every entry, thumbnail, index word, fact and shopping-list item; VACUUM; truncate
        the -wal file."""
        def work(conn):
            for sql in ("DELETE FROM entries", "DELETE FROM thumbnails", "DELETE FROM facts",
                        "DELETE FROM shopping_list", "INSERT INTO entries_fts(entries_fts) VALUES ('delete-all')"):
                conn.execute(sql)
        self._write(work)
        with self._write_lock, self._read_lock:
            conn = self._live(self._writer)
            try:
                self._checkpoint(conn)
                conn.execute("VACUUM")
                self._checkpoint(conn)
            except sqlite3.Error as err:
                if schema.full(err):
                    raise MemoryFull(f"everything in {self.folder} was deleted and overwritten, but the disk is "
                                     "too full to shrink the file") from err
                raise

    def counts(self) -> dict:
        """{"entries": n, "facts": n, "bytes": size of the database and its -wal file}."""
        entries, facts = self._read(lambda c: c.execute(
            "SELECT (SELECT count(*) FROM entries), (SELECT count(*) FROM facts)").fetchone())
        size = 0
        for p in (self.path, self.path.with_name(self.DB_NAME + "-wal")):
            try:
                size += p.stat().st_size
            except FileNotFoundError:
                pass
        return {"entries": entries, "facts": facts, "bytes": size}

    # --- what makes a forget real ---

    def _scrub(self) -> None:
        """After a delete: the index merged into one segment (an FTS5 delete only adds a delete
        marker: the words stay in older segments until a merge; FTS5's own secure-delete option
        needs SQLite 3.42, and a merge works on every version, at 0.1 s for 100,000 entries), and the
        -wal file, which still holds the pages as they were, checkpointed and truncated."""
        self._write(lambda c: c.execute("INSERT INTO entries_fts(entries_fts) VALUES ('optimize')"))
        with self._write_lock, self._read_lock:
            self._checkpoint(self._live(self._writer))


"""The memory's SQLite file behind two doors: one connection for writes and one for reads, each
behind its own lock, so a question never waits for a write's fsync (pipelines/memory/store.py
holds what is stored; this module, how it gets there and what its errors mean)."""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

from pipelines.memory import schema

log = logging.getLogger("memory")
T = TypeVar("T")


class MemoryRefused(Exception):
    """The folder or file cannot be used; str(err) is the one line for the user."""


class MemoryFull(Exception):
    """The disk is full: this write was not stored; nothing committed is lost."""


class Database:
    DB_NAME = "memory.db"

    def __init__(self, folder: Path):
        self.folder = Path(folder).expanduser()
        self.path = self.folder / self.DB_NAME
        self._write_lock, self._read_lock = threading.Lock(), threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None

    def _open(self, fresh: bool) -> None:
        try:
            self._writer = self._connect()
            mode = self._writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise schema.Refused(f"cannot use {self.path}: SQLite would not switch it to WAL mode ({mode})")
            for pragma in ("synchronous=FULL", "secure_delete=ON"):
                self._writer.execute(f"PRAGMA {pragma}")
            if fresh:
                schema.create(self._writer)
            else:
                schema.migrate(self._writer)
            self._reader = self._connect()
            schema.owner_only(self.path)
        except sqlite3.Error as err:
            if schema.full(err):
                raise schema.Full(f"cannot set up {self.path}: the disk is full") from err
            if schema.corrupt(err):
                raise schema.damaged(self.path, str(err)) from err
            raise schema.Refused(f"cannot open {self.path}: {err}") from err
        except OSError as err:
            raise schema.Refused(f"cannot open {self.path}: {schema.describe(err)}") from err

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), timeout=5.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    # --- the two doors: every read and every write goes through one of these ---

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._write_lock:
            conn = self._live(self._writer)
            try:
                conn.execute("BEGIN IMMEDIATE")
                result = work(conn)
                conn.execute("COMMIT")
                return result
            except BaseException as err:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # SQLite rolled back already
                mapped = self._translate(err)
                if mapped is err:
                    raise
                raise mapped from err

    def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._read_lock:
            conn = self._live(self._reader)
            try:
                conn.execute("BEGIN")  # one snapshot for all of `work`'s statements
                try:
                    return work(conn)
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            except sqlite3.Error as err:
                mapped = self._translate(err)
                if mapped is err:
                    raise
                raise mapped from err

    def _live(self, conn: sqlite3.Connection | None) -> sqlite3.Connection:
        if conn is None:
            raise MemoryRefused(f"the memory at {self.folder} is closed")
        return conn

    def _translate(self, err: BaseException) -> BaseException:
        if schema.full(err):
            return MemoryFull(f"the disk is full: this was not kept in the memory at {self.folder} "
                              "(everything kept before is safe)")
        if isinstance(err, sqlite3.DatabaseError) and schema.corrupt(err):
            return MemoryRefused(str(schema.damaged(self.path, str(err))))
        return err

    def close(self) -> None:
        with self._write_lock, self._read_lock:
            for conn in (self._reader, self._writer):
                if conn is not None:
                    try:
                        conn.close()
                    except sqlite3.Error:
                        pass
            self._reader = self._writer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> bool:
        for _ in range(40):
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                return True
            time.sleep(0.05)  # another program (say `demo.py memory`) is reading: it ends soon
        log.warning("memory: another program keeps %s open: deleted data leaves its -wal file at the next "
                    "checkpoint", self.path)
        return False

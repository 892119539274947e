"""The memory database's layout, and the checks that decide whether a file may be opened.

A memory file is ours when SQLite's header carries `APPLICATION_ID`; `SCHEMA_VERSION` is its
`user_version`. Anything else at the path (a text file, a damaged database, another program's
SQLite file, one written by a newer version) is refused with one line and never written to:
the file is inspected through its raw header and a read-only connection before the store opens
it for writing. The only file adopted without our id is an empty one (0 bytes, or a SQLite
file with no tables and no id: what a kill between creating the file and writing the schema
leaves behind).
"""
from __future__ import annotations

import errno
import math
import os
import sqlite3
import stat
from pathlib import Path
from typing import Sequence
from urllib.parse import quote

APPLICATION_ID = 0x474C4D45  # "GLME": glasses-assistant memory
SCHEMA_VERSION = 2
# What each later version adds: a new file gets it all (create), an older one the missing steps
# when it is opened (migrate), each step in one transaction with its version number.
MIGRATIONS = (
    (2, "CREATE TABLE shopping_list (id INTEGER PRIMARY KEY AUTOINCREMENT, wall REAL NOT NULL, "
        "text TEXT NOT NULL, code TEXT NOT NULL DEFAULT '', price REAL)"),  # pipelines/skills/shopping_list.py
)
SQLITE_MAGIC = b"SQLite format 3\x00"

SCHEMA = """
CREATE TABLE entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: turn records name entry ids
    wall REAL NOT NULL,                    -- unix seconds when seen
    media REAL,                            -- replay: media seconds; NULL live
    session TEXT NOT NULL,
    caption TEXT NOT NULL,
    text TEXT NOT NULL,                    -- text read (OCR)
    objects TEXT NOT NULL                  -- object names, one per line
);
CREATE INDEX entries_wall ON entries(wall);
CREATE TABLE thumbnails (entry_id INTEGER PRIMARY KEY, jpeg BLOB NOT NULL);
CREATE TABLE facts (id INTEGER PRIMARY KEY AUTOINCREMENT, wall REAL NOT NULL, text TEXT NOT NULL);
CREATE VIRTUAL TABLE entries_fts USING fts5(
    caption, text, objects, content='entries', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2'
);
-- the index follows the table: an entry, its index rows and its thumbnail go together
CREATE TRIGGER entries_ai AFTER INSERT ON entries BEGIN
    INSERT INTO entries_fts(rowid, caption, text, objects) VALUES (new.id, new.caption, new.text, new.objects);
END;
CREATE TRIGGER entries_ad AFTER DELETE ON entries BEGIN
    INSERT INTO entries_fts(entries_fts, rowid, caption, text, objects)
        VALUES ('delete', old.id, old.caption, old.text, old.objects);
    DELETE FROM thumbnails WHERE entry_id = old.id;
END;
CREATE TRIGGER entries_au AFTER UPDATE ON entries BEGIN
    INSERT INTO entries_fts(entries_fts, rowid, caption, text, objects)
        VALUES ('delete', old.id, old.caption, old.text, old.objects);
    INSERT INTO entries_fts(rowid, caption, text, objects) VALUES (new.id, new.caption, new.text, new.objects);
END;
"""

MAX_CAPTION, MAX_TEXT, MAX_OBJECTS, MAX_OBJECT_CHARS, MAX_FACT = 1000, 4000, 32, 64, 500
MAX_THUMBNAIL = 1 << 20  # a thumbnail is a few KB; a megabyte means a mistake upstream


def clean_entry(wall: float, media: float | None, caption: str, text: str,
                objects: Sequence[str]) -> tuple[float, float | None, str, str, str]:
    """(wall, media, caption, text, objects as lines), bounded; ValueError for a bad time."""
    if not finite(wall) or (media is not None and not finite(media)):
        raise ValueError(f"an entry needs finite times, got wall={wall!r} media={media!r}")
    names: list[str] = []
    for name in objects if not isinstance(objects, str) else [objects]:
        name = " ".join(str(name).split())[:MAX_OBJECT_CHARS]
        if name and name not in names and len(names) < MAX_OBJECTS:
            names.append(name)
    return (float(wall), None if media is None else float(media), " ".join(str(caption).split())[:MAX_CAPTION],
            str(text).strip()[:MAX_TEXT], "\n".join(names))


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Refused(Exception):
    """The file or folder cannot be used; the message is one line for the user."""


class Full(Refused):
    """The disk is full before the memory could be set up: the session goes on without it."""


def prepare_folder(folder: Path, db_name: str) -> None:
    """Create `folder` owner-only (0700), or make an existing one so.

    An existing folder that holds other files but no memory and is open to others is refused
    rather than locked: it is somebody's folder (a home, /tmp), not a memory folder."""
    try:
        if not folder.exists():
            folder.mkdir(mode=0o700, parents=True)
        elif not folder.is_dir():
            raise Refused(f"{folder} is not a folder: give a folder for the memory")
        mode = stat.S_IMODE(folder.stat().st_mode)
        if mode & 0o077:
            if any(p.name != db_name for p in folder.iterdir()) and not (folder / db_name).exists():
                raise Refused(f"{folder} holds other files and others can read it: give a new or private (0700) "
                              "folder for the memory")
        if mode != 0o700:
            os.chmod(folder, 0o700)
    except Refused:
        raise
    except OSError as err:
        kind = Full if err.errno in (errno.ENOSPC, errno.EDQUOT) else Refused
        raise kind(f"cannot use {folder} for the memory: {describe(err)}") from err


def describe(err: OSError) -> str:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    return err.strerror or str(err)


def inspect(path: Path) -> bool:
    """Whether `path` must be set up as a new memory (True) or is ours already (False).

    Creates a missing file (0600, empty). Raises Refused for anything else; never writes to
    an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        return True
    except FileExistsError:
        pass
    except OSError as err:
        raise Refused(f"cannot create {path}: {describe(err)}") from err
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{path} is not a regular file: kept as is; give another memory folder")
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError as err:
        raise Refused(f"cannot read {path}: {describe(err)}") from err
    if not header:
        return True
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        raise Refused(f"{path} is not a memory database (not SQLite at all): kept as is; "
                      "move it away or give another memory folder")
    raw_id = int.from_bytes(header[68:72], "big")
    if raw_id not in (0, APPLICATION_ID):
        raise foreign(path)
    app_id, version, tables, check = read_only_facts(path)
    if app_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise Refused(f"{path} was written by a newer version of this program (memory format {version}, "
                          f"this one reads {SCHEMA_VERSION}): kept as is; update the program")
        if check != "ok":
            raise damaged(path, check)
        return False
    if app_id == 0 and tables == 0:
        return True
    raise foreign(path)


def read_only_facts(path: Path) -> tuple[int, int, int, str]:
    """(application_id, user_version, tables, quick_check's first line), read-only."""
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as err:
        raise Refused(f"cannot open {path}: {err}") from err
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        check = conn.execute("PRAGMA quick_check").fetchone()[0] if app_id == APPLICATION_ID else "ok"
        return app_id, version, tables, check
    except sqlite3.DatabaseError as err:
        if corrupt(err):
            raise damaged(path, str(err)) from err
        raise Refused(f"cannot read {path}: {err}") from err
    finally:
        conn.close()


def corrupt(err: BaseException) -> bool:
    code = getattr(err, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or "malformed" in str(err) \
        or "not a database" in str(err)


def full(err: BaseException) -> bool:
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(err, sqlite3.Error) and (getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
                                               or "database or disk is full" in str(err))


def damaged(path: Path, detail: str) -> Refused:
    return Refused(f"{path} is damaged ({detail.splitlines()[0][:80]}): kept as is; move it away to start "
                   "a new memory")


def foreign(path: Path) -> Refused:
    return Refused(f"{path} is another program's SQLite database, not a memory: kept as is; "
                   "give another memory folder")


def create(conn: sqlite3.Connection) -> None:
    """The schema, the id and the version in one transaction: all or nothing."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in split(SCHEMA) + [sql for _, sql in MIGRATIONS]:
            conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (a full disk does)
            conn.execute("ROLLBACK")
        raise


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a file of an older version up to SCHEMA_VERSION, one step per transaction."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return  # the usual case: no write lock taken
    for version, sql in MIGRATIONS:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] < version:
                conn.execute(sql)
                conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def split(script: str) -> list[str]:
    """The statements of `script` (triggers hold semicolons: sqlite3.complete_statement knows)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not current.strip():
            continue
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return out


def owner_only(path: Path) -> None:
    """0600 for the database and its -wal and -shm files (SQLite gives them the database's mode)."""
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if stat.S_IMODE(p.stat().st_mode) != 0o600:
                os.chmod(p, 0o600)
        except FileNotFoundError:
            continue

"""The memory store on real SQLite files: storing, recall, facts, forgetting for real, retention,
permissions, refusing files that are not ours, and a full disk."""
import math
import os
import sqlite3
import stat
import threading

import pytest

from pipelines.memory.query import Candidate, fts_query, query_terms, rank, recency
from pipelines.memory.store import MemoryFull, MemoryRefused, MemoryStore

NOW = 1_800_000_000.0
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 24 + b"\xff\xd9"  # ~6 KB, stands in for a thumbnail


@pytest.fixture
def store(tmp_path):
    s = MemoryStore(tmp_path / "mem", session="s1", days=math.inf)
    yield s
    s.close()


def files_bytes(folder) -> bytes:
    """memory.db and memory.db-wal, as they are on disk now."""
    out = b""
    for name in ("memory.db", "memory.db-wal"):
        p = folder / name
        out += p.read_bytes() if p.exists() else b""
    return out


def test_add_get_and_thumbnail_round_trip(store):
    a = store.add(wall=NOW - 60, media=12.5, caption="red  keys on the\nkitchen counter", text="EXIT",
                  objects=["keys", "kettle", "keys", " "], thumbnail=JPEG)
    b = store.add(wall=NOW, media=None, caption="a blue mug on the desk")
    e = store.get(a)
    assert (e.id, e.wall, e.media, e.session) == (a, NOW - 60, 12.5, "s1")
    assert e.caption == "red keys on the kitchen counter" and e.text == "EXIT"
    assert e.objects == ("keys", "kettle") and e.has_thumbnail
    assert store.thumbnail(a) == JPEG and store.thumbnail(b) is None and not store.get(b).has_thumbnail
    assert store.get(999) is None and store.thumbnail(999) is None
    assert [x.id for x in store.recent()] == [b, a] and [x.id for x in store.recent(1)] == [b]
    assert store.counts()["entries"] == 2 and store.counts()["bytes"] > len(JPEG)
    with pytest.raises(ValueError):
        store.add(wall=float("nan"), media=None, caption="x")
    with pytest.raises(ValueError):
        store.add(wall=NOW, media=None, caption="x", thumbnail=b"x" * (2 << 20))
    assert store.counts()["entries"] == 2


def test_memory_persists_across_sessions_and_ids_are_never_reused(tmp_path):
    with MemoryStore(tmp_path, session="one", days=math.inf) as s:
        first = s.add(wall=NOW, media=None, caption="keys on the table")
        second = s.add(wall=NOW, media=None, caption="wallet on the shelf")
        s.forget(second)
        s.add_fact("my parking spot is B12", NOW)
    with MemoryStore(tmp_path, session="two", days=math.inf) as s:
        assert s.get(first).caption == "keys on the table" and s.get(first).session == "one"
        third = s.add(wall=NOW, media=None, caption="phone on the sofa")
        assert third > second and s.get(third).session == "two"
        assert [f.text for f in s.facts()] == ["my parking spot is B12"]


def test_query_terms_drop_question_words_and_make_any_text_safe():
    assert query_terms("Where did I leave my keys?") == ["keys"]
    assert query_terms("What was written on the whiteboard?") == ["whiteboard"]
    assert query_terms("did I turn off the stove") == ["turn", "off", "stove"]
    assert query_terms("What was the name of that café?") == ["café"]
    assert query_terms("my parking spot, B12") == ["parking", "spot", "b12"]
    assert query_terms('keys" OR NEAR(mug) -knife* ^red col:blue AND NOT "x') == \
        ["keys", "near", "mug", "knife", "red", "col", "blue"]
    assert query_terms("don't") == ["don"] and query_terms("where is it?") == [] and query_terms("") == []
    assert len(query_terms(" ".join(f"word{i}" for i in range(100)))) == 16
    assert fts_query(["keys", "b12"]) == '"keys" OR "b12"' and fts_query([]) == ""


@pytest.mark.parametrize("question", ['"', "keys\"", "a-b-c", "NEAR(", "*", "^", "col:keys", "(keys", "AND OR NOT",
                                      "keys AND", "'; DROP TABLE entries; --", "ключи", "鍵", "\x00keys", "🔑 keys"])
def test_recall_survives_any_question(store, question):
    store.add(wall=NOW, media=None, caption="keys on the kitchen counter", objects=["keys"])
    hits = store.recall(question, now=NOW)
    assert all(h.entry.caption for h in hits)
    assert store.counts()["entries"] == 1


def test_rank_prefers_newer_equal_matches_and_better_matches_over_slightly_newer():
    equal = [Candidate(1, -3.0, NOW - 3600), Candidate(2, -3.0, NOW - 60)]
    assert [r.id for r in rank(equal, NOW, 2)] == [2, 1]
    better_older = [Candidate(1, -4.0, NOW - 600), Candidate(2, -2.5, NOW - 60)]
    assert [r.id for r in rank(better_older, NOW, 2)] == [1, 2]
    # a match 80% as good wins when the best is 6 hours old and it was just seen
    assert rank([Candidate(1, -5.0, NOW - 6 * 3600), Candidate(2, -4.0, NOW)], NOW, 1)[0].id == 2
    # less than half as good never wins
    assert rank([Candidate(1, -5.0, NOW - 30 * 86400), Candidate(2, -2.4, NOW)], NOW, 1)[0].id == 1
    assert rank([], NOW, 3) == [] and rank(equal, NOW, 0) == []
    assert recency(0) == 1.0 and recency(-5) == 1.0 and recency(6 * 3600) == pytest.approx(0.5)
    top = rank(equal, NOW, 1)[0]
    assert top.bm25 == -3.0 and 0 < top.recency <= 1 and top.score == pytest.approx(1 + 0.5 * top.recency)


def test_recall_ranks_by_bm25_and_recency(store):
    old = store.add(wall=NOW - 3600, media=None, caption="keys on the kitchen counter", objects=["keys"])
    new = store.add(wall=NOW - 60, media=None, caption="keys on the kitchen counter", objects=["keys"])
    store.add(wall=NOW - 30, media=None, caption="a blue mug on the desk", objects=["mug"])
    hits = store.recall("where did I leave my keys?", now=NOW)
    assert [h.entry.id for h in hits] == [new, old]  # a newer equal match wins
    assert hits[0].bm25 < 0 and hits[0].score > hits[1].score and 0 < hits[1].recency < hits[0].recency <= 1

    whiteboard = store.add(wall=NOW - 300, media=None, caption="a whiteboard in the meeting room",
                           text="Q3 launch: Friday", objects=["whiteboard", "marker"])
    store.add(wall=NOW - 200, media=None, caption="a meeting room with chairs", objects=["chair"])
    hits = store.recall("what was written on the whiteboard in the meeting room?", now=NOW)
    assert hits[0].entry.id == whiteboard  # the better match beats the slightly newer one
    assert store.recall("what did the launch note say", now=NOW)[0].entry.id == whiteboard  # OCR text is indexed
    assert store.recall("keys", now=NOW, limit=1)[0].entry.id == new
    assert store.recall("where is my passport?", now=NOW) == []
    assert store.recall("where is it?", now=NOW) == [] and store.recall("keys", now=NOW, limit=0) == []


def test_the_latest_sighting_is_found_among_many_older_better_ones(store):
    # 300 older sightings score a little higher by text (shorter captions) and fill BM25's top candidates
    store.add_many([dict(wall=NOW - 86400 + i, media=None, caption="keys on the hook", objects=["keys"])
                    for i in range(300)])
    latest = store.add(wall=NOW - 10, media=None, caption="a bowl with keys and a wallet by the door",
                       objects=["bowl", "keys", "wallet"])
    hits = store.recall("where are my keys", now=NOW, limit=3)
    assert hits[0].entry.id == latest and hits[0].bm25 > hits[1].bm25


def test_facts_add_list_forget_last_and_by_id(store):
    assert store.facts() == [] and store.forget_last_fact() is None
    a = store.add_fact("my parking spot is B12", NOW - 10)
    b = store.add_fact("  I am allergic   to peanuts ", NOW)
    assert [(f.id, f.text) for f in store.facts()] == [(a, "my parking spot is B12"), (b, "I am allergic to peanuts")]
    gone = store.forget_last_fact()
    assert (gone.id, gone.text, gone.wall) == (b, "I am allergic to peanuts", NOW)
    assert [f.id for f in store.facts()] == [a]
    assert store.forget_fact(a) and not store.forget_fact(a) and store.facts() == []
    with pytest.raises(ValueError):
        store.add_fact("   ", NOW)
    assert store.counts()["facts"] == 0


def test_forget_one_entry(store):
    keep = store.add(wall=NOW, media=None, caption="keys on the table", thumbnail=JPEG)
    gone = store.add(wall=NOW, media=None, caption="keys in the drawer", thumbnail=JPEG)
    assert store.forget(gone) and not store.forget(gone) and not store.forget(12345)
    assert store.get(gone) is None and store.thumbnail(gone) is None
    assert [h.entry.id for h in store.recall("keys drawer", now=NOW)] == [keep]
    assert store.thumbnail(keep) == JPEG


SECRET_CAPTION = "the zanzibarquokka umbrella next to the xylophonist"
SECRET_TEXT = "PIN 48151623 QWERTZUIOP"
SECRET_FACT = "my locker code is vermillionotter 9921"


def secret_thumbnail() -> bytes:
    return b"\xff\xd8" + b"THUMB-PATTERN-0xC0FFEE-" * 300 + b"\xff\xd9"


def add_secrets(store) -> int:
    for i in range(30):  # neighbours on the same pages
        store.add(wall=NOW + i, media=None, caption=f"an ordinary mug number {i} on the desk", thumbnail=JPEG)
    secret = store.add(wall=NOW + 40, media=None, caption=SECRET_CAPTION, text=SECRET_TEXT,
                       objects=["zanzibarquokka"], thumbnail=secret_thumbnail())
    for i in range(30):
        store.add(wall=NOW + 50 + i, media=None, caption=f"an ordinary plate number {i} on the shelf")
    return secret


SECRETS = [SECRET_CAPTION.encode(), SECRET_TEXT.encode(), b"THUMB-PATTERN-0xC0FFEE", b"zanzibarquokka",
           b"48151623", b"xylophonist"]


def test_forget_really_deletes_the_bytes_of_one_entry(tmp_path):
    folder = tmp_path / "mem"
    store = MemoryStore(folder, days=math.inf)
    secret = add_secrets(store)
    seen = files_bytes(folder)
    assert all(s in seen for s in SECRETS)  # the check below can see them
    assert store.forget(secret)
    left = files_bytes(folder)
    assert [s for s in SECRETS if s in left] == []
    assert b"an ordinary mug number 7" in left  # the neighbours are still there
    store.close()
    assert [s for s in SECRETS if s in files_bytes(folder)] == []
    with MemoryStore(folder, days=math.inf) as again:
        assert again.counts()["entries"] == 60 and again.recall("zanzibarquokka", now=NOW) == []


def test_forget_all_really_deletes_everything(tmp_path):
    folder = tmp_path / "mem"
    store = MemoryStore(folder, days=math.inf)
    add_secrets(store)
    store.add_fact(SECRET_FACT, NOW)
    before = store.counts()["bytes"]
    assert SECRET_FACT.encode() in files_bytes(folder)
    store.forget_all()
    left = files_bytes(folder)
    assert [s for s in [*SECRETS, SECRET_FACT.encode(), b"vermillionotter", b"ordinary mug", b"ordinary"]
            if s in left] == []
    assert store.counts() == {"entries": 0, "facts": 0, "bytes": os.path.getsize(folder / "memory.db")}
    assert store.counts()["bytes"] < before / 4 and os.path.getsize(folder / "memory.db-wal") == 0
    assert store.recall("mug", now=NOW) == [] and store.facts() == []
    new = store.add(wall=NOW, media=None, caption="keys after the wipe")  # the memory still works
    assert store.recall("keys", now=NOW)[0].entry.id == new
    store.close()


def test_retention_at_open_and_on_demand(tmp_path):
    import time
    now = time.time()
    with MemoryStore(tmp_path, days=math.inf) as s:
        ancient = s.add(wall=now - 10 * 86400, media=None, caption="an old receipt", thumbnail=JPEG)
        older = s.add(wall=now - 3 * 86400, media=None, caption="a bicycle")
        fresh = s.add(wall=now - 60, media=None, caption="a cat")
        s.add_fact("facts are kept whatever their age", now - 30 * 86400)
    with MemoryStore(tmp_path, days=7) as s:  # retention runs at open
        assert s.get(ancient) is None and s.thumbnail(ancient) is None and s.get(older) is not None
        assert s.recall("receipt", now=now) == []
        assert s.expire(now, 1) == 1 and s.get(older) is None and s.get(fresh) is not None
        assert s.expire(now, 1) == 0
        assert len(s.facts()) == 1
    with pytest.raises(ValueError):
        MemoryStore(tmp_path, days=0)


def test_files_are_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        folder = tmp_path / "new" / "mem"
        with MemoryStore(folder, days=math.inf) as s:
            s.add(wall=NOW, media=None, caption="keys")
            names = sorted(p.name for p in folder.iterdir())
            assert names == ["memory.db", "memory.db-shm", "memory.db-wal"]
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
            for p in folder.iterdir():
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        loose = tmp_path / "loose"
        loose.mkdir(mode=0o755)  # an empty folder made by hand: made private
        MemoryStore(loose).close()
        assert stat.S_IMODE(loose.stat().st_mode) == 0o700
        os.chmod(folder / "memory.db", 0o644)
        MemoryStore(folder).close()
        assert stat.S_IMODE((folder / "memory.db").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_a_shared_folder_with_other_files_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    (shared / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(MemoryRefused, match="others can read it"):
        MemoryStore(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755 and not (shared / "memory.db").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(MemoryRefused, match="not a folder"):
        MemoryStore(tmp_path / "file")


def refused_unchanged(folder, match: str) -> None:
    path = folder / "memory.db"
    before = path.read_bytes()
    names = {p.name for p in folder.iterdir()}
    with pytest.raises(MemoryRefused, match=match) as err:
        MemoryStore(folder)
    assert "\n" not in str(err.value) and "kept as is" in str(err.value)
    assert path.read_bytes() == before  # never overwritten
    made = {p.name for p in folder.iterdir()} - names  # reading a WAL-mode file makes its -shm (and an empty -wal)
    assert made <= {"memory.db-shm", "memory.db-wal"} and not (made & {"memory.db-wal"} and
                                                                 (folder / "memory.db-wal").stat().st_size)


def private_folder(tmp_path, name):
    folder = tmp_path / name
    folder.mkdir(mode=0o700)
    return folder


def test_a_file_that_is_not_sqlite_is_refused_and_kept(tmp_path):
    folder = private_folder(tmp_path, "text")
    (folder / "memory.db").write_text("my diary: nothing to see here\n" * 50)
    refused_unchanged(folder, "not SQLite")
    (folder / "memory.db").write_bytes(b"SQLite format 3\x00")  # the magic, then nothing
    refused_unchanged(folder, "not SQLite")


def test_another_programs_sqlite_file_is_refused_and_kept(tmp_path):
    folder = private_folder(tmp_path, "foreign")
    conn = sqlite3.connect(folder / "memory.db")
    conn.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
    conn.execute("INSERT INTO contacts VALUES ('Ada', '555-0100')")
    conn.commit()
    conn.close()
    refused_unchanged(folder, "another program's SQLite database")
    conn = sqlite3.connect(folder / "memory.db")
    conn.execute("PRAGMA application_id = 1234")
    conn.commit()
    conn.close()
    refused_unchanged(folder, "another program's SQLite database")


def test_a_memory_from_a_newer_version_is_refused_and_kept(tmp_path):
    folder = tmp_path / "newer"
    MemoryStore(folder).close()
    conn = sqlite3.connect(folder / "memory.db")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    refused_unchanged(folder, "newer version")


def test_a_damaged_memory_is_refused_and_kept(tmp_path):
    folder = tmp_path / "damaged"
    with MemoryStore(folder, days=math.inf) as s:
        s.add_many([dict(wall=NOW + i, media=None, caption=f"entry {i} keys", thumbnail=JPEG) for i in range(200)])
    path = folder / "memory.db"
    data = bytearray(path.read_bytes())
    page = 4096
    for n in range(3, len(data) // page, 7):  # scribble over the page headers of some b-tree pages
        data[n * page:n * page + 12] = b"\x0d\xff\xff\xff\xff\x00\x00\x7f\x7f\x7f\x7f\x7f"
    path.write_bytes(bytes(data))
    refused_unchanged(folder, "damaged")
    path.write_bytes(bytes(data[: len(data) // 2]))  # cut short
    refused_unchanged(folder, "damaged")


def test_an_empty_or_half_created_file_is_adopted(tmp_path):
    folder = private_folder(tmp_path, "empty")
    (folder / "memory.db").write_bytes(b"")
    with MemoryStore(folder) as s:
        assert s.add(wall=NOW, media=None, caption="keys") == 1
    folder = private_folder(tmp_path, "half")
    conn = sqlite3.connect(folder / "memory.db")  # WAL switched on, killed before the schema
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    with MemoryStore(folder) as s:
        assert s.add(wall=NOW, media=None, caption="keys") == 1


def test_a_full_disk_raises_memory_full_and_keeps_what_was_committed(tmp_path):
    folder = tmp_path / "full"
    store = MemoryStore(folder, days=math.inf)
    kept = [store.add(wall=NOW + i, media=None, caption=f"kept entry {i}", thumbnail=JPEG) for i in range(5)]
    fact = store.add_fact("kept fact", NOW)
    pages = store._writer.execute("PRAGMA page_count").fetchone()[0]
    store._writer.execute(f"PRAGMA max_page_count = {pages + 1}")  # SQLite answers SQLITE_FULL beyond this
    with pytest.raises(MemoryFull, match="disk is full"):
        for i in range(10):
            store.add(wall=NOW + 10 + i, media=None, caption=f"lost entry {i}", thumbnail=JPEG * 4)
    assert all(store.get(i).caption == f"kept entry {n}" for n, i in enumerate(kept))
    store.close()
    with MemoryStore(folder, days=math.inf) as again:
        assert [again.get(i).caption for i in kept] == [f"kept entry {n}" for n in range(5)]
        assert again.thumbnail(kept[-1]) == JPEG and [f.id for f in again.facts()] == [fact]
        assert not any("lost" in e.caption for e in again.recent(50))


def test_a_closed_store_refuses(tmp_path):
    store = MemoryStore(tmp_path)
    store.close()
    store.close()
    with pytest.raises(MemoryRefused, match="closed"):
        store.add(wall=NOW, media=None, caption="keys")
    with pytest.raises(MemoryRefused, match="closed"):
        store.recall("keys", now=NOW)


def test_a_describer_thread_and_an_answer_thread_at_once(store):
    errors, ids = [], []

    def describe():
        try:
            for i in range(150):
                ids.append(store.add(wall=NOW + i, media=None, caption=f"keys number {i} on the desk", thumbnail=JPEG))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    def answer():
        try:
            for _ in range(150):
                hits = store.recall("where are my keys", now=NOW + 200)
                assert all(h.entry.caption.startswith("keys number") for h in hits)
                store.recent(5)
                store.counts()
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=describe), threading.Thread(target=answer), threading.Thread(target=answer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(ids) == 150 and store.counts()["entries"] == 150
    assert store.recall("keys", now=NOW + 200, limit=1)[0].entry.id == ids[-1]


def test_a_full_disk_at_the_start_means_a_session_without_memory_not_an_exit(tmp_path, monkeypatch):
    import errno

    from pipelines.app.memory import open_memory
    from pipelines.memory import schema

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(schema.Path, "mkdir", full)  # the memory's folder cannot be made
    with pytest.raises(MemoryFull, match="disk is full"):
        MemoryStore(tmp_path / "m")
    warnings: list[str] = []
    assert open_memory(tmp_path / "m", 7.0, warnings) is None
    assert len(warnings) == 1 and "without memory" in warnings[0]

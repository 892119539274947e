"""The shopping list's two homes: a JSON file (atomic writes, a damaged file set aside, never
overwritten) and the memory database (a migrated table that "forget everything" clears for real)."""
import json
import math
import sqlite3

import pytest

from pipelines.memory import schema
from pipelines.memory.store import MemoryStore
from pipelines.skills.shopping_list import MAX_ITEMS, FileList, ListError, ListFull, MemoryList


def clock():
    t = [1000.0]

    def now():
        t[0] += 1
        return t[0]
    return now


@pytest.fixture(params=["file", "memory"])
def home(request, tmp_path):
    """make() -> a fresh list object over the same storage (a new session), for both backends."""
    stores = []

    def make():
        if request.param == "file":
            return FileList(tmp_path / "out" / "shopping_list.json", now=clock())
        store = MemoryStore(tmp_path / "mem", session="s", days=math.inf)
        stores.append(store)
        return MemoryList(store, now=clock())
    yield make
    for s in stores:
        s.close()


def test_add_list_remove_clear_and_persistence_across_instances(home):
    first = home()
    assert first.items() == []
    milk = first.add("  Whole   milk ", "4000000000017", 1.19)
    bread = first.add("bread")
    assert (milk.text, milk.code, milk.price) == ("Whole milk", "4000000000017", 1.19)
    assert (bread.code, bread.price) == ("", None) and bread.id > milk.id
    second = home()  # another session reads what the first kept
    assert [i.text for i in second.items()] == ["Whole milk", "bread"]
    assert second.remove(milk.id) and not second.remove(milk.id)
    assert [i.text for i in first.items()] == ["bread"]
    second.add("eggs")
    assert home().clear() == 2 and first.items() == [] and first.clear() == 0
    with pytest.raises(ValueError):
        first.add("   ")


def test_the_list_is_bounded(home):
    shopping = home()
    for n in range(MAX_ITEMS):
        shopping.add(f"item {n}")
    with pytest.raises(ListFull):
        shopping.add("one too many")
    assert len(shopping.items()) == MAX_ITEMS and shopping.items()[-1].text == f"item {MAX_ITEMS - 1}"


def test_file_is_written_atomically_and_readable(tmp_path):
    path = tmp_path / "shopping_list.json"
    shopping = FileList(path)
    shopping.add("oat drink", "7394376616006", 1.89)
    data = json.loads(path.read_text())
    assert data["version"] == 1 and data["items"][0]["text"] == "oat drink"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shopping_list.json"]  # no temporary left behind


def test_a_damaged_file_is_set_aside_never_overwritten(tmp_path, caplog):
    path = tmp_path / "shopping_list.json"
    path.write_text('{"version": 1, "items": [{"id": 1, "te')  # a half-written file
    shopping = FileList(path)
    assert shopping.items() == [] and "damaged" in shopping.problem and "corrupt-1" in shopping.problem
    assert (tmp_path / "shopping_list.json.corrupt-1").read_text().startswith('{"version": 1, "items": [{"id"')
    assert "damaged" in caplog.text
    shopping.add("milk")
    assert [i.text for i in FileList(path).items()] == ["milk"]
    path.write_text('["not", "a", "list", "file"]')  # damaged again: a second name, the first kept
    again = FileList(path)
    assert again.items() == [] and (tmp_path / "shopping_list.json.corrupt-2").exists()
    assert (tmp_path / "shopping_list.json.corrupt-1").read_text().startswith('{"version": 1')
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert FileList(path).items() == [] and (tmp_path / "shopping_list.json.corrupt-3").exists()


def test_a_folder_is_not_a_list_file(tmp_path):
    with pytest.raises(ListError, match="is a folder"):
        FileList(tmp_path)


def test_an_unwritable_place_is_one_clear_error(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    shopping = FileList(blocker / "shopping_list.json")
    with pytest.raises(ListError, match="cannot (read|write) the shopping list .*: Not a directory"):
        shopping.add("milk")


def test_forget_everything_clears_the_list_for_real(tmp_path):
    folder = tmp_path / "mem"
    store = MemoryStore(folder, days=math.inf)
    MemoryList(store).add("vermillion otter biscuits", "4000000000017", 2.5)
    on_disk = lambda: b"".join((folder / n).read_bytes() for n in ("memory.db", "memory.db-wal")  # noqa: E731
                               if (folder / n).exists())
    assert b"vermillion otter biscuits" in on_disk()
    store.forget_all()
    assert MemoryList(store).items() == [] and b"vermillion otter" not in on_disk()
    store.close()


def test_an_older_memory_file_gains_the_table_and_keeps_its_data(tmp_path):
    folder = tmp_path / "mem"
    with MemoryStore(folder, days=math.inf) as store:
        store.add_fact("my locker is 7", 1000.0)
    conn = sqlite3.connect(folder / "memory.db")  # make it a version-1 file, as the previous release wrote
    conn.execute("DROP TABLE shopping_list")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with MemoryStore(folder, days=math.inf) as store:
        assert [f.text for f in store.facts()] == ["my locker is 7"]
        MemoryList(store).add("milk")
        assert [i.text for i in MemoryList(store).items()] == ["milk"]
    conn = sqlite3.connect(folder / "memory.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION == 2
    conn.close()

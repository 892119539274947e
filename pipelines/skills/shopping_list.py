"""The wearer's shopping list: a few hundred short lines that outlive the session.

Two homes behind one small protocol (`ShoppingList`): the memory database when memory is on
(`MemoryList`, table `shopping_list`, so "forget everything" clears it with the rest), else a JSON
file in the output folder (`FileList`). Both are bounded (MAX_ITEMS) and read what is stored on
every call, so two sessions (or a restart) see the same list.

The file is written atomically (a temporary file beside it, then os.replace): a kill mid-write
leaves the old list or the new one, never half of one. A file that does not parse as a list is
never overwritten: it is renamed aside (`shopping_list.json.corrupt-1`, ...) with a warning, and a
new list starts; `problem` says so once, for the wearer.

Also here: what the wearer hears about the list (`list_text`), and which item "remove milk" means
(`find_item`), as pure functions.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Protocol

from rapidfuzz import fuzz, process

from pipelines.skills.catalog import Product, unit_price
from pipelines.wake import normalise

log = logging.getLogger("shopping")

MAX_ITEMS = 200  # a shopping list, not a database: a runaway loop stops here
MAX_TEXT = 120  # characters of one item
FILE_VERSION = 1
SPOKEN_ITEMS = 12  # "what's on my list?" reads at most this many, then "and N more"
REMOVE_MATCH = 75.0  # "remove milk": an item on the list this close (rapidfuzz WRatio) is the one meant


@dataclass(frozen=True)
class Item:
    id: int
    text: str  # what the wearer hears: the catalog's name, or the words said ("milk")
    code: str = ""  # the catalog code when the item is a catalog product
    price: float | None = None  # the catalog price when known
    wall: float = 0.0  # unix seconds when added


class ListError(Exception):
    """The list cannot be read or written; str(err) is one line for the wearer's log."""


class ListFull(ListError):
    """MAX_ITEMS are on the list already."""


class ShoppingList(Protocol):
    problem: str  # "" or one line to tell the wearer once (a damaged file was set aside)

    def items(self) -> list[Item]:
        """Every item, oldest first."""
        ...

    def add(self, text: str, code: str = "", price: float | None = None) -> Item:
        """Append one item (ListFull at MAX_ITEMS) and return it."""
        ...

    def remove(self, item_id: int) -> bool:
        ...

    def clear(self) -> int:
        """Remove everything; how many items there were."""
        ...


def clean_text(text: str) -> str:
    text = " ".join(str(text).split())[:MAX_TEXT]
    if not text:
        raise ValueError("a list item needs some words")
    return text


def clean_price(price) -> float | None:
    if isinstance(price, (int, float)) and not isinstance(price, bool) and price == price and abs(price) < 1e9:
        return round(float(price), 2)
    return None


# --- what the wearer hears about the list and prices (pure) ---
UNITS = {"kg": "kilo", "l": "litre", "item": "item"}  # a price per unit, as said
def money(value: float, currency: str = "") -> str:
    return f"{value:.2f}" + (f" {currency}" if currency else "")


def list_text(items: list[Item], currency: str = "") -> str:
    """What "what's on my list?" hears: how many, the items (at most SPOKEN_ITEMS), the known prices' total."""
    if not items:
        return "Your shopping list is empty."
    names = [i.text for i in items[:SPOKEN_ITEMS]]
    more = len(items) - len(names)
    said = ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1] if not more else \
        ", ".join(names) + f" and {more} more"
    count = "one item" if len(items) == 1 else f"{len(items)} items"
    prices = [i.price for i in items if i.price is not None]
    total = "" if not prices else (f" The prices I know add up to {money(sum(prices), currency)}."
                                   if len(prices) < len(items) else f" Together {money(sum(prices), currency)}.")
    return f"Your shopping list has {count}: {said}.{total}"


def find_item(items: list[Item], words: str) -> Item | None:
    """The item on the list meant by `words` (exact, else the closest at REMOVE_MATCH or better)."""
    want = normalise(words)
    for item in reversed(items):
        if normalise(item.text) == want:
            return item
    best = process.extractOne(want, [normalise(i.text) for i in items], scorer=fuzz.WRatio, score_cutoff=REMOVE_MATCH)
    return items[best[2]] if best else None



class FileList:
    """The list as a JSON file: {"version": 1, "items": [{id, text, code, price, wall}, ...]}."""

    def __init__(self, path: Path | str, now: Callable[[], float] = time.time):
        self.path, self.now, self.problem = Path(path).expanduser(), now, ""
        if self.path.is_dir():
            raise ListError(f"{self.path} is a folder: give a file path for the shopping list")

    def items(self) -> list[Item]:
        return self._load()

    def add(self, text: str, code: str = "", price: float | None = None) -> Item:
        items = self._load()
        if len(items) >= MAX_ITEMS:
            raise ListFull(f"the shopping list holds {MAX_ITEMS} items already")
        item = Item(max((i.id for i in items), default=0) + 1, clean_text(text), str(code or ""), clean_price(price),
                    float(self.now()))
        self._save(items + [item])
        return item

    def remove(self, item_id: int) -> bool:
        items = self._load()
        kept = [i for i in items if i.id != item_id]
        if len(kept) == len(items):
            return False
        self._save(kept)
        return True

    def clear(self) -> int:
        items = self._load()
        if items:
            self._save([])
        return len(items)

    # --- the file ---
    def _load(self) -> list[Item]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as err:
            if isinstance(err, UnicodeDecodeError):
                return self._set_aside("it is not text")
            raise ListError(f"cannot read the shopping list {self.path}: {err.strerror or err}") from err
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or not isinstance(data.get("items"), list):
                raise ValueError("no item list in it")
            items = [Item(int(d["id"]), clean_text(d["text"]), str(d.get("code") or ""), clean_price(d.get("price")),
                          float(d.get("wall") or 0.0)) for d in data["items"]]
        except (ValueError, TypeError, KeyError) as err:  # JSONDecodeError is a ValueError
            return self._set_aside(str(err).splitlines()[0][:80] if str(err) else type(err).__name__)
        return items[:MAX_ITEMS]

    def _set_aside(self, why: str) -> list[Item]:
        """Rename the damaged file to a name not taken yet: it is the wearer's, never overwritten."""
        n = 1
        while True:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{n}")
            if not aside.exists():
                break
            n += 1
        try:
            os.rename(self.path, aside)
        except OSError as err:
            raise ListError(f"the shopping list {self.path} is damaged ({why}) and cannot be moved aside: "
                            f"{err.strerror or err}; move it away") from err
        log.warning("shopping list %s is damaged (%s): kept as %s; starting a new list", self.path, why, aside)
        self.problem = (f"Your saved shopping list was damaged, so I kept it aside as {aside.name} and started "
                        "a new one.")
        return []

    def _save(self, items: list[Item]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = {"version": FILE_VERSION, "items": [asdict(i) for i in items]}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f, ensure_ascii=False, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as err:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise ListError(f"cannot write the shopping list {self.path}: {err.strerror or err}") from err


class MemoryList:
    """The list in the memory database (pipelines/memory/store.py), table `shopping_list`
    (pipelines/memory/schema.py). Its errors are the store's: MemoryFull for a full disk."""

    def __init__(self, store, now: Callable[[], float] = time.time):
        self.store, self.now, self.problem = store, now, ""

    def items(self) -> list[Item]:
        rows = self.store._read(lambda c: c.execute(
            "SELECT id, text, code, price, wall FROM shopping_list ORDER BY id").fetchall())
        return [Item(i, t, c, p, w) for i, t, c, p, w in rows]

    def add(self, text: str, code: str = "", price: float | None = None) -> Item:
        text, code, price, wall = clean_text(text), str(code or ""), clean_price(price), float(self.now())

        def work(conn):  # the count and the insert in one transaction: the bound holds with two writers
            if conn.execute("SELECT count(*) FROM shopping_list").fetchone()[0] >= MAX_ITEMS:
                raise ListFull(f"the shopping list holds {MAX_ITEMS} items already")
            return conn.execute("INSERT INTO shopping_list(wall, text, code, price) VALUES (?, ?, ?, ?)",
                                (wall, text, code, price)).lastrowid
        return Item(self.store._write(work), text, code, price, wall)

    def remove(self, item_id: int) -> bool:
        return self.store._write(lambda c: c.execute("DELETE FROM shopping_list WHERE id = ?",
                                                     (int(item_id),)).rowcount > 0)

    def clear(self) -> int:
        return self.store._write(lambda c: c.execute("DELETE FROM shopping_list").rowcount)


def compare_text(this: Product, before: Product, currency: str = "") -> str:
    """`this` (the newer) against `before`, per unit where both units are of one kind."""
    a, b = unit_price(this), unit_price(before)
    if a is None or b is None or a[1] != b[1]:
        why = (f"{(this if a is None else before).name} has no size in your catalog" if a is None or b is None
               else "their sizes are of different kinds")
        return (f"I can't compare them per unit: {why}. {this.name} costs {money(this.price, currency)}, "
                f"{before.name} {money(before.price, currency)}.")
    per = UNITS.get(a[1], a[1])
    ra, rb = f"{money(a[0], currency)} a {per}", f"{money(b[0], currency)} a {per}"
    if round(a[0], 2) == round(b[0], 2):
        return f"They cost the same per {per}: {ra}."
    cheaper, dearer, rc, rd = (this, before, ra, rb) if a[0] < b[0] else (before, this, rb, ra)
    return f"{cheaper.name} is cheaper per {per}: {rc}, against {rd} for {dearer.name}."

"""A shop's product catalogue: what a scanned code or a spoken name is, what it costs, and its
price per kilo, litre or item for comparisons.

`--catalog FILE` is a CSV file with a header row (`code`, `name`, `price` required; `unit`,
`notes` optional, e.g. "500 g", "contains nuts") or an SQLite file with a `products` table of
the same columns. Everything wrong with it is found at start-up and reported as one
`CatalogError` line naming the file and the line (or row): a missing file, an empty one, bytes
that are not UTF-8, a missing column, an empty code or name, a price that is no number, a code
given twice. A product number (8, 12 or 13 digits) must carry a valid check digit, as a scanned
one always does (pipelines/skills/barcodes.py): one that does not could never be found. A UPC-A
and its EAN-13 form (a leading 0) are the same code; any other text (a QR code's) is matched as
it is.

Names are matched with rapidfuzz's `token_set_ratio` on lower-cased words: a name said in part
("oat drink", "peanut butter") scores 100 against the full catalogue name, which is how people
ask for products, and a few shoppers' words are also tried as labels print them ("oat milk" as
"oat drink", `ALIASES`). Measured on the sample catalogue (tests/test_catalog.py): of 29 spoken
names that mean one product, token_set_ratio and WRatio both put it alone at the top, but
token_set_ratio's weakest right answer scores 67 and its best match for a product the shop does not
sell ("nutella", "toilet paper") 50, where WRatio's are 63 and 60: only token_set_ratio leaves room
for a cut-off (MIN_SCORE), so "I don't see that in the catalogue" is said rightly. A word several
names share ("butter", "chocolate") gives equal top scores: the skill hears a tie and asks which one.
"""
from __future__ import annotations

import csv
import io
import math
import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from pipelines.skills.barcodes import check_digit_ok, ean13_key

REQUIRED = ("code", "name", "price")
OPTIONAL = ("unit", "notes")
SAMPLE = Path(__file__).with_name("sample_catalog.csv")
SQLITE_MAGIC = b"SQLite format 3\x00"
MIN_SCORE = 60.0  # by_name leaves out weaker matches: below it a name shares little but a word part


@dataclass(frozen=True)
class Product:
    code: str
    name: str
    price: float
    unit: str = ""
    notes: str = ""


class CatalogError(Exception):
    """A catalogue that cannot be used; the message is one line naming the file and the line."""


class Catalog:
    """Products by code (UPC-A and EAN-13 forms alike) and by name."""

    def __init__(self, products: list[Product], source: str = ""):
        self.products = list(products)
        self.source = source
        self.codes = {ean13_key(p.code): p for p in self.products}
        self.names = [p.name.lower() for p in self.products]

    def __len__(self) -> int:
        return len(self.products)

    def __iter__(self):
        return iter(self.products)

    def by_code(self, text: str) -> Product | None:
        return self.codes.get(ean13_key(text))

    def by_name(self, name: str, limit: int = 5, min_score: float = MIN_SCORE,
                scorer=None) -> list[tuple[Product, float]]:
        """The products whose names best match `name`, best first, each with its score (0-100):
        the best of the name as said and as `aliases` words it. `scorer`: a rapidfuzz scorer
        (token_set_ratio unless given; tests compare others)."""
        from rapidfuzz import fuzz, process, utils

        best: dict[int, float] = {}
        for query in aliases(name):
            for _, score, i in process.extract(query, self.names, scorer=scorer or fuzz.token_set_ratio,
                                               processor=utils.default_process, limit=None,
                                               score_cutoff=min_score):
                best[i] = max(best.get(i, 0.0), float(score))
        ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [(self.products[i], score) for i, score in ranked]


# Words shoppers say for what labels print: plant drinks are sold as "drink" (EU law keeps "milk"
# for dairy), and a few everyday names.
ALIASES = {"milk": "drink", "yoghurt": "yogurt", "coke": "cola", "fizzy": "sparkling"}


def aliases(name: str) -> list[str]:
    """`name`, and `name` with each alias word replaced when it has any: "oat milk" ->
    ["oat milk", "oat drink"]."""
    words = name.lower().split()
    swapped = " ".join(ALIASES.get(w, w) for w in words)
    return [name] if swapped == " ".join(words) else [name, swapped]


# --- reading a file ---------------------------------------------------------------------------
def parse_price(text: str) -> float | None:
    """A price as a number: "2.49", "2,49", "£2.49", " 3 " -> float; None when it is no price
    (empty, words, negative, infinite)."""
    text = re.sub(r"[£$€\s]", "", text or "")
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def check_code(code: str) -> str:
    """Why `code` cannot be a catalogue code ("" when it can)."""
    digits = code.replace(" ", "").replace("-", "")
    if not code:
        return "the code is empty"
    if digits.isdigit() and not check_digit_ok(digits):
        if len(digits) not in (8, 12, 13):
            return f"code {code} has {len(digits)} digits (a product number has 8, 12 or 13)"
        return f"code {code} has a wrong check digit"
    return ""


def product_rows(rows, where: str) -> list[Product]:
    """Products from (line, dict) pairs, checked; `where` names the file in messages."""
    products: list[Product] = []
    seen: dict[str, tuple[int, str]] = {}
    for line, row in rows:
        code = (row.get("code") or "").strip()
        name = (row.get("name") or "").strip()
        price_text = str(row.get("price") if row.get("price") is not None else "").strip()
        problem = check_code(code)
        if problem:
            raise CatalogError(f"{where} line {line}: {problem}")
        if not name:
            raise CatalogError(f"{where} line {line}: the name is empty (code {code})")
        price = parse_price(price_text)
        if price is None:
            raise CatalogError(f"{where} line {line}: price {price_text!r} is not a price (write it like 2.49)")
        key = ean13_key(code)
        if key in seen:
            first, first_code = seen[key]
            raise CatalogError(f"{where} line {line}: code {code} is given twice (also line {first}: {first_code})")
        seen[key] = (line, code)
        products.append(Product(code, name, price, str(row.get("unit") or "").strip(),
                                str(row.get("notes") or "").strip()))
    return products


def check_columns(columns, where: str, line: str = "line 1") -> None:
    names = [str(c or "").strip().lower() for c in columns]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise CatalogError(f"{where} {line}: missing column {', '.join(missing)} (the header needs code, name, "
                           f"price; unit and notes are optional)")


def read_csv(path: Path) -> list[Product]:
    where = str(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise CatalogError(f"{where} line {line}: not UTF-8 text (save the file as UTF-8)") from None
    if not text.strip():
        raise CatalogError(f"{where} line 1: the file is empty (it needs a header row: code,name,price,unit,notes)")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
        check_columns(header, where)
        columns = [c.strip().lower() for c in header]
        rows = []
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue  # a blank line
            rows.append((reader.line_num, dict(zip(columns, fields))))
    except csv.Error as err:
        raise CatalogError(f"{where} line {reader.line_num}: {err}") from None
    return product_rows(rows, where)


def read_sqlite(path: Path) -> list[Product]:
    where = str(path)
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            cursor = db.execute("SELECT * FROM products ORDER BY rowid")
            columns = [d[0].lower() for d in cursor.description]
            check_columns(columns, where, "table products")
            rows = [(i, dict(zip(columns, values))) for i, values in enumerate(cursor, start=1)]
    except sqlite3.Error as err:
        raise CatalogError(f"{where}: cannot read its products table ({err})") from None
    return product_rows(rows, where)  # a row's number stands for its line


def load_catalog(path) -> Catalog:
    """The catalogue in `path` (CSV, or SQLite when the file says so); CatalogError when it is
    missing or malformed, with one line saying where and what."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: no such file (--catalog takes a CSV file with a header row code,name,price)")
    with path.open("rb") as f:
        head = f.read(len(SQLITE_MAGIC))
    products = read_sqlite(path) if head == SQLITE_MAGIC else read_csv(path)
    if not products:
        raise CatalogError(f"{path} line 2: no products under the header")
    return Catalog(products, str(path))


# --- prices per unit --------------------------------------------------------------------------
# Each unit word: (the base it is priced in, how many of that base one unit is).
UNITS = {
    "kg": ("kg", 1.0), "kilo": ("kg", 1.0), "kilos": ("kg", 1.0), "g": ("kg", 0.001), "gr": ("kg", 0.001),
    "grams": ("kg", 0.001), "mg": ("kg", 1e-6), "lb": ("kg", 0.453592), "lbs": ("kg", 0.453592),
    "oz": ("kg", 0.0283495),
    "l": ("l", 1.0), "litre": ("l", 1.0), "litres": ("l", 1.0), "liter": ("l", 1.0), "liters": ("l", 1.0),
    "ml": ("l", 0.001), "cl": ("l", 0.01), "dl": ("l", 0.1), "floz": ("l", 0.0295735),
    "pack": ("item", 1.0), "pk": ("item", 1.0), "pcs": ("item", 1.0), "pieces": ("item", 1.0),
    "items": ("item", 1.0), "count": ("item", 1.0), "ct": ("item", 1.0), "bags": ("item", 1.0),
    "rolls": ("item", 1.0), "eggs": ("item", 1.0), "each": ("item", 1.0), "item": ("item", 1.0),
}
UNIT_RE = re.compile(r"^(?:(\d+)\s*[x×*]\s*)?(\d+(?:[.,]\d+)?)?\s*([a-z ]+?)\.?$")


def parse_unit(unit: str) -> tuple[float, str] | None:
    """How much a unit text holds in its base: "500 g" -> (0.5, "kg"), "6 x 330 ml" -> (1.98,
    "l"), "12 pack" -> (12, "item"), "each" -> (1, "item"); None when it cannot tell."""
    text = unit.strip().lower().replace("fl oz", "floz")
    match = UNIT_RE.match(text)
    if not match:
        return None
    count, amount, word = match.groups()
    if word.strip() not in UNITS:
        return None
    base, size = UNITS[word.strip()]
    quantity = (int(count) if count else 1) * float((amount or "1").replace(",", ".")) * size
    return (quantity, base) if quantity > 0 else None


def unit_price(product: Product) -> tuple[float, str] | None:
    """The product's price per kg, l or item ("kg" | "l" | "item"), or None when its unit says
    no amount."""
    parsed = parse_unit(product.unit)
    if parsed is None:
        return None
    quantity, base = parsed
    return product.price / quantity, base

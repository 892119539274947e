"""The shop catalogue: codes (UPC-A = EAN-13 with a leading 0), names matched with rapidfuzz,
prices per unit, and one clear line for every malformed file."""
import sqlite3

import pytest

from pipelines.skills.barcodes import check_digit_ok
from pipelines.skills.catalog import (SAMPLE, Catalog, CatalogError, MIN_SCORE, Product, aliases, load_catalog, parse_price,
                                      parse_unit, unit_price)

pytest.importorskip("rapidfuzz", reason="rapidfuzz is not installed (pip install rapidfuzz): name matching untested")

# Spoken names and the one product each means in the sample catalogue.
NAMED = {
    "oat milk": "Oatly Oat Drink", "oat drink": "Oatly Oat Drink", "oatly": "Oatly Oat Drink",
    "peanut butter": "Crunchy Peanut Butter", "eggs": "Free Range Eggs", "gluten free bread": "Gluten Free White Bread",
    "cheddar": "Mature Cheddar", "cheddar cheese": "Mature Cheddar", "yoghurt": "Greek Style Yogurt",
    "greek yogurt": "Greek Style Yogurt", "apples": "Gala Apples", "basmati rice": "Basmati Rice",
    "tinned tomatoes": "Chopped Tomatoes", "beans": "Baked Beans", "hazelnut spread": "Hazelnut Chocolate Spread",
    "corn flakes": "Cornflakes", "porridge": "Porridge Oats", "orange juice": "Orange Juice",
    "fizzy water": "Sparkling Water", "coke": "Cola", "tea": "English Breakfast Tea", "coffee": "Ground Coffee",
    "olive oil": "Extra Virgin Olive Oil", "tofu": "Firm Tofu", "maple syrup": "Maple Syrup",
    "almond milk": "Almond Drink", "wholemeal bread": "Wholemeal Bread", "spagetti": "Spaghetti",
    "semi skimmed milk": "Semi-Skimmed Milk",
}
AMBIGUOUS = {"butter": {"Salted Butter", "Crunchy Peanut Butter"},
             "chocolate": {"Hazelnut Chocolate Spread", "Milk Chocolate Bar"}}
ABSENT = ("dog food", "toilet paper", "nutella", "shampoo")


@pytest.fixture(scope="module")
def sample() -> Catalog:
    return load_catalog(SAMPLE)


def test_the_sample_catalogue_is_about_thirty_groceries_with_valid_codes(sample):
    assert 25 <= len(sample) <= 40
    assert all(check_digit_ok(p.code) for p in sample)
    assert sample.by_code("4006381333931") is None  # the "unknown code" example
    notes = " ".join(p.notes for p in sample)
    for note in ("contains nuts", "gluten free", "vegan"):
        assert note in notes
    assert all(unit_price(p) for p in sample)  # every sample unit says an amount


def test_codes_match_in_upc_a_and_ean_13_forms(sample):
    assert sample.by_code("5074852605749").name == "Oatly Oat Drink"
    assert sample.by_code("057542273829").name == "Maple Syrup"  # stored as the 12-digit UPC-A
    assert sample.by_code("0057542273829").name == "Maple Syrup"  # read as its EAN-13 form
    assert sample.by_code("047065469465").name == "Almond Drink"  # stored as the 13-digit form
    assert sample.by_code(" 5074852605749 ").name == "Oatly Oat Drink"
    assert sample.by_code("5074852605748") is None
    assert sample.by_code("") is None


def test_a_qr_text_is_a_code_too(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("code,name,price\nhttps://shop.example/p/7,Gift Card,10\n", encoding="utf-8")
    assert load_catalog(path).by_code("https://shop.example/p/7").name == "Gift Card"


def test_names_said_in_part_find_the_product_alone_at_the_top(sample):
    wrong = {}
    for query, name in NAMED.items():
        found = sample.by_name(query)
        if not found or found[0][0].name != name or (len(found) > 1 and found[1][1] >= found[0][1]):
            wrong[query] = [(p.name, s) for p, s in found[:3]]
    assert not wrong


def test_names_shared_by_products_tie_and_absent_ones_find_nothing(sample):
    for query, names in AMBIGUOUS.items():
        found = sample.by_name(query)
        top = {p.name for p, s in found if s == found[0][1]}
        assert top == names, query
    for query in ABSENT:
        assert sample.by_name(query) == [], query
    assert all(0 <= s <= 100 for _, s in sample.by_name("milk"))
    assert aliases("Oat Milk") == ["Oat Milk", "oat drink"]
    assert aliases("whole grain") == ["whole grain"]


def test_token_set_ratio_beats_wratio_on_spoken_names(sample):
    """The measurement behind the scorer chosen in pipelines/skills/catalog.py: both put the
    right product alone at the top, but token_set_ratio leaves a wide gap between the weakest right
    answer and the best match for a product the shop does not sell, where MIN_SCORE sits."""
    from rapidfuzz import fuzz

    def measure(scorer) -> tuple[int, float, float]:
        hits, weakest = 0, 100.0
        for query, name in NAMED.items():
            found = sample.by_name(query, min_score=0, scorer=scorer)
            hits += found[0][0].name == name and found[1][1] < found[0][1]
            weakest = min(weakest, found[0][1])
        absent = max(sample.by_name(q, min_score=0, scorer=scorer)[0][1] for q in ABSENT)
        return hits, weakest, absent

    (t_hits, t_low, t_absent), (w_hits, w_low, w_absent) = measure(fuzz.token_set_ratio), measure(fuzz.WRatio)
    print(f"\nright and alone at the top of {len(NAMED)}: token_set_ratio {t_hits}, WRatio {w_hits}; weakest right "
          f"score vs best absent product: token_set_ratio {t_low:.0f} vs {t_absent:.0f}, WRatio {w_low:.0f} vs "
          f"{w_absent:.0f}")
    assert t_hits == len(NAMED)
    assert t_absent < MIN_SCORE <= t_low
    assert t_low - t_absent > w_low - w_absent + 5


# --- malformed catalogues: one line naming the file and the line --------------------------------
HEADER = "code,name,price,unit,notes\n"
GOOD = "5074852605749,Oatly Oat Drink,2.10,1 l,vegan\n"
BAD = {
    "missing column": ("code,name,unit\n5074852605749,Oat Drink,1 l\n", "line 1", "missing column price"),
    "bad price": (HEADER + GOOD + "5079380927523,Milk,cheap,2 l,\n", "line 3", "'cheap' is not a price"),
    "negative price": (HEADER + GOOD + "5079380927523,Milk,-1,2 l,\n", "line 3", "is not a price"),
    "empty price": (HEADER + "5079380927523,Milk\n", "line 2", "'' is not a price"),
    "empty code": (HEADER + GOOD + GOOD.replace("5074852605749", "") + "\n", "line 3", "the code is empty"),
    "empty name": (HEADER + "5079380927523,,1.00,,\n", "line 2", "the name is empty"),
    "duplicate code": (HEADER + GOOD + "\n" + GOOD, "line 4", "given twice (also line 2"),
    "duplicate upc form": ("code,name,price\n057542273829,Syrup,6\n0057542273829,Syrup again,6\n", "line 3",
                           "given twice (also line 2: 057542273829)"),
    "wrong check digit": (HEADER + "5074852605748,Oat Drink,2.10,,\n", "line 2", "wrong check digit"),
    "digits of no code": (HEADER + "12345,Oat Drink,2.10,,\n", "line 2", "has 5 digits"),
    "empty file": ("", "line 1", "the file is empty"),
    "header only": (HEADER, "line 2", "no products"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_malformed_catalogue_is_one_line_naming_file_and_line(tmp_path, case):
    text, line, reason = BAD[case]
    path = tmp_path / "shop.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_catalog(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path} {line}:"), message
    assert reason in message


def test_bytes_that_are_not_utf8_name_their_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + GOOD + "5079380927523,Crème fraîche,1.20,,\n").encode("latin-1"))
    with pytest.raises(CatalogError, match=r"latin1\.csv line 3: not UTF-8"):
        load_catalog(path)


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(CatalogError, match=r"nope\.csv: no such file"):
        load_catalog(tmp_path / "nope.csv")


def test_a_utf8_file_with_a_byte_order_mark_quotes_and_blank_lines_loads(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufeffCode,Name,Price,Unit\r\n\r\n5074852605749,\"Oat Drink, Barista\",\"2,10\",1 l\r\n")
                     .encode("utf-8"))
    product = load_catalog(path).by_code("5074852605749")
    assert product == Product("5074852605749", "Oat Drink, Barista", 2.10, "1 l", "")


# --- SQLite -------------------------------------------------------------------------------------
def make_db(path, columns="code TEXT, name TEXT, price REAL, unit TEXT, notes TEXT", rows=()):
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE products ({columns})")
        db.executemany(f"INSERT INTO products VALUES ({','.join('?' * len(rows[0]))})", rows) if rows else None
    db.close()


def test_an_sqlite_catalogue_loads_and_its_errors_name_the_row(tmp_path):
    good = tmp_path / "shop.db"
    make_db(good, rows=[("5074852605749", "Oat Drink", 2.1, "1 l", "vegan"), ("057542273829", "Syrup", 6.49, None, None)])
    catalog = load_catalog(good)
    assert len(catalog) == 2 and catalog.by_code("0057542273829").name == "Syrup"
    assert catalog.by_code("5074852605749") == Product("5074852605749", "Oat Drink", 2.1, "1 l", "vegan")
    bad = tmp_path / "bad.sqlite"
    make_db(bad, rows=[("5074852605749", "Oat Drink", 2.1, "", ""), ("5074852605749", "Again", 2.1, "", "")])
    with pytest.raises(CatalogError, match=r"bad\.sqlite line 2: code 5074852605749 is given twice"):
        load_catalog(bad)
    no_price = tmp_path / "noprice.db"
    make_db(no_price, columns="code TEXT, name TEXT", rows=[("5074852605749", "Oat Drink")])
    with pytest.raises(CatalogError, match=r"noprice\.db table products: missing column price"):
        load_catalog(no_price)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE items (code TEXT)")
    db.close()
    with pytest.raises(CatalogError, match=r"other\.db: cannot read its products table"):
        load_catalog(other)


# --- prices -------------------------------------------------------------------------------------
@pytest.mark.parametrize("unit, expected", [
    ("1 l", (1.0, "l")), ("500 g", (0.5, "kg")), ("6 x 330 ml", (1.98, "l")), ("12 pack", (12.0, "item")),
    ("1kg", (1.0, "kg")), ("2 L", (2.0, "l")), ("75 cl", (0.75, "l")), ("6x25g", (0.15, "kg")), ("each", (1.0, "item")),
    ("1,5 l", (1.5, "l")), ("80 bags", (80.0, "item")), ("16 oz", (0.453592, "kg")),
    ("", None), ("big", None), ("0 g", None), ("500 bananas", None),
])
def test_units_parse_into_kilos_litres_or_items(unit, expected):
    got = parse_unit(unit)
    if expected is None:
        assert got is None
    else:
        assert got[1] == expected[1] and got[0] == pytest.approx(expected[0], rel=1e-4)


def test_unit_price_compares_packs(sample):
    cola = sample.by_name("cola")[0][0]
    per, base = unit_price(cola)
    assert base == "l" and per == pytest.approx(3.99 / 1.98)
    assert unit_price(Product("1", "Eggs", 2.40, "12 pack")) == pytest.approx((0.2, "item"))
    assert unit_price(Product("1", "Thing", 2.40)) is None


@pytest.mark.parametrize("text, price", [("2.49", 2.49), ("2,49", 2.49), ("£2.49", 2.49), (" 3 ", 3.0), ("0", 0.0),
                                         ("", None), ("abc", None), ("-1", None), ("inf", None), ("nan", None)])
def test_prices_parse(text, price):
    assert parse_price(text) == (pytest.approx(price) if price is not None else None)

"""Shopping: a product's price from its barcode (else by sight), a comparison per unit with the
one before, and a shopping list that outlives the session (pipelines/skills/shopping_list.py).

`intent_of` decides from the words alone: out of shopping mode only clearly shopping words ("how
much is this shirt?", "add milk to my list"), in it also product questions ("what is this?",
"does this contain nuts?"); never memory questions or timers. A product is its barcode, read in
the frames around the question (barcodes.read_frames) and looked up in the catalog; else the VLM
names what it sees (a short prompt, not spoken) and the name is matched to the catalog, saying
how sure the match is. An unknown code is said as read: prices, names and notes come only from
the catalog, never made up.
"""
from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import replace

import cv2

from core.messages import Evidence, VLMRequest
from pipelines import modes
from pipelines.memory.db import MemoryFull
from pipelines.memory.recall import kind_of
from pipelines.modes import ModeContext, ModeResult
from pipelines.skills import barcodes
from pipelines.skills.base import say
from pipelines.skills.catalog import Product, aliases
from pipelines.skills.shopping_list import (MAX_ITEMS, ListError, ListFull, compare_text, find_item,  # noqa: F401
                                            list_text, money)
from pipelines.wake import normalise

# --- how sure a name match is (Catalog.by_name's token_set_ratio, 0-100) ---
# token_set_ratio scores 100 whenever one name's words are a subset of the other's, so a score
# alone cannot tell "Tropicana orange juice" (Orange Juice: right) from "White bread" (Gluten Free
# White Bread: wrong) or "Cola lip balm" (Cola: wrong). A match is sure only when the name seen
# also holds every word of the catalog's name and ends in one of them (`covers`), and only one
# product is so. Measured on the sample catalog (tests/test_shopping_skill.py, MEASURED): of 33
# names a VLM gives for its products, 29 sure and right, 3 "might be" (right), 1 not found
# ("Kellogg's Corn Flakes", 64.5); of 32 names of products it lacks, none sure, 8 "might be" (a
# catalog name's part: "White bread", "Milk", "Cola lip balm"), 24 not found (9 of them scoring
# 60-75: "Soy milk" 71.4, "Apple juice" 69.6; hence MAYBE 75, above them).
SURE_SCORE = 90.0  # and every catalog word covered, one product only: "That looks like X. I'm fairly sure."
MAYBE_SCORE = 75.0  # at or above: "It might be X, but I'm not sure."; below: not in the catalog
FRAME_WINDOW = 2.0  # seconds before the end of the question whose frames are read for a code
FRAMES_READ = 5  # the sharpest this many of them

NO_ENGINE = "I can't read barcodes: install zxing-cpp."
NOTHING_SEEN = "I can't see a product or a barcode. Hold it closer to the camera."
NO_CATALOG = "I have no product catalog, so I can't tell prices."
NAME_PROMPT = ("Name the product in the picture as its shop label would: brand and product in a few words. "
               "If there is no product, write: none")
ASK_PROMPT = ("The wearer is shopping and holds {name}. Their catalog says: {facts}.\nThey ask: {question}\n"
              "Answer in one or two short spoken sentences, from the catalog and what you see. If neither tells, "
              "say you don't know; never guess about allergens.")
_SIZES = {"l", "ml", "cl", "g", "kg", "x", "oz", "lb", "litre", "litres", "liter", "liters", "gram", "grams", "pack"}
_PACKS = {"loaf", "bottle", "bottles", "can", "cans", "carton", "jar", "tin", "box", "bag", "cheese", "bar"}

# --- the words ------------------------------------------------------------------------------------
_THIS = r"(?:this|that|these|those|it)(?: one| thing| item| product)?"
_LIST = r"(?:my |the |our )?(?:shopping |grocery |groceries )?list"
_OTHER_LIST = re.compile(r"\b(?:to ?do|reading|play|watch|guest|wish|bucket|contacts?|mailing|waiting)\s?lists?\b")
_NOT_OURS = re.compile(r"\b(?:timers?|remind|reminders?|alarms?|stopwatch|photos?|pictures?|videos?|translat\w*|"
                       r"colou?rs?)\b")
_LEAVE = re.compile(r"^(?:(?:stop|end|quit|exit|leave|close|finish|cancel) (?:the )?shopping(?: mode)?|"
                    r"(?:turn|switch) (?:off )?(?:the )?shopping mode(?: off)?|shopping mode off|"
                    r"(?:i m |im |i am |we re |were )?(?:done|finished) (?:with )?shopping(?: mode)?|"
                    r"no more shopping)$")
_ENTER = re.compile(r"^(?:(?:turn on|switch to|go to|go into|enter|start|open|use|activate) (?:the )?shopping mode|"
                    r"shopping mode(?: on)?|(?:turn|switch) (?:the )?shopping mode on|"
                    r"(?:lets |let s |i m |im |i am |we re |were )?(?:start|begin|go|going) shopping|"
                    r"(?:help|helping) (?:me |us )?(?:to )?(?:shop|with (?:the |my )?shopping)|"
                    r"i m shopping|im shopping|i am shopping)$")

# (intent, pattern) in order: the first that matches decides. Patterns see `clean(question)`.
_ANYTIME = (
    ("list_clear", r"^(?:clear|empty|wipe|erase|delete|reset|scrap|clean)(?: out)? (?:out )?(?:all of |everything on )?"
                   rf"(?:my |the |our )?(?:whole |entire )?(?:shopping |grocery )?list$"
                   rf"|^(?:remove|delete|clear|take) (?:everything|all(?: the)?(?: items)?) (?:from|on|off) {_LIST}$"
                   r"|^start (?:a )?(?:new|fresh) (?:shopping )?list$"),
    ("list_read", rf"\bwhat(?: s| is|s)? (?:on|in|left on) {_LIST}\b|^(?:read|tell|show|give)(?: me)?(?: back)? {_LIST}"
                  rf"(?: back)?$|^{_LIST}$|^how many (?:things|items) are (?:on|in) {_LIST}$"
                  r"|\bwhat do (?:i|we) (?:still )?need to (?:buy|get)\b"),
    ("list_add", rf"^(?:add|put|stick|write|pop|jot|note)(?: down)? (?P<what>.+?) (?:to|on|onto|in|into) {_LIST}$"
                 rf"|^(?:add|put) (?P<none>it )?(?:to|on) {_LIST}$"),
    ("list_remove", rf"^(?:remove|delete|drop|erase|take) (?P<what>.+?) (?:from|off|out of|off of) {_LIST}$"
                    rf"|^(?:cross|scratch|strike|tick) (?:off )?(?P<what2>.+?)(?: off)?(?: (?:from|on|off) {_LIST})?$"
                    r"|^(?:remove|delete) (?P<what3>(?!(?:this|that|it|the|a|an|my)\b)\w+(?: \w+)?)$"),
    ("compare", r"\b(?:cheaper|pricier|more expensive|less expensive|better (?:deal|value|price|buy)|"
                r"(?:good|best) value)\b.*\b(?:last|previous|other|before|first)\b"
                r"|\bcompare\b.*\b(?:last|previous|other|before|first|them|both|two)\b|^compare(?: prices)?$"
                r"|\bwhich (?:one )?(?:is|was) (?:cheaper|the better (?:deal|buy)|better value)\b"),
    ("price", rf"\bhow much (?:is|are|was|were|s) {_THIS}(?: \w+){{0,4}}$|\bhow much {_THIS} (?:is|costs?)$"
              rf"|\bhow much (?:does|do|did|would|will|should) {_THIS}(?: \w+){{0,3}} (?:costs?|go for|sell for|be)$"
              rf"|\bhow much (?:for|do i pay for|to pay for|would i pay for) {_THIS}\b"
              rf"|\bwhat (?:does|do|did|would|will) {_THIS}(?: \w+){{0,3}} cost\b|\b(?:price|cost) of {_THIS}\b"
              rf"|\bwhat(?: s| is|s) the (?:price|cost)\b|\b(?:price|cost) (?:check|tag)\b"
              rf"|\bhow (?:expensive|pricey|cheap) (?:is|are) {_THIS}\b|\bis {_THIS} (?:expensive|cheap|on sale)\b"),
    ("scan", r"^scan(?: (?:this|that|it|the))?(?: (?:barcode|bar code|code|item|product|thing|label|one|price))?$"
             r"|\bbar ?codes?\b|\b(?:read|check) (?:this|that|the) (?:upc|ean)\b"),
)
_IN_MODE = (
    ("list_add", r"^(?:add|put|get) (?P<what>.+?)(?: too| as well)?$"),
    ("list_remove", r"^(?:remove|delete|drop) (?P<what>.+)$"),
    ("price", r"^(?:how much|price|the price|cost|and this one|what about this one|this one|and this|what about this)$"
              r"|^(?:what|whats|what s)(?: is)? (?:this|that|it)(?: one| thing| product| item| here)?$"
              r"|^what (?:product|brand|item) is (?:this|that|it)$|^what am i (?:holding|looking at)$"
              r"|^(?:tell me )?what (?:this|that) is$"),
    ("ask", r"\b(?:is|are|does|do|has|have|can|will) (?:this|that|it|these|those)\b.*\b(?:good|bad|healthy|vegan|"
            r"vegetarian|gluten\w*|lactose|dairy|milk|nuts?|peanuts?|sugar|salt|fat|calories|organic|halal|kosher|"
            r"contain\w*|ingredients?|allerg\w*|expire\w*|fresh|safe|spicy|sweet|alcohol|worth it|recommend\w*)\b"
            r"|\bwhat(?: s| is|s) in (?:this|that|it|them)\b|\bingredients?\b|\ballerg\w*|\bnutrition\w*"
            r"|^(?:tell me )?(?:more )?about (?:this|that|it)\b|\bhow (?:healthy|good) is\b|\bhow many calories\b"
            r"|\bwhat (?:size|flavou?r|brand|kind|type)\b"),
)
_ANYTIME_RE = tuple((name, re.compile(p)) for name, p in _ANYTIME)
_IN_MODE_RE = tuple((name, re.compile(p)) for name, p in _IN_MODE)
_FILLERS = re.compile(r"\b(?:please|um+|uh+|erm|er|hmm+|kindly)\b")
_OPENERS = re.compile(r"^(?:(?:ok|okay|so|and|hey|now|well|oh|right|alright|glasses|just|also)\s+)+"
                      r"|^(?:can|could|would|will) you (?:please )?(?:(?:tell|let) me )?|^(?:i want to know|tell me) ")
_PRONOUNS = {"this", "that", "it", "these", "those", "this one", "that one", "this thing", "this product",
             "this item", "them", "it too", "this too", "that too"}


def clean(question: str) -> str:
    """Normalised words without politeness and fillers: "Um, could you add milk to my list, please?"
    -> "add milk to my list"."""
    q = " ".join(_FILLERS.sub(" ", normalise(question)).split())
    for _ in range(3):
        q = _OPENERS.sub("", q).strip()
    return re.sub(r"\s+(?:for me|now|then|too)$", "", q) if len(q.split()) > 2 else q


def standing(question: str) -> bool | None:
    """True: the words turn shopping mode on; False: off; None: not a switch."""
    q = clean(question)
    if _LEAVE.match(q):
        return False
    return True if _ENTER.match(q) else None


def intent_of(question: str, active: str = "") -> tuple[str, str]:
    """(intent, the item words for list_add / list_remove) or ("", "") when the words are not shopping's.

    Intents: price, scan (both: find the product and say its price), compare, ask (a product
    question in shopping mode: the VLM answers with the catalog's facts), list_add, list_read,
    list_remove, list_clear."""
    q = clean(question)
    if not q or standing(question) is not None or kind_of(question) or _NOT_OURS.search(q) or _OTHER_LIST.search(q):
        return "", ""
    rules = _ANYTIME_RE + (_IN_MODE_RE if active == "shopping" else ())
    for name, pattern in rules:
        m = pattern.search(q)
        if m:
            what = next((v for k, v in m.groupdict().items() if v and k.startswith("what")), "")
            what = re.sub(r"^(?:the|a|an|some|my|our) ", "", what.strip())
            if name in ("list_add", "list_remove") and what in _PRONOUNS:
                what = ""
            if name == "list_remove" and not what and "list" not in q and active != "shopping":
                continue
            return ("price" if name == "scan" else name), what
    return "", ""


# --- what the wearer hears (pure) ------------------------------------------------------------------
def product_text(p: Product, currency: str = "") -> str:
    """"Oat drink, 1 l: 1.89. Contains oats." (the catalog's words only)."""
    head = f"{p.name}, {p.unit}" if p.unit else p.name
    notes = p.notes.strip().rstrip(".")
    return f"{head}: {money(p.price, currency)}." + (f" {notes[0].upper()}{notes[1:]}." if notes else "")


def covers(seen: str, name: str) -> float:
    """The share of `name`'s words that `seen` holds (as said or as catalog.aliases words it; a long
    word may be split or joined: "corn flakes" holds "cornflakes"). 0 when the last word of `seen`,
    its head noun ("Cola lip BALM"), is none of them nor a word for a pack or a kind."""
    words = re.findall(r"[a-z0-9]+", name.lower())
    best = 0.0
    for form in aliases(seen.lower()):
        said = [w for w in re.findall(r"[a-z]+", form) if w not in _SIZES]
        joined = "".join(said)
        found = sum(w in said or (len(w) >= 5 and w in joined) for w in words) / max(1, len(words))
        head = said[-1] if said else ""
        if head in words or head in _PACKS or any(len(w) >= 5 and w in "".join(said[-2:]) for w in words):
            best = max(best, found)
    return best


def best_match(seen: str, matches: list[tuple[Product, float]]) -> tuple[list[Product], float, bool]:
    """(the likeliest products, best first: one when sure, two when two tie; their score; sure)."""
    if not matches:
        return [], 0.0, False
    ranked = sorted(matches, key=lambda m: (-m[1], -covers(seen, m[0].name)))
    full = [p for p, score in ranked if score >= SURE_SCORE and covers(seen, p.name) == 1.0]
    if len(full) == 1:
        return full, next(s for p, s in ranked if p is full[0]), True
    top = ranked[0][1]
    return [p for p, score in ranked[:2] if score >= top - 0.5], top, False


def sight_text(seen: str, matches: list[tuple[Product, float]], currency: str = "") -> tuple[str, Product | None]:
    """(what to say, the product when the match is sure) for a product the VLM named `seen`,
    with Catalog.by_name's `matches`."""
    likely, score, sure = best_match(seen, matches)
    if not likely or score < MAYBE_SCORE:
        return f"I couldn't find it in your catalog; the model thinks it's {seen}.", None
    if sure:
        p = likely[0]
        return f"That looks like {p.name}, {money(p.price, currency)}. I'm fairly sure.", p
    said = " or ".join(f"{p.name}, {money(p.price, currency)}," for p in likely)
    return f"It might be {said} but I'm not sure.", None


def frames_near(frames: list, end: float, best=None) -> list:
    """The sharpest FRAMES_READ images of the FRAME_WINDOW seconds before `end` (and just after),
    sharpest first; the newest ones when none is in the window."""
    near = [f for f in frames if end - FRAME_WINDOW <= f.t <= end + 0.5] or list(frames)[-FRAMES_READ:]
    if best is not None and all(f is not best for f in near):
        near.append(best)
    return [f.image for f in sorted(near, key=lambda f: -f.sharpness)[:FRAMES_READ]]


def thumbnail(image, width: int = 240):
    """The middle of the frame, small, for the display card (a product is held in the middle)."""
    h, w = image.shape[:2]
    crop = image[h // 5: h - h // 5, w // 5: w - w // 5]
    return cv2.resize(crop, (width, max(1, crop.shape[0] * width // crop.shape[1])), interpolation=cv2.INTER_AREA)


class ShoppingSkill:
    name = "shopping"

    def __init__(self, catalog, shopping_list, *, currency: str = "", engines: tuple[str, ...] | None = None):
        """`catalog`: a catalog.Catalog, or None (then prices cannot be told). `shopping_list`: a
        shopping_list.FileList or MemoryList. `currency`: said after prices ("" says "1.89").
        `engines`: the barcode engines to use (default: those installed)."""
        self.catalog, self.list, self.currency = catalog, shopping_list, currency
        self.engines = tuple(barcodes.engines_available() if engines is None else engines)
        self.warned = False  # NO_ENGINE is said once
        self.seen: deque[Product] = deque(maxlen=2)  # the last product looked at, and the one before

    standing = staticmethod(standing)  # the router asks it whether words switch shopping mode

    def wants(self, question: str, active: str = "") -> str:
        intent, _ = intent_of(question, active)
        return f"shopping: {intent}" if intent else ""

    def wants_seen(self, question: str, look) -> str:
        """Out of shopping mode, "what is this?" with a product's barcode in view is shopping's."""
        intent, _ = intent_of(question, "shopping")
        return "shopping: a barcode in view" if intent in ("price", "ask") and "barcode" in look() else ""

    def glance(self, frames: list) -> set[str]:
        """{"barcode"} when the newest frame shows a product code at a first look (a few ms)."""
        return {"barcode"} if frames and self.engines and barcodes.in_view(frames[-1].image, self.engines) else set()

    def answer(self, ctx: ModeContext) -> ModeResult:
        t0 = time.perf_counter()
        intent, what = intent_of(ctx.request.question, "shopping")  # the router chose this skill already
        record: dict = {"intent": intent}
        if not intent:  # a switch said alone (the router changes the mode; this confirms it), or nothing of ours
            on = standing(ctx.request.question)
            return say(ctx, t0, "" if on is None else f"Shopping mode {'on' if on else 'off'}.", record, "shopping")
        try:
            if intent.startswith("list_"):
                text = getattr(self, "_" + intent)(ctx, what, record)
            elif intent == "compare":
                text = self._compare(ctx, record)
            elif intent == "ask":
                return self._ask(ctx, t0, record)
            else:  # price (and scan)
                text = self._look(ctx, record)[1]
        except ListFull:
            text = f"Your shopping list is full: it holds {MAX_ITEMS} items. Remove some first."
        except (ListError, MemoryFull) as err:
            record["error"] = str(err)  # the log has the path and the reason; the wearer hears the gist
            why = "the disk is full" if isinstance(err, MemoryFull) else "its file cannot be used"
            text = f"I couldn't change your shopping list: {why}."
        return say(ctx, t0, text, record, "shopping")

    # --- finding the product --------------------------------------------------------------------
    def _look(self, ctx: ModeContext, record: dict, by_sight: bool = True) -> tuple[Product | None, str]:
        """The product in view and what to say about it: by its barcode, else (when `by_sight`)
        by what the VLM names. A sure product becomes the last one looked at."""
        warn = ""
        if not self.engines:
            warn, self.warned = ("" if self.warned else NO_ENGINE + " "), True
            code = None
        else:
            images = frames_near(ctx.frames, ctx.end, ctx.best)
            code = barcodes.read_frames(images, engines=self.engines) if images else None
            if code is not None and code.kind == "QR":  # a QR code names no product: look by sight
                record["qr"], code = code.text, None
        if code is not None:
            record.update(how="barcode", code=code.text, kind=code.kind)
            product = self.catalog.by_code(code.text) if self.catalog is not None else None
            if product is None:
                tail = "it isn't in your catalog" if self.catalog is not None else "I have no catalog to look it up in"
                return None, warn + f"I read the code {code.text} but {tail}."  # never a made-up product
            record["product"] = product.code
            self._saw(product, ctx)
            return product, warn + product_text(product, self.currency)
        if not by_sight or ctx.cancel.is_set():
            return None, warn
        if ctx.request.image is None:
            return None, warn + NOTHING_SEEN
        seen = self._name_by_sight(ctx, record)
        if not seen:
            return None, warn + NOTHING_SEEN
        if self.catalog is None:
            return None, warn + f"The model thinks it's {seen}. " + NO_CATALOG
        matches = self.catalog.by_name(seen)
        text, product = sight_text(seen, matches, self.currency)
        record.update(how="sight", seen=seen, matches=[(p.code, round(s, 1)) for p, s in matches[:3]],
                      sure=product is not None)
        if product is not None:
            self._saw(product, ctx)
        return product, warn + text

    def _name_by_sight(self, ctx: ModeContext, record: dict) -> str:
        t = time.perf_counter()
        request = VLMRequest(NAME_PROMPT, ctx.request.image, system=ctx.request.system, max_new_tokens=16)
        said = "".join(ctx.vlm.stream(request, ctx.cancel))
        record["vlm_s"] = round(time.perf_counter() - t, 3)
        name = " ".join(said.strip().splitlines()[0].split()).strip(" .'\"") if said.strip() else ""
        return "" if normalise(name) in ("", "none", "no product", "nothing") else name[:80]

    def _saw(self, product: Product, ctx: ModeContext) -> None:
        if not self.seen or self.seen[-1].code != product.code:
            self.seen.append(product)
        label = f"{product.name} {money(product.price, self.currency)}"
        image = ctx.best.image if ctx.best is not None else (ctx.frames[-1].image if ctx.frames else None)
        ctx.evidence(Evidence(0, label, thumbnail(image) if image is not None else None))

    # --- the intents ----------------------------------------------------------------------------
    def _ask(self, ctx: ModeContext, t0: float, record: dict) -> ModeResult:
        """A product question: the VLM answers with the catalog's facts of a sure product, or as
        it would anyway when there is none (it sees the picture)."""
        product, said = self._look(ctx, record)
        if said.startswith(NO_ENGINE) and not ctx.cancel.is_set():
            ctx.speak(NO_ENGINE + " ")  # said once, as before any answer
        question = ctx.request.question
        if product is not None:
            facts = f"{product.name}, {product.unit or 'no size given'}, {money(product.price, self.currency)}" + \
                    (f"; {product.notes}" if product.notes else "")
            question = ASK_PROMPT.format(name=product.name, facts=facts, question=question)
        record["prompt"] = question
        result = modes.instant(replace(ctx, request=replace(ctx.request, question=question, prefix=None)))
        return replace(result, extra={**result.extra, "shopping": record})

    def _compare(self, ctx: ModeContext, record: dict) -> str:
        before = list(self.seen)
        product, said = self._look(ctx, record)
        if product is None and len(before) == 2:  # nothing sure in view now: the last two looked at
            return compare_text(before[1], before[0], self.currency)
        if product is None:
            return said if said else "There's nothing to compare with yet: show me a product first."
        if len(self.seen) < 2:
            return said + " There's nothing to compare it with yet."
        record["compared"] = [self.seen[-1].code, self.seen[-2].code]
        return compare_text(self.seen[-1], self.seen[-2], self.currency)

    def _problem(self) -> str:
        """A damaged list file set aside: told once, before the answer."""
        problem, self.list.problem = getattr(self.list, "problem", ""), ""
        return problem + " " if problem else ""

    def _list_add(self, ctx: ModeContext, what: str, record: dict) -> str:
        items = self.list.items()
        if what:  # said: the catalog's product when it is surely that one, else the words as said
            likely, _, sure = best_match(what, self.catalog.by_name(what) if self.catalog is not None else [])
            product = likely[0] if sure else None
            text, code, price = (product.name, product.code, product.price) if product else (what, "", None)
        else:  # "add this": a code in view now, else the last product looked at, else by sight
            product, said = self._look(ctx, record, by_sight=False)
            if product is None and "code" not in record and self.seen:
                product = self.seen[-1]
            if product is None and "code" not in record:
                product, more = self._look(ctx, record)
                said = (said + more).strip()
            if product is None:
                return (said + " " if said else "") + "Say its name to add it, like: add milk to my list."
            text, code, price = product.name, product.code, product.price
        if any(normalise(i.text) == normalise(text) for i in items):
            return self._problem() + f"{text} is already on your list."
        self.list.add(text, code, price)
        record["added"] = text
        return self._problem() + f"Added {text} to your list. That's {len(items) + 1} " + \
            ("item." if not items else "items.")

    def _list_read(self, ctx: ModeContext, what: str, record: dict) -> str:
        items = self.list.items()  # first: reading finds a damaged file
        return self._problem() + list_text(items, self.currency)

    def _list_remove(self, ctx: ModeContext, what: str, record: dict) -> str:
        if not what:  # "remove this from my list": the last product looked at
            if not self.seen:
                return "Say what to remove, like: remove milk from my list."
            what = self.seen[-1].name
        item = find_item(self.list.items(), what)
        if item is None or not self.list.remove(item.id):
            return self._problem() + f"{what[0].upper()}{what[1:]} isn't on your list."
        record["removed"] = item.text
        return self._problem() + f"Removed {item.text} from your list."

    def _list_clear(self, ctx: ModeContext, what: str, record: dict) -> str:
        n = self.list.clear()
        record["removed"] = n
        if not n:
            return self._problem() + "Your shopping list was already empty."
        return self._problem() + f"Cleared your shopping list: {'one item' if n == 1 else f'{n} items'} removed."

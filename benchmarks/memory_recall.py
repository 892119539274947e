"""Memory at scale: recall latency, database size and write rate at 10,000 and 100,000 entries.

    python -m benchmarks.memory_recall [--out DIR] [--sizes 10000,100000] [--work DIR] [--seed N]

For each size a fresh `MemoryStore` (pipelines/memory/store.py, the code a session uses) is
filled with synthetic but realistic entries: captions built from object, colour, place and
relation vocabularies with a Zipf-like spread (keys, phones and mugs are seen far more often
than a passport), the objects named, text read on about 30% of them (signs, labels, whiteboard
notes), and a thumbnail on 95% (random bytes, 6 KB on average, 3-10 KB: a 192 px JPEG is about
that size and as incompressible). Times spread over the 7 days that retention keeps.

Then it measures:
- recall: ~50 varied questions (the issue's four, questions about vocabulary objects, places
  and signs, and about things never seen), each asked `--repeat` times; p50/p95/max per call;
- the write rate: `add` one entry at a time, each committed to disk (synchronous=FULL: what the
  describer does), and `add_many` in batches of 1,000 (how the benchmark fills the rest);
- opening the memory (it runs SQLite's quick_check), forgetting one entry (secure delete and a
  WAL checkpoint), and forgetting everything (delete, VACUUM, checkpoint);
- the size: bytes per entry, and MB per hour of use at `--rate` keyframes per hour.
  Assumption: one keyframe per 5 s (720 an hour) while scenes keep changing; the keyframe
  picker's minimum gap (3 s) caps it at 1,200, and a wearer sitting still stores far fewer.
Goal (issue 11): recall p95 <= 50 ms at 100,000 entries.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from benchmarks.machine import machine as base_machine

OBJECTS = ("keys", "phone", "wallet", "mug", "glasses", "laptop", "backpack", "notebook", "pen", "water bottle",
           "headphones", "charger", "remote control", "book", "plate", "bowl", "kettle", "knife", "scissors",
           "plant", "lamp", "chair", "jacket", "shoes", "sunglasses", "watch", "tablet", "keyboard", "mouse",
           "cup", "bag", "box", "bottle", "toothbrush", "towel", "umbrella", "bicycle", "receipt", "medication",
           "car keys", "earbuds case", "coffee cup", "laptop bag", "tote bag", "newspaper", "magazine", "apple",
           "banana", "sandwich", "pot", "pan", "cutting board", "toaster", "microwave", "fridge", "stove",
           "whiteboard", "sign", "poster", "menu", "ticket", "badge", "monitor", "printer", "stapler", "folder")
PLACES = ("kitchen counter", "desk", "dining table", "sofa", "bedside table", "bookshelf", "hallway floor",
          "bathroom sink", "car seat", "coffee table", "windowsill", "office desk", "meeting room table", "shelf",
          "drawer", "bench", "bus seat", "café table", "entrance hall", "garage workbench", "armchair",
          "stairs", "doormat", "train platform", "supermarket aisle", "reception desk", "park bench")
COLOURS = ("red", "blue", "green", "black", "white", "grey", "yellow", "brown", "silver", "orange")
RELATIONS = ("next to", "beside", "behind", "in front of", "near", "under", "on top of", "to the left of",
             "to the right of")
SIGNS = ("EXIT", "Café Luna", "Platform 4", "Meeting at 3pm", "Q3 launch: Friday", "Sale 50% off", "Room 204",
         "Do not disturb", "Oat milk 1L", "Gate B12", "Pharmacy", "Open 9-18", "Wet floor", "Bus 42 to Central",
         "Best before 12/03", "Wi-Fi: guest / sunflower", "Ristorante Da Marco", "Aisle 7: pasta, rice",
         "Call Anna back", "Dentist Tuesday 10:30", "Parking level -2", "Bakery Müller", "No entry")
TEMPLATES = ("a {c} {o} on the {p} {r} the {o2}", "the {p} with a {c} {o} and a {o2}",
             "a {o} lying {r} a {c} {o2} on the {p}", "a person holding a {c} {o} near the {p}",
             "a {c} {o} and a {o2} on the {p}", "the {o} {r} the {o2}, on the {p}",
             "a pot on the stove, burner {s}", "the stove with all burners {s}, a {c} {o} {r} it")
QUESTIONS = ("where did I leave my keys?", "what was written on the whiteboard?", "did I turn off the stove?",
             "what was the name of that café?", "where is my phone", "have you seen my wallet",
             "where did I put my glasses", "where's the red mug", "when did I last see my backpack",
             "what was on the kitchen counter", "where are my car keys", "where did I leave the charger",
             "what did the sign on the platform say", "which gate was it", "what was on the poster",
             "where is the blue notebook", "did I take my medication", "where are my headphones",
             "where did I put the receipt", "what was on the desk next to the laptop", "where is my umbrella",
             "what time was the meeting", "what was the bus number", "where did I leave my water bottle",
             "is my jacket on the chair", "where are the scissors", "what did the menu say",
             "where did I see the pharmacy", "what was the wifi password", "where is the remote control",
             "what was in the fridge", "where did I leave the silver watch", "where are my sunglasses",
             "what was next to the kettle", "where is the green plant", "where is my tablet",
             "when is the dentist", "what was the parking level", "where was the bakery",
             "what was the restaurant called", "where did I leave my passport",  # never seen below
             "where is my violin", "did I see a surfboard", "where is the harmonica", "what about the telescope",
             "where is the yellow box under the bench", "which aisle had the pasta", "where's my badge",
             "where did I leave the tote bag by the door", "was the toaster on")
ASSUMED_RATE = 720  # keyframes per hour: one per 5 s while scenes keep changing (state it with the figure)


def zipf_choice(rng: random.Random, items: tuple, s: float = 1.0):
    weights = [1 / (i + 1) ** s for i in range(len(items))]
    return rng.choices(items, weights)[0]


def synthetic_entry(rng: random.Random, wall: float) -> dict:
    """One realistic entry: a caption, the objects it names, maybe text read, maybe a thumbnail."""
    o, o2 = zipf_choice(rng, OBJECTS), zipf_choice(rng, OBJECTS)
    caption = rng.choice(TEMPLATES).format(c=rng.choice(COLOURS), o=o, o2=o2, p=zipf_choice(rng, PLACES, 0.7),
                                           r=rng.choice(RELATIONS), s=rng.choice(("on", "off")))
    text = rng.choice(SIGNS) if rng.random() < 0.3 else ""
    if text and rng.random() < 0.3:
        text += f" {rng.randint(1, 999)}"
    thumbnail = rng.randbytes(int(min(10_000, max(3_000, rng.gauss(6_000, 1_500))))) if rng.random() < 0.95 else None
    objects = list(dict.fromkeys((o, o2, "stove") if "stove" in caption else (o, o2)))
    return dict(wall=wall, media=None, caption=caption, text=text, objects=objects, thumbnail=thumbnail)


def fill(store, n: int, rng: random.Random, now: float, single: int) -> dict:
    """`single` entries through `add` (committed one by one), the rest by `add_many` in batches."""
    span = 7 * 86400.0
    walls = [now - span + span * (i + 1) / n for i in range(n)]
    thumb_bytes = 0
    t0 = time.perf_counter()
    for i in range(min(single, n)):
        e = synthetic_entry(rng, walls[i])
        thumb_bytes += len(e["thumbnail"] or b"")
        store.add(**e)
    single_s = time.perf_counter() - t0
    bulk_s, i = 0.0, min(single, n)
    while i < n:
        batch = [synthetic_entry(rng, walls[j]) for j in range(i, min(i + 1000, n))]
        thumb_bytes += sum(len(e["thumbnail"] or b"") for e in batch)
        t0 = time.perf_counter()
        store.add_many(batch)
        bulk_s += time.perf_counter() - t0
        i += len(batch)
    bulk = n - min(single, n)
    return {"single_adds": min(single, n), "add_per_s": min(single, n) / single_s if single_s else None,
            "bulk_adds": bulk, "bulk_per_s": bulk / bulk_s if bulk_s else None,
            "thumbnail_bytes": thumb_bytes}


def timed(fn, *args, **kw) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t0, out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def measure(n: int, work: Path, seed: int, repeat: int, single: int, rate: int) -> dict:
    from pipelines.memory.store import MemoryStore

    folder = work / f"memory-{n}"
    shutil.rmtree(folder, ignore_errors=True)
    rng, now = random.Random(seed), time.time()
    store = MemoryStore(folder, session="bench", days=math.inf)
    filled = fill(store, n, rng, now, single)
    store.close()  # a clean close checkpoints: the size is the database file's
    open_s, store = timed(MemoryStore, folder, session="bench", days=7)
    counts = store.counts()
    times, hits = [], []
    for r in range(repeat):
        for q in QUESTIONS:
            s, found = timed(store.recall, q, now=now, limit=3)
            times.append(s * 1000)
            if r == 0:
                hits.append(len(found))
    first = times[:len(QUESTIONS)]
    ids = [e.id for e in store.recent(200)][::40]
    forget_ms = [timed(store.forget, i)[0] * 1000 for i in ids]
    forget_all_s, _ = timed(store.forget_all)
    after = store.counts()["bytes"]
    store.close()
    shutil.rmtree(folder, ignore_errors=True)
    per_entry = counts["bytes"] / n
    return {"entries": n, "fill": filled, "open_s": open_s, "bytes": counts["bytes"], "bytes_per_entry": per_entry,
            "thumbnail_bytes_per_entry": filled["thumbnail_bytes"] / n,
            "mb_per_hour": per_entry * rate / 1e6, "keyframes_per_hour": rate,
            "recall": {"calls": len(times), "p50_ms": statistics.median(times), "p95_ms": pct(times, 0.95),
                       "max_ms": max(times), "first_pass_p95_ms": pct(first, 0.95),
                       "questions": len(QUESTIONS), "questions_with_hits": sum(1 for h in hits if h),
                       "mean_hits": statistics.mean(hits)},
            "forget_one_ms": {"p50": statistics.median(forget_ms), "max": max(forget_ms), "n": len(forget_ms)},
            "forget_all_s": forget_all_s, "bytes_after_forget_all": after}


def table(report: dict) -> str:
    lines = ["| entries | recall p50 ms | p95 ms | max ms | open s | forget one ms | forget all s | KB/entry "
             "(thumbnail) | MB/hour | add/s, each committed | bulk add/s |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["sizes"]:
        rc, f = r["recall"], r["fill"]
        lines.append(f"| {r['entries']:,} | {rc['p50_ms']:.1f} | {rc['p95_ms']:.1f} | {rc['max_ms']:.1f} "
                     f"| {r['open_s']:.2f} | {r['forget_one_ms']['p50']:.0f} | {r['forget_all_s']:.1f} "
                     f"| {r['bytes_per_entry'] / 1e3:.1f} ({r['thumbnail_bytes_per_entry'] / 1e3:.1f}) "
                     f"| {r['mb_per_hour']:.1f} | {f['add_per_s'] or 0:.0f} | {f['bulk_per_s'] or 0:.0f} |")
    return "\n".join(lines)


def machine() -> str:
    return f"{base_machine()}, SQLite {sqlite3.sqlite_version}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.memory_recall", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench_memory_recall"))
    p.add_argument("--sizes", default="10000,100000", help="entries per run, comma-separated (default: %(default)s)")
    p.add_argument("--work", type=Path, help="where the memories are built (default: a temporary folder; "
                   "100,000 entries take about 0.7 GB)")
    p.add_argument("--repeat", type=int, default=3, help="times each question is asked (default: %(default)s)")
    p.add_argument("--single", type=int, default=500, help="entries added one commit at a time (default: %(default)s)")
    p.add_argument("--rate", type=int, default=ASSUMED_RATE, help="keyframes per hour for MB/hour (default: %(default)s)")
    p.add_argument("--seed", type=int, default=11)
    a = p.parse_args(argv)
    try:
        sizes = [int(s) for s in a.sizes.split(",")]
    except ValueError:
        p.error(f"--sizes wants whole numbers separated by commas, got {a.sizes!r}")
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="memory-bench-", dir=a.work) as work:
        rows = [measure(n, Path(work), a.seed, a.repeat, a.single, a.rate) for n in sizes]
    big = next((r for r in rows if r["entries"] == 100_000), None)
    report = {"sizes": rows, "goal": "recall p95 <= 50 ms at 100,000 entries",
              "goal_met": None if big is None else big["recall"]["p95_ms"] <= 50,
              "assumption": f"{a.rate} keyframes per hour of use (one per {3600 / a.rate:g} s of changing scenes; "
                            "the keyframe picker's 3 s minimum gap caps it at 1,200)",
              "command": "python -m benchmarks.memory_recall " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine(), "date": dt.datetime.now().isoformat(timespec="seconds"),
              "wall_s": time.perf_counter() - t0, "load_average": {"before": load_before, "after": os.getloadavg()}}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "memory_recall.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"{report['command']}\n{report['machine']}, {report['date']}; load average {load_before[0]:.1f} before, "
          f"{report['load_average']['after'][0]:.1f} after\n")
    print(table(report))
    print(f"\nMB/hour assumes {report['assumption']}.")
    for r in rows:
        rc = r["recall"]
        print(f"{r['entries']:,} entries: {rc['calls']} recalls ({rc['questions']} questions x {a.repeat}); "
              f"{rc['questions_with_hits']} questions found something; first pass p95 {rc['first_pass_p95_ms']:.1f} ms")
    if report["goal_met"] is not None:
        print(f"goal ({report['goal']}): {'met' if report['goal_met'] else 'NOT met'}")
    print(f"report: {a.out / 'memory_recall.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

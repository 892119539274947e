"""Barcode and QR readers: codes read, wrong codes and time per frame, for zxing-cpp alone,
OpenCV alone and both (pipelines/skills/barcodes.py, the same harness with engines=...).

    python -m benchmarks.barcodes [--out DIR] [--quick] [--frames K]

- Real photos: every image in ../shared/media/images/barcodes and qrcodes with its .txt.
- Generated: EAN-13, UPC-A and QR codes drawn by glasses/sample_barcodes.py (bars from the GS1
  tables, QR by OpenCV's encoder) in a cluttered 1280x720 scene at several sizes (pixels a
  module), turns and Gaussian blurs, with sensor noise.

Each image is read alone (`read_codes`, then `vote` over that one frame, as when a single frame is
offered): right, wrong (a code that is not the one shown: never acceptable) or missed; "wrong
reads" counts images where any wrong code came back at all, even one the vote then refused. On
the generated set, `read_frames` also votes over K frames of each scene (fresh noise, a few pixels
of shake). Time: median and 90th percentile wall time per frame of `read_codes`. "both, as is"
reads only the frame as it is with each engine (no scales, turns or sharpening): what the
search of views buys.
"""
from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from pipelines.skills.barcodes import Code, ean13_key, engines_available, read_codes, read_frames, vote

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
CODES = (Code("5074852605749", "EAN-13"), Code("057542273829", "UPC-A"), Code("4015344879911", "EAN-13"),
         Code("0047065469465", "UPC-A"), Code("https://shop.example/p/5074852605749", "QR"),
         Code("MECARD:N:Corner Shop;TEL:+441234567890;;", "QR"))
SIZES = (1.5, 2, 3, 5, 8)  # pixels a module
TURNS = (0, 15, 30, 45, 60, 90, 180)
BLURS = (0.0, 1.0, 2.0, 3.0)
QUICK = {"codes": CODES[::4], "sizes": (3,), "turns": (0, 45), "blurs": (0.0, 2.0)}
CONFIGS = {"zxing": {"engines": ("zxing",)}, "opencv": {"engines": ("opencv",)},
           "both": {"engines": ("zxing", "opencv")},
           "both, as is": {"engines": ("zxing", "opencv"), "plans": {"zxing": ((1.0, 0, 0.0),),
                                                                    "opencv": ((1.0, 0, 0.0),)}}}


# --- the sets -------------------------------------------------------------------------------------
def real_photos() -> list[dict]:
    found = []
    for folder in ("barcodes", "qrcodes"):
        for png in sorted((MEDIA / "images" / folder).glob("*.png")):
            truth = png.with_suffix(".txt")
            if truth.is_file():
                found.append({"name": png.name, "truth": truth.read_text(encoding="utf-8").strip(),
                              "image": cv2.imread(str(png))})
    return found


def drawn(code: Code, size: float) -> np.ndarray:
    """The code's label at `size` pixels a module; fractional sizes drawn at 3 and shrunk."""
    from glasses.sample_barcodes import linear_label, qr_label

    draw = qr_label if code.kind == "QR" else linear_label
    if float(size).is_integer():
        return draw(code.text, int(size))
    return cv2.resize(draw(code.text, 3), None, fx=size / 3, fy=size / 3, interpolation=cv2.INTER_AREA)


def generated(codes, sizes, turns, blurs, frames: int = 1) -> list[dict]:
    """Each scene once per frame: frame 0 for single reads, the others with fresh noise and shake."""
    from glasses.sample_barcodes import scene

    out = []
    for k, (code, size, turn, blur) in enumerate(itertools.product(codes, sizes, turns, blurs)):
        label = drawn(code, size)
        # Later shots: the hand turns the code by up to a degree, the camera adds its own noise.
        shots = [scene(label, turn + 0.7 * i * (-1) ** i, blur, seed=k, frame=i) for i in range(frames)]
        out.append({"name": f"{code.kind} {size}px turn {turn} blur {blur:g}", "truth": code.text,
                    "kind": code.kind, "size": size, "turn": turn, "blur": blur, "image": shots[0], "frames": shots})
    return out


# --- measuring --------------------------------------------------------------------------------------
def judge(got: Code | None, truth: str) -> str:
    if got is None:
        return "missed"
    return "right" if ean13_key(got.text) == ean13_key(truth) else "wrong"


def run(items: list[dict], config: dict, voted: bool) -> dict:
    """One configuration on one set: counts, per-item outcomes and times."""
    outcomes, times, wrong_reads, voted_outcomes = [], [], 0, []
    for item in items:
        t0 = time.perf_counter()
        codes = read_codes(item["image"], config["engines"], config.get("plans"))
        times.append(1000 * (time.perf_counter() - t0))
        outcomes.append(judge(vote([codes]), item["truth"]))
        wrong_reads += any(ean13_key(c.text) != ean13_key(item["truth"]) for c in codes)
        if voted:
            voted_outcomes.append(judge(read_frames(item["frames"], config["engines"], plans=config.get("plans")), item["truth"]))
    result = {"images": len(items), **{k: outcomes.count(k) for k in ("right", "wrong", "missed")},
              "wrong_reads": wrong_reads, "ms_median": round(statistics.median(times), 1) if times else None,
              "ms_p90": round(float(np.percentile(times, 90)), 1) if times else None,
              "outcomes": {item["name"]: o for item, o in zip(items, outcomes)}}
    if voted:
        result["voted"] = {k: voted_outcomes.count(k) for k in ("right", "wrong", "missed")}
    return result


def breakdown(items: list[dict], outcomes: dict, key: str) -> dict:
    out: dict = {}
    for item in items:
        row = out.setdefault(str(item[key]), {"right": 0, "images": 0})
        row["images"] += 1
        row["right"] += outcomes[item["name"]] == "right"
    return out


def table(report: dict) -> str:
    lines = ["| set | engines | right | wrong | missed | wrong reads | voted over frames (right / wrong) |"
             " ms median | ms p90 |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for set_name, configs in report["sets"].items():
        for name, r in configs.items():
            voted = f"{r['voted']['right']} / {r['voted']['wrong']}" if "voted" in r else "-"
            lines.append(f"| {set_name} | {name} | {r['right']}/{r['images']} | {r['wrong']} | {r['missed']} | "
                         f"{r['wrong_reads']} | {voted} | {r['ms_median']} | {r['ms_p90']} |")
    for key, rows in report.get("generated_by", {}).items():
        lines += ["", f"| generated: right by {key} | " + " | ".join(report["sets"]["generated"]) + " |",
                  "|---|" + "---:|" * len(report["sets"]["generated"])]
        for value in rows[next(iter(rows))]:
            cells = [f"{rows[c][value]['right']}/{rows[c][value]['images']}" for c in rows]
            lines.append(f"| {value} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def look_times(runs: int = 30) -> str:
    """The router's look for "what is this?" (barcodes.in_view on a 1280x720 frame): median and worst."""
    from pipelines.skills.barcodes import in_view
    from glasses.sample_barcodes import background, linear_label, scene

    lines = []
    for name, image in (("no code in view", background(1280, 720, seed=3)),
                        ("an EAN-13 in view", scene(linear_label("5074852605749", module_px=3)))):
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            seen = in_view(image)
            times.append(time.perf_counter() - t0)
        lines.append(f"{name}: {'seen' if seen else 'not seen'}, median {statistics.median(times) * 1000:.1f} ms, "
                     f"worst {max(times) * 1000:.1f} ms ({runs} runs)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="a small generated set: a smoke run")
    parser.add_argument("--frames", type=int, default=3, help="frames a generated scene is voted over (0: none)")
    parser.add_argument("--look", action="store_true", help="only time the router's first look (barcodes.in_view)")
    args = parser.parse_args(argv)
    if args.look:
        print(look_times())
        return 0
    available = engines_available()
    configs = {n: c for n, c in CONFIGS.items() if all(e in available for e in c["engines"])}
    if not configs:
        print("nothing to measure: neither zxing-cpp nor OpenCV's cv2.barcode is available", file=sys.stderr)
        return 2
    for name in set(CONFIGS) - set(configs):
        print(f"skipped {name}: {', '.join(CONFIGS[name]['engines'])} not all available (pip install zxing-cpp)")
    spec = QUICK if args.quick else {"codes": CODES, "sizes": SIZES, "turns": TURNS, "blurs": BLURS}
    sets = {"generated": generated(spec["codes"], spec["sizes"], spec["turns"], spec["blurs"], max(1, args.frames))}
    if MEDIA.is_dir():
        sets = {"real photos": real_photos(), **sets}
    else:
        print("skipped the real photos: ../shared/media not present")
    report = {"command": "python -m benchmarks.barcodes " + " ".join(argv if argv is not None else sys.argv[1:]),
              "date": dt.date.today().isoformat(), "opencv": cv2.__version__, "generated": {
                  "codes": [c.text for c in spec["codes"]], "sizes_px_per_module": list(spec["sizes"]),
                  "turns": list(spec["turns"]), "blurs": list(spec["blurs"]), "frames_voted": args.frames,
                  "scene": "1280x720"}, "sets": {}, "generated_by": {}}
    for set_name, items in sets.items():
        report["sets"][set_name] = {}
        for name, config in configs.items():
            report["sets"][set_name][name] = run(items, config, voted=set_name == "generated" and args.frames > 1)
            print(f"... {set_name}: {name}", flush=True)
    for key in ("kind", "size", "turn", "blur"):
        report["generated_by"][key] = {name: breakdown(sets["generated"], r["outcomes"], key)
                                       for name, r in report["sets"]["generated"].items()}
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-barcodes-"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "barcodes.json").write_text(json.dumps(report, indent=2))
    print(table(report))
    print(f"written: {out / 'barcodes.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

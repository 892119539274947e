"""Reading: OCR key-string recall on real photos, and time per frame at the sizes the skill could use.

    python -m benchmarks.ocr [--out DIR] [--repeat N] [--sides 0,1280,960] [--threads N]

The reader is the app's own (pipelines/skills/ocr.py: rapidocr-onnxruntime 1.4.4, PP-OCRv4 from
the wheel, detection at the frame's size, recognition on crops of it).

- Recall: the shared OCR photos (../shared/media/images/ocr) with the key strings read by hand in
  refs/ocr_key_strings.tsv ("a; b; c" per photo; a note in brackets is not a key; "full ground
  truth in X.txt" means every line of X.txt). A key is found when its letters and digits, lower
  case, appear in the same form in the reader's text joined in reading order; row-wise keys such
  as a receipt's "CASH 200,000" therefore also test `reading_order`. "close" counts a key whose
  best window in that text is at least 80% alike (difflib), for misreads of one or two letters.
- Camera frames: each photo as a 1920x1080 camera would see it, pasted at its own size (at most
  1000 px tall) on a mid-grey frame; read at each side in --sides (0: the frame as it is, 1920),
  so a smaller side shrinks the text as a smaller camera frame would.
- Time: median seconds per frame over --repeat runs at each side, on a real 2560x1440 phone photo
  (images/scenes/moviepy_vacation_2017.jpg) and on the camera frames, with --threads threads.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import sys
import tempfile
import time
from difflib import SequenceMatcher
from pathlib import Path

import cv2
import numpy as np

from pipelines.skills.ocr import load_reader, text_of
from benchmarks.machine import machine

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
KEYS_FILE = "refs/ocr_key_strings.tsv"
CAMERA = (1920, 1080)  # the camera frame the photos are placed in (w, h)
CLOSE = 0.8  # "close": a window of the text at least this alike


# --- key strings: pure -----------------------------------------------------------------------------
def parse_keys(tsv_text: str, media: Path) -> dict[str, list[str]]:
    """{relative image path: key strings} from refs/ocr_key_strings.tsv's text."""
    out = {}
    for row in tsv_text.splitlines():
        if not row.strip() or row.startswith("#") or "\t" not in row:
            continue
        path, keys = row.split("\t", 1)
        full = re.match(r"\s*full ground truth in (\S+)", keys)
        if full:
            truth = media / Path(path).parent / full.group(1)
            out[path] = [ln.strip() for ln in truth.read_text().splitlines() if ln.strip()] if truth.is_file() else []
            continue
        keys = re.sub(r"\([^)]*\)", "", keys)  # the collector's notes
        out[path] = [k.strip() for k in keys.split(";") if k.strip()]
    return out


def squash(text: str) -> str:
    """Letters and digits only, lower case: spacing and punctuation are not what OCR is judged on here."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def found(key: str, text: str) -> bool:
    return bool(squash(key)) and squash(key) in squash(text)


def close(key: str, text: str, ratio: float = CLOSE) -> bool:
    """Whether some window of `text` (squashed) is at least `ratio` alike to `key` (squashed)."""
    k, t = squash(key), squash(text)
    if not k:
        return False
    if k in t:
        return True
    n = len(k)
    return any(SequenceMatcher(None, k, t[i:i + n]).ratio() >= ratio for i in range(max(1, len(t) - n + 1)))


# --- frames ----------------------------------------------------------------------------------------
def camera_frame(photo: np.ndarray, size: tuple[int, int] = CAMERA) -> np.ndarray:
    """`photo` at its own size (at most 1000 px tall) in the middle of a mid-grey camera frame."""
    w, h = size
    scale = min(1.0, 1000 / photo.shape[0], (w - 40) / photo.shape[1])
    if scale < 1:
        photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((h, w, 3), 128, np.uint8)
    y, x = (h - photo.shape[0]) // 2, (w - photo.shape[1]) // 2
    frame[y:y + photo.shape[0], x:x + photo.shape[1]] = photo
    return frame


def seconds(reader, image: np.ndarray, repeat: int) -> float:
    reader.read(image)  # warm-up: the first run allocates
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        reader.read(image)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def score(reader, photos: dict[str, np.ndarray], keys: dict[str, list[str]], framed: bool) -> dict:
    """Key strings found (exactly and closely) per photo and in all, read as they are or framed."""
    per = {}
    for path, image in photos.items():
        text = text_of(reader.read(camera_frame(image) if framed else image))
        ks = keys[path]
        per[path] = {"keys": len(ks), "found": sum(found(k, text) for k in ks),
                     "close": sum(close(k, text) for k in ks), "missed": [k for k in ks if not found(k, text)],
                     "text": text}
    out = {name: sum(p[name] for p in per.values()) for name in ("found", "close", "keys")}
    total = out["keys"] or 1
    return {**out, "recall": out["found"] / total, "recall_close": out["close"] / total, "photos": per}


def table(report: dict) -> str:
    out = ["| frame | side (px) | keys found | recall | close (>=80%) | s / camera frame | s / 2560x1440 photo |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        out.append(f"| {r['frame']} | {r['side']} | {r['found']}/{r['keys']} | {r['recall']:.2f} | "
                   f"{r['recall_close']:.2f} | {r.get('s_camera', '-')} | {r.get('s_photo', '-')} |")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ocr", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sides", default="0,1280,960", help="longest sides to read at, 0: the frame as it is")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: every core)")
    args = parser.parse_args(argv)
    try:
        sides = [int(s) for s in args.sides.split(",") if s.strip()]
    except ValueError:
        print(f"--sides: comma-separated pixel counts, got {args.sides!r}", file=sys.stderr)
        return 2
    if not (MEDIA / KEYS_FILE).is_file():
        print(f"nothing to measure: no {MEDIA / KEYS_FILE} (../shared/media is not here)", file=sys.stderr)
        return 2
    if load_reader() is None:
        print("rapidocr-onnxruntime is not installed: pip install rapidocr-onnxruntime==1.4.4", file=sys.stderr)
        return 2
    keys = parse_keys((MEDIA / KEYS_FILE).read_text(), MEDIA)
    photos = {path: cv2.imread(str(MEDIA / path), cv2.IMREAD_COLOR) for path in keys}
    photos = {path: image for path, image in photos.items() if image is not None}
    phone = cv2.imread(str(MEDIA / "images/scenes/moviepy_vacation_2017.jpg"), cv2.IMREAD_COLOR)
    report = {"command": "python -m benchmarks.ocr " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine(), "date": dt.date.today().isoformat(), "threads": args.threads,
              "photos": sorted(photos), "camera": list(CAMERA), "rows": []}
    for side in sides:
        reader = load_reader(max_side=side or 10_000, threads=args.threads)
        if side == sides[0]:
            row = {"frame": "photo as it is", "side": "own", **score(load_reader(10_000, args.threads), photos, keys,
                                                                     framed=False)}
            report["rows"].append(row)
        row = {"frame": f"{CAMERA[0]}x{CAMERA[1]} camera", "side": side or max(CAMERA),
               **score(reader, photos, keys, framed=True)}
        row["s_camera"] = round(statistics.median(seconds(reader, camera_frame(p), args.repeat)
                                                  for p in photos.values()), 3)
        if phone is not None:
            row["s_photo"] = round(seconds(reader, phone, args.repeat), 3)
        report["rows"].append(row)
        print(f"... side {row['side']}: {row['found']}/{row['keys']} keys, {row['s_camera']} s", flush=True)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-ocr-"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "ocr.json").write_text(json.dumps(report, indent=2))
    print(table(report))
    print(f"written: {out / 'ocr.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

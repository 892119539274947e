"""Barcodes and QR codes from camera frames: EAN-13, UPC-A, EAN-8 and QR, read by zxing-cpp and
OpenCV, checked and voted on so a misread is never spoken.

Both engines miss codes that the other reads (../shared/FACTS.md, benchmarks/barcodes.py): zxing
fails on codes turned near 45 degrees and on bars thinner than about 1.5 px; OpenCV's
`cv2.barcode` misses large codes, exactly-90-degree ones and many perfectly clean renders. So each
engine tries a short list of views of the frame (`PLAN`: scale, turn, blur), cheapest first, and
stops at the first view that gives a code with a valid check digit. Both engines misread now and
then with a valid check digit too (a misread of several digits passes it one time in ten): OpenCV
reads the shared photo zxing_ean13-1_4.png, turned 45 degrees and blurred, as another UPC-A, and
has read a real EAN-13 as an 8-digit code (../shared/FACTS.md). A single image therefore never
decides alone when more frames are at hand: `vote` keeps the code seen in most frames, and only
when it wins clearly.

A UPC-A is an EAN-13 whose first digit is 0 (the same bars), so every such read is reported as the
12-digit UPC-A, whichever engine read it; `ean13_key` gives the catalogue key both forms share.
"""
from __future__ import annotations

import importlib
import time
from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

ENGINES = ("zxing", "opencv")
RETAIL = ("EAN-13", "UPC-A", "EAN-8")  # the product codes; a shop catalogue is keyed by these
# The views each engine tries, in order, until one gives a valid code: (scale, turn in degrees,
# blur sigma; a negative sigma sharpens with an unsharp mask of that sigma). Chosen greedily on
# generated codes (glasses/sample_barcodes.py: 140 scenes, 5 sizes, 7 turns, 4 blurs) and checked on
# a second set with other sizes, turns and blurs: zxing turns codes by 90 degrees itself but not by
# 45, and reads thin or soft bars better sharpened and enlarged; OpenCV reads most on a frame
# turned by 45 degrees and sharpened (91 of 140 alone, against 71 for the frame as it is), and
# large clean codes once shrunk. The frame as it is comes first for zxing: it is the cheapest
# view (3 ms at 1280x720) and reads most sharp frames. On the second set (128 scenes) these plans
# read 95 (zxing), 98 (OpenCV) and 98 (both), against 77, 86 and 84 for the first plans tried
# (no sharpening), with no wrong code either way.
PLAN = {
    "zxing": ((1.0, 0, 0.0), (1.0, 0, -3.0), (1.0, 45, -3.0), (2.0, 0, -2.0), (2.0, 45, 0.0)),
    "opencv": ((1.0, 45, -2.0), (1.0, 0, -3.0), (0.5, 0, 0.0)),
}
MAX_SIDE = 2560  # an enlarged view's longest side: beyond it a view costs more than it finds
SHARPEN = 1.5  # the unsharp mask's amount, for views with a negative blur
QR_SIDE = 1280  # OpenCV's QR detector takes ~30 ms a 1280x720 frame, and more on larger ones
SHARPEST = 4  # read_frames reads at most this many frames, sharpest first


@dataclass(frozen=True)
class Code:
    text: str
    kind: str  # "EAN-13" | "UPC-A" | "EAN-8" | "QR"


# --- pure decisions ---------------------------------------------------------------------------
def check_digit_ok(digits: str) -> bool:
    """Whether the last digit of an EAN-13, UPC-A or EAN-8 is its GS1 check digit (weights 3, 1,
    3... from the right, the check digit itself excluded)."""
    if not digits.isdigit() or len(digits) not in (8, 12, 13):
        return False
    body = digits[:-1]
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == int(digits[-1])


def ean13_key(code_text: str) -> str:
    """The catalogue key of a code: a product number (8, 12 or 13 digits, spaces and hyphens
    ignored) as 13 digits, so UPC-A "012345678905" and EAN-13 "0012345678905" match; any other
    text (a QR code's) as it is, stripped."""
    text = code_text.strip()
    digits = text.replace(" ", "").replace("-", "")
    if digits.isdigit() and len(digits) in (8, 12, 13):
        return digits.zfill(13)
    return text


def normalise(text: str, kind: str) -> Code | None:
    """One engine's read as a `Code`, or None when it is not a code we accept: a product number
    with a wrong check digit or length, a format we do not read, an empty QR code. `kind` is the
    engine's name for the format (zxing "EAN-13", "UPC-A", "QR Code"; OpenCV "EAN_13", "UPC_A",
    "EAN_8", "QR"). An EAN-13 starting with 0 is reported as the UPC-A it is."""
    kind = kind.upper().replace("_", "-")
    if kind in ("QR", "QR CODE", "QRCODE"):
        return Code(text, "QR") if text.strip() else None
    if kind not in RETAIL or not check_digit_ok(text):
        return None
    if kind == "EAN-8":
        return Code(text, "EAN-8") if len(text) == 8 else None
    if len(text) == 13 and text.startswith("0"):
        text = text[1:]
    if len(text) == 12:
        return Code(text, "UPC-A")
    return Code(text, "EAN-13") if len(text) == 13 else None


def family(code: Code) -> str:
    return "retail" if code.kind in RETAIL else "other"


def vote(per_frame: list[list[Code]], min_votes: int = 2) -> Code | None:
    """The code seen in the most frames, when it wins clearly; None otherwise.

    Each frame counts a code once. A code needs `min_votes` frames (one when a single frame was
    offered, and then it must be that frame's only product code) and strictly more frames than
    any rival. Rivals are codes of the same family: two product numbers compete (one is a
    misread), but a QR code beside a product's barcode is no misread of it. A product code that
    wins is preferred to a QR code; when product codes are contested, nothing wins; one product
    code seen too seldom to win leaves a QR code free to win."""
    frames = [list(dict.fromkeys(codes)) for codes in per_frame]
    if not frames:
        return None
    need = 1 if len(frames) == 1 else max(1, min_votes)
    for fam in ("retail", "other"):
        counts: Counter[str] = Counter()
        seen: dict[str, Code] = {}
        for codes in frames:
            keys = {ean13_key(c.text): c for c in codes if family(c) == fam}
            counts.update(list(keys))
            for key, code in keys.items():
                seen.setdefault(key, code)
        if not counts:
            continue
        ranked = counts.most_common()
        top_key, top = ranked[0]
        rival = ranked[1][1] if len(ranked) > 1 else 0
        if top >= need and top > rival:
            return seen[top_key]
        if rival:
            return None  # contested: a misread is among them, so nothing of this picture is said
    return None


# --- reading pixels ---------------------------------------------------------------------------
def engines_available() -> tuple[str, ...]:
    """The engines this machine can run: "zxing" when zxing-cpp imports, "opencv" when this
    OpenCV build has cv2.barcode."""
    found = []
    try:
        importlib.import_module("zxingcpp")
        found.append("zxing")
    except ImportError:
        pass
    if hasattr(cv2, "barcode") and hasattr(cv2, "QRCodeDetector"):
        found.append("opencv")
    return tuple(found)


def gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def view(image: np.ndarray, scale: float, angle: float, blur: float) -> np.ndarray:
    """`image` (grayscale) scaled (an enlargement capped at MAX_SIDE), turned by `angle` degrees
    on a white canvas large enough to hold it all, and blurred."""
    h, w = image.shape[:2]
    if scale > 1:
        scale = max(1.0, min(scale, MAX_SIDE / max(h, w)))
    if scale != 1:
        image = cv2.resize(image, None, fx=scale, fy=scale,
                           interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    if blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), blur)
    elif blur < 0:  # unsharp mask: gives back edges a lens or a shaky hand softened
        image = cv2.addWeighted(image, 1 + SHARPEN, cv2.GaussianBlur(image, (0, 0), -blur), -SHARPEN, 0)
    if angle % 360:
        h, w = image.shape[:2]
        turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        cos, sin = abs(turn[0, 0]), abs(turn[0, 1])
        bw, bh = int(h * sin + w * cos), int(h * cos + w * sin)
        turn[0, 2] += bw / 2 - w / 2
        turn[1, 2] += bh / 2 - h / 2
        image = cv2.warpAffine(image, turn, (bw, bh), flags=cv2.INTER_LINEAR, borderValue=255)
    return image


def zxing_reads(image: np.ndarray) -> list[Code]:
    import zxingcpp

    f = zxingcpp.BarcodeFormat
    found = zxingcpp.read_barcodes(image, formats=(f.EAN13, f.UPCA, f.EAN8, f.QRCode))
    return [c for c in (normalise(b.text, str(b.format)) for b in found) if c]


def opencv_reads(image: np.ndarray, detector) -> list[Code]:
    ok, texts, kinds, _ = detector.detectAndDecodeWithType(image)
    if not ok:
        return []
    # OpenCV reads part of an EAN-13 as an EAN-8 now and then (a real photo in ../shared/FACTS.md;
    # 5 of its 7 misreads on 140 generated scenes x 10 views): its EAN-8 reads are dropped, zxing's kept.
    return [c for c in (normalise(t, k) for t, k in zip(texts, kinds) if t and k != "EAN_8") if c]


def opencv_qr(image: np.ndarray) -> list[Code]:
    h, w = image.shape[:2]
    scale = min(1.0, QR_SIDE / max(h, w))
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    text = cv2.QRCodeDetector().detectAndDecode(image)[0]
    return [Code(text, "QR")] if text else []


def read_engine(image: np.ndarray, engine: str, plan=None, timings: dict | None = None, qr: bool = True) -> list[Code]:
    """One engine's codes in a grayscale image: the first view of its plan that gives any.
    OpenCV's QR detector (`qr`) runs once, on the frame as it is (it finds QR codes at any turn)."""
    detector = cv2.barcode.BarcodeDetector() if engine == "opencv" else None
    t0 = time.perf_counter()
    found: list[Code] = []
    for scale, angle, blur in plan or PLAN[engine]:
        picture = view(image, scale, angle, blur)
        found = zxing_reads(picture) if engine == "zxing" else opencv_reads(picture, detector)
        if found:
            break
    if engine == "opencv" and qr and not any(c.kind == "QR" for c in found):
        found += opencv_qr(image)
    if timings is not None:
        timings[engine] = time.perf_counter() - t0
    return list(dict.fromkeys(found))


def read_codes(image_bgr: np.ndarray, engines=ENGINES, plans: dict | None = None,
               timings: dict | None = None) -> list[Code]:
    """The valid codes in one image (BGR or grayscale, full camera resolution), each once: those
    both engines read first. `plans` replaces PLAN per engine (benchmarks); `timings`, when
    given, receives each engine's seconds. Engines that are not installed are skipped."""
    image = gray(image_bgr)
    available = engines_available()
    engines = [e for e in engines if e in available]
    # zxing reads QR codes in a few ms; OpenCV's QR detector takes ~30 ms a frame: only without zxing.
    reads = [read_engine(image, e, (plans or {}).get(e), timings, qr="zxing" not in engines) for e in engines]
    everything = [c for codes in reads for c in codes]
    agreed = [c for c in everything if all(c in codes for codes in reads)]
    return list(dict.fromkeys(agreed + everything))


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the frame at 640 px: how sharp it is, to read the best first."""
    image = gray(image)
    scale = min(1.0, 640 / max(image.shape[:2]))
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(image, cv2.CV_64F).var())


def read_frames(frames: list[np.ndarray], engines=ENGINES, max_frames: int = SHARPEST,
                min_votes: int = 2, plans: dict | None = None) -> Code | None:
    """The code in the frames around a question: up to `max_frames` of them read, sharpest first,
    and voted on (`vote`). Reading stops early once one code has `min_votes` frames and no rival."""
    order = sorted(frames, key=sharpness, reverse=True)[:max_frames]
    per_frame: list[list[Code]] = []
    for frame in order:
        per_frame.append(read_codes(frame, engines, plans))
        seen = {ean13_key(c.text) for codes in per_frame for c in codes}
        if len(per_frame) >= min_votes and len(seen) == 1 and vote(per_frame, min_votes):
            break
    return vote(per_frame, min_votes)


def in_view(image_bgr: np.ndarray, engines=ENGINES) -> bool:
    """Whether a product code (not a QR code) shows at a first look: one engine, the frame as it
    is. The router's hint for "what is this?"; the skill then reads and votes as usual."""
    engine = "zxing" if "zxing" in engines else engines[0]
    found = read_engine(gray(image_bgr), engine, plan=PLAN[engine][:1], qr=False)
    return any(c.kind != "QR" for c in found)

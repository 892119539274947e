"""Barcode and QR pictures for the tests and benchmarks/barcodes.py, drawn here rather than by the
engines under test: EAN-13 / UPC-A / EAN-8 bars from the GS1 encoding tables with numpy, QR codes
with OpenCV's encoder, each on a white label pasted into a noisy camera-sized scene, then turned,
scaled and blurred as a hand-held camera would.
"""
from __future__ import annotations

import cv2
import numpy as np

# GS1 tables: the L (odd parity) pattern of each digit; R is L inverted, G is R reversed.
L_CODES = ("0001101", "0011001", "0010011", "0111101", "0100011", "0110001", "0101111", "0111011", "0110111",
           "0001011")
R_CODES = tuple("".join("1" if b == "0" else "0" for b in code) for code in L_CODES)
G_CODES = tuple(code[::-1] for code in R_CODES)
# The parities of an EAN-13's left half encode its first digit.
FIRST_DIGIT = ("LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG", "LGGLLG", "LGGGLL", "LGLGLG", "LGLGGL", "LGGLGL")


def check_digit(body: str) -> str:
    """The GS1 check digit of `body` (all digits but the last): weights 3, 1, 3... from the right."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def modules(code: str) -> str:
    """The bars of an EAN-13 (13 digits), UPC-A (12: an EAN-13 with a leading 0) or EAN-8 (8
    digits) as a string of modules, "1" dark, without quiet zones."""
    if len(code) == 12:
        code = "0" + code
    if len(code) == 13:
        left = "".join((L_CODES if p == "L" else G_CODES)[int(d)] for p, d in zip(FIRST_DIGIT[int(code[0])], code[1:7]))
        right = "".join(R_CODES[int(d)] for d in code[7:])
    elif len(code) == 8:
        left, right = "".join(L_CODES[int(d)] for d in code[:4]), "".join(R_CODES[int(d)] for d in code[4:])
    else:
        raise ValueError(f"not an EAN-13, UPC-A or EAN-8: {code!r}")
    return "101" + left + "01010" + right + "101"


def linear_label(code: str, module_px: int = 3, height_ratio: float = 0.6, quiet: int = 11) -> np.ndarray:
    """A white label (grayscale uint8) holding the barcode's bars with quiet zones around them."""
    bars = np.array([0 if m == "1" else 255 for m in modules(code)], np.uint8)
    row = np.concatenate([np.full(quiet, 255, np.uint8), bars, np.full(quiet, 255, np.uint8)])
    row = np.repeat(row, module_px)
    height = max(8, round(len(bars) * module_px * height_ratio))
    label = np.full((height + 2 * quiet * module_px // 2, row.size), 255, np.uint8)
    label[quiet * module_px // 2: quiet * module_px // 2 + height] = row
    return label


def qr_label(text: str, module_px: int = 4) -> np.ndarray:
    """A white label (grayscale uint8) holding a QR code of `text`, drawn by cv2.QRCodeEncoder."""
    small = cv2.QRCodeEncoder.create().encode(text)  # one pixel a module, quiet zone included
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return cv2.resize(small, None, fx=module_px, fy=module_px, interpolation=cv2.INTER_NEAREST)


def background(width: int = 1280, height: int = 720, seed: int = 0) -> np.ndarray:
    """A cluttered BGR scene: smooth colour gradients, random boxes and lines, sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        a, b, p = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0, 6.28)
        image[..., c] = 120 + 60 * np.sin(a * xx / 200 + b * yy / 200 + p)
    image = image.astype(np.uint8)
    for _ in range(25):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            cv2.rectangle(image, (x, y), (x + int(rng.integers(20, 200)), y + int(rng.integers(20, 200))), colour, -1)
        else:
            cv2.line(image, (x, y), (int(rng.integers(0, width)), int(rng.integers(0, height))), colour,
                     int(rng.integers(1, 6)))
    return image


def scene(label: np.ndarray, angle: float = 0.0, blur: float = 0.0, width: int = 1280, height: int = 720,
          seed: int = 0, noise: float = 4.0, frame: int = 0) -> np.ndarray:
    """`label` turned by `angle` degrees (counter-clockwise), pasted near the middle of a cluttered
    `width` x `height` scene, blurred by a Gaussian of `blur` pixels (sigma) and given sensor noise.
    `seed` picks the scene; `frame` another shot of it (its own noise and a few pixels of shake)."""
    h, w = label.shape
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(turn[0, 0]), abs(turn[0, 1])
    bw, bh = int(np.ceil(h * sin + w * cos)), int(np.ceil(h * cos + w * sin))
    turn[0, 2] += bw / 2 - w / 2
    turn[1, 2] += bh / 2 - h / 2
    # Nearest for the right angles keeps the bars crisp; linear elsewhere, as a lens would.
    interpolation = cv2.INTER_NEAREST if angle % 90 == 0 else cv2.INTER_LINEAR
    turned = cv2.warpAffine(label, turn, (bw, bh), flags=interpolation, borderValue=0)
    mask = cv2.warpAffine(np.full_like(label, 255), turn, (bw, bh), flags=interpolation, borderValue=0)
    image = background(max(width, bw + 40), max(height, bh + 40), seed)
    rng = np.random.default_rng([seed, frame + 1])
    y0 = (image.shape[0] - bh) // 2 + int(rng.integers(-10, 11))
    x0 = (image.shape[1] - bw) // 2 + int(rng.integers(-10, 11))
    region = image[y0:y0 + bh, x0:x0 + bw]
    alpha = (mask.astype(np.float32) / 255)[..., None]
    region[:] = (alpha * turned[..., None] + (1 - alpha) * region).astype(np.uint8)
    if blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), blur)
    if noise > 0:
        image = np.clip(image + rng.normal(0, noise, image.shape), 0, 255).astype(np.uint8)
    return image

"""The real OpenCV window under Xvfb: `demo.py live` on a generated clip and spoken question,
screenshots of the X screen (xwd) while it runs, and the overlay found in them.

The clip's scene holds no red and no white, so the indicator light's red and the caption's
white text can only come from the overlay. Screenshots are read with a small XWD reader
(PIL cannot read xwd, and ImageMagick is not a dependency).
"""
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from glasses.display import LIGHT_RED, light_pixel_box

ROOT = Path(__file__).resolve().parents[1]
SIZE = (640, 360)  # the clip's (width, height): the window shows it at this size


def read_xwd(data: bytes) -> np.ndarray:
    """RGB image from an X window dump (ZPixmap, 24 or 32 bits per pixel, channel masks)."""
    h = struct.unpack(">25I", data[:100])
    header_size, version, fmt, width, height = h[0], h[1], h[2], h[4], h[5]
    byte_order, bits, stride, masks, ncolors = h[7], h[11], h[12], h[14:17], h[19]
    step = bits // 8  # Xvfb may say 24 bits and still pad each line: use the stride for lines
    assert version == 7 and fmt == 2 and step in (3, 4) and stride >= step * width, h[:14]
    rows = np.frombuffer(data, np.uint8, count=height * stride, offset=header_size + ncolors * 12).reshape(height, stride)
    cols = rows[:, : width * step].reshape(height, width, step).astype(np.uint32)
    order = range(step) if byte_order == 0 else range(step - 1, -1, -1)  # 0: least significant byte first
    pixels = sum(cols[..., i] << np.uint32(8 * k) for k, i in enumerate(order))
    shift = lambda m: (m & -m).bit_length() - 1  # noqa: E731
    return np.dstack([((pixels & m) >> shift(m)).astype(np.uint8) for m in masks])


@pytest.fixture(scope="module")
def xvfb():
    if not (shutil.which("Xvfb") and shutil.which("xwd")):
        pytest.skip("Xvfb and xwd are not installed (make test installs them: apt-get install xvfb x11-apps)")
    n = next(n for n in range(90, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists())
    server = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not Path(f"/tmp/.X11-unix/X{n}").exists():
        if time.time() > deadline or server.poll() is not None:
            server.kill()
            pytest.skip("Xvfb did not start")
        time.sleep(0.05)
    yield f":{n}"
    server.terminate()
    server.wait(5)


def scene(frame: np.ndarray, t: float) -> None:
    frame[:] = (90, 110, 70)  # dull green-grey: no red, no white
    frame[100:260, 240:400] = (160, 60, 20)  # a blue square
    cv2.circle(frame, (int(40 + 120 * t) % 600, 300), 20, (40, 160, 40), -1)  # something moves


def test_the_window_shows_the_camera_view_with_the_overlay(xvfb, tmp_path, espeak):
    from glasses.sample import make_clip, speak_to_wav

    clip = make_clip(tmp_path / "clip.mp4", duration=5.0, size=SIZE, fps=15, audio=False, draw=scene)
    wav = speak_to_wav("hey glasses, what colour is the square?", tmp_path / "question.wav")
    env = {**os.environ, "DISPLAY": xvfb, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "demo.py"), "live", "--camera", clip, "--mic", wav,
                             "--speaker", "none", "--models", "tiny-random", "--out", tmp_path / "out",
                             "--ask", "1.5:what is this?"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    shots = []
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline:
        grab = subprocess.run(["xwd", "-root", "-silent", "-display", xvfb], capture_output=True)
        if grab.returncode == 0:
            shots.append(read_xwd(grab.stdout))
        time.sleep(0.2)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "ended: the camera file ended" in out

    # The light: a disc of the overlay's red. Find it, and with it where the window's image sits.
    red = np.array(LIGHT_RED[::-1])  # BGR -> RGB
    x0, y0, x1, y1 = light_pixel_box((SIZE[1], SIZE[0], 3))
    lit = [(i, np.argwhere(np.abs(s.astype(int) - red).max(axis=2) <= 12)) for i, s in enumerate(shots)]
    lit = [(i, px) for i, px in lit if len(px) >= 0.8 * (x1 - x0) * (y1 - y0)]
    assert lit, f"the indicator light never showed in {len(shots)} screenshots"
    i, px = lit[len(lit) // 2]
    cy, cx = px.mean(axis=0)
    top, left = int(round(cy - (y0 + y1 - 1) / 2)), int(round(cx - (x0 + x1 - 1) / 2))
    view = shots[i][top : top + SIZE[1], left : left + SIZE[0]]
    cv2.imwrite(str(tmp_path / "window.png"), view[..., ::-1])
    assert view.shape == (SIZE[1], SIZE[0], 3), (top, left)

    # The caption (white text on a dark box) along the bottom; the scene itself has no white.
    bottom = view[int(SIZE[1] * 0.7) :]
    white = (bottom.min(axis=2) >= 200).sum()
    assert white > 150, f"no caption text drawn at the bottom of the window (see {tmp_path / 'window.png'})"
    # The status box (dark panel, coloured word) at the top left.
    assert (view[: SIZE[1] // 4, : SIZE[0] // 3].max(axis=2) < 50).sum() > 500

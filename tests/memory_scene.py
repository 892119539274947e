"""A generated memory clip and a fake VLM that really looks at it.

The clip: the wearer looks at three places (a kitchen counter, a desk, a shelf), each a flat
colour with a coarse static texture (so frames are sharp and a still view is the same frame
again), and coloured objects are put down and moved on them. An object fills about a third of
the view (38 % of its width, 82 % of its height), as something the wearer looks at while putting it down does: the keyframe picker
keeps a view only when a quarter of it is new.

`SeeingVLM` captions by colour and position: it finds each object's colour in the image it
is given, says left / middle / right from its centre, and names the place from the background.
Asked the recall prompt (pipelines/memory/recall.py), it answers from the first note, as a
model that trusts the best kept entry would. Anything else gets `answer`.
"""
from __future__ import annotations

import re
import threading
from typing import Iterator

import numpy as np

from core.messages import VLMRequest

PLACES = {"kitchen counter": (140, 180, 210), "desk": (95, 95, 95), "shelf": (40, 90, 140)}  # BGR
OBJECTS = {"red cup": (0, 0, 230), "blue book": (230, 70, 0), "yellow keys": (0, 220, 240),
           "green plant": (0, 160, 0)}  # BGR
SLOTS = {"left": 1 / 6, "middle": 1 / 2, "right": 5 / 6}  # centre of each slot, share of the width

# (from second, place looked at, {object: slot}): the red cup is last put down at 60 s, on the right
# of the counter; after that the wearer never looks at it again.
SCENES = (
    (0.0, "kitchen counter", {}),
    (15.0, "kitchen counter", {"red cup": "left"}),
    (35.0, "desk", {"blue book": "middle"}),
    (60.0, "kitchen counter", {"red cup": "right"}),
    (85.0, "shelf", {"green plant": "middle"}),
    (115.0, "desk", {"blue book": "middle", "yellow keys": "right"}),
    (145.0, "shelf", {"green plant": "left"}),
)
RED_CUP_LAST_PUT = 60.0


def scene_at(t: float):
    return [s for s in SCENES if s[0] <= t + 1e-9][-1]


def _texture(h: int, w: int) -> np.ndarray:
    """A static checker of 8 px cells, +-22 grey levels: sharp, and the same in every frame."""
    y, x = np.mgrid[0:h, 0:w]
    return np.where(((y // 8) + (x // 8)) % 2 == 0, 22, -22).astype(np.int16)


def draw_scene(frame: np.ndarray, t: float) -> None:
    """Paint the view at second `t` into `frame` (BGR, in place)."""
    h, w = frame.shape[:2]
    _, place, objects = scene_at(t)
    canvas = np.empty((h, w, 3), np.int16)
    canvas[:] = PLACES[place]
    canvas += _texture(h, w)[..., None]
    side_w, side_h = int(w * 0.38), int(h * 0.82)
    for name, slot in objects.items():
        cx = int(SLOTS[slot] * w)
        x0 = min(max(0, cx - side_w // 2), w - side_w)
        y0 = h - side_h - h // 20
        canvas[y0:y0 + side_h, x0:x0 + side_w] = OBJECTS[name]
        canvas[y0 + side_h // 3:y0 + side_h // 3 + 4, x0:x0 + side_w] = 255  # a stripe: an edge inside
    frame[:] = np.clip(canvas, 0, 255).astype(np.uint8)


def make_memory_clip(path, duration: float = 180.0, size=(320, 240), fps: float = 2.0):
    from glasses.sample import make_clip

    return make_clip(path, duration=duration, size=size, fps=fps, draw=draw_scene, audio_rate=16000,
                     audio_channels=1)


# --- the fake VLM ---------------------------------------------------------------------------
def _near(image_rgb: np.ndarray, bgr, tol: int = 50) -> np.ndarray:
    target = np.array(bgr[::-1], np.int16)
    return np.abs(image_rgb.astype(np.int16) - target).max(axis=2) <= tol


def see(image_rgb: np.ndarray) -> tuple[str, list[tuple[str, str]]]:
    """(place, [(object, slot)]) in an RGB image, by colour and position."""
    h, w = image_rgb.shape[:2]
    mean = image_rgb[: h // 10].reshape(-1, 3).astype(np.float32).mean(axis=0)  # the top strip: never an object
    place = min(PLACES, key=lambda p: float(np.abs(mean - np.array(PLACES[p][::-1], np.float32)).sum()))
    found = []
    for name, colour in OBJECTS.items():
        mask = _near(image_rgb, colour)
        if mask.mean() > 0.03:
            cx = float(np.nonzero(mask)[1].mean()) / w
            found.append((cx, name, "left" if cx < 1 / 3 else "middle" if cx < 2 / 3 else "right"))
    return place, [(name, slot) for _, name, slot in sorted(found)]


def caption(image_rgb: np.ndarray) -> str:
    place, found = see(image_rgb)
    if not found:
        return f"An empty {place}."
    where = {"left": "on the left of", "middle": "in the middle of", "right": "on the right of"}
    return " ".join(f"A {name} {where[slot]} the {place}." for name, slot in found)


class SeeingVLM:
    """Captions what it sees; answers recall prompts from the first note (see the module doc)."""

    def __init__(self, answer: str = "I see a room."):
        self.answer = answer
        self.requests: list[VLMRequest] = []
        self.captions: list[str] = []
        self._lock = threading.Lock()

    def reply(self, request: VLMRequest) -> str:
        from pipelines.memory.describe import CAPTION_PROMPT

        if request.question == CAPTION_PROMPT and request.image is not None:
            text = caption(request.image)
            with self._lock:
                self.captions.append(text)
            return text
        m = re.search(r"^1\. (.+?): (.+?)\.(?: Objects:|$)", request.question, re.MULTILINE)
        if request.question.startswith("The wearer asks about something seen earlier") and m:
            return f"{m.group(1)[0].upper()}{m.group(1)[1:]}, {m.group(2)[0].lower()}{m.group(2)[1:]}."
        return self.answer

    def stream(self, request: VLMRequest, cancel: threading.Event) -> Iterator[str]:
        with self._lock:
            self.requests.append(request)
        for word in self.reply(request).split(" "):
            if cancel.is_set():
                return
            yield word + " "

    def generate_batch(self, requests, cancel, max_new_tokens=None, min_new_tokens=None) -> list[str]:
        return [self.reply(r) for r in requests]

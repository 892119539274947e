"""Describing: keyframes become memory entries, in the background, never in the wearer's way.

Two steps, each called by the session (pipelines/session.py owns the threads):

- `pick(now, frames)`: every `sample_every` seconds the sharpest new frame of the camera's
  ring (shown at or before `now`) is offered to the `KeyframePicker` (pipelines/memory/
  keyframes.py: novelty, sharpness, exposure, a minimum gap). A kept keyframe waits in ONE
  slot: a newer keyframe replaces one not yet described, and that one counts as skipped.
  So the backlog is one keyframe, however far describing falls behind.
- `describe_next(now, busy)`: when nothing is going on (no speech, no question, no answer
  being made or spoken: the session's `busy`), the waiting keyframe is described: the VLM
  writes a short caption naming the objects and where they are (`CAPTION_PROMPT`), the
  objects are parsed out of it (`parse_objects`, a pure function), text is read where an OCR
  engine is installed (rapidocr-onnxruntime; without it, none), a small thumbnail with faces
  blurred is made (pipelines/faces.py), and the entry is stored.

Yielding. `interrupt(now)` (the session calls it for anything the wearer does: speech, a
typed question, a button) cancels the description in flight: the VLM's prefill stops at its
next layer (`vlm.prepare(stop=...)`, as speculative vision does) and generation at its next
token. The keyframe goes back to the slot unless a newer one took it, and nothing starts
again for `resume_after` seconds. A generation counter closes the race between "the session
looked idle" and "the wearer just spoke": a description begun after an interrupt it did not
see is dropped before it costs anything. Only OCR (when installed) cannot stop half-way.
The model's work runs in a thread that ends with each description (`describe_next` says why:
a long-lived thread that has run torch slows every later answer's decoding by ~30 %).

Time. Each entry's `wall` is the session's wall-clock origin plus the frame's session time:
live that is when it was seen; in replay it is the start of the replay plus the media time,
so "how long ago" is measured on the clip's own timeline. `media` is the media time in
replay and None live.

A full disk (`MemoryFull`) turns memory off for the rest of the session with one warning
(`off` says why); the session goes on, and nothing committed is lost (the store's promise).
"""
from __future__ import annotations

import inspect
import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from core.messages import FrameSnapshot, VLMRequest
from pipelines.vision import fit_for_model

log = logging.getLogger("memory")

CAPTION_PROMPT = (
    "Describe this view in one short sentence for the wearer's memory: name each object you see "
    "and where it is (on the table, left of the kettle, by the door). No preamble."
)
CAPTION_TOKENS = 48  # a sentence naming a few objects and places


@dataclass(frozen=True)
class DescribeConfig:
    sample_every: float = 0.5  # seconds between frames offered to the keyframe picker
    image_side: int = 512  # what the VLM sees (its tile size: no upscaling, no splitting)
    thumbnail_side: int = 192
    resume_after: float = 1.0  # seconds after the wearer's last activity before describing again
    expire_every: float = 3600.0  # retention runs this often (session seconds) besides at start-up
    days: float = 7.0  # entries older than this are deleted


@dataclass(frozen=True)
class Keyframe:
    t: float  # session time the frame was shown
    image: np.ndarray  # (H, W, 3) uint8 BGR, camera resolution as the ring holds it
    reason: str  # why the picker kept it


# --- pure functions ------------------------------------------------------------------------
def due_frame(frames: list[FrameSnapshot], after: float | None, now: float, every: float) -> FrameSnapshot | None:
    """The frame to offer the picker now, or None: the sharpest frame shown in (after, now], once
    `every` seconds have passed since the last offer (`after`). Frames past `now` are not yet
    "seen" (in replay the source decodes ahead of the media clock)."""
    if after is not None and now - after < every - 1e-9:
        return None
    lo = -np.inf if after is None else after
    fresh = [f for f in frames if lo < f.t <= now + 1e-9 and f.t > now - every - 1e-9]
    return max(fresh, key=lambda f: (f.sharpness, f.t), default=None)


_ARTICLES = {"a", "an", "the", "some", "two", "three", "four", "several", "many", "few", "one", "another", "my",
             "your", "his", "her", "their", "its", "this", "that", "these", "those"}
_ENDS = {
    # verbs, prepositions and conjunctions end an object's name
    "is", "are", "was", "were", "be", "sits", "sit", "sitting", "lies", "lie", "lying", "stands", "standing",
    "stand", "rests", "resting", "hangs", "hanging", "placed", "left", "lays", "appears", "seems", "can", "has",
    "have", "with", "on", "in", "at", "near", "next", "beside", "behind", "under", "below", "above", "over",
    "of", "to", "by", "from", "into", "onto", "against", "between", "and", "or", "but", "while", "which",
    "that", "where", "who", "inside", "outside", "around", "along", "across", "toward", "towards", "for",
    "as", "than", "there", "here", "it", "they",
}
_PLACES = {  # where things are, not what they are
    "left", "right", "middle", "center", "centre", "top", "bottom", "front", "back", "side", "corner", "edge",
    "foreground", "background", "image", "picture", "photo", "view", "frame", "scene", "camera", "shot",
    "left side", "right side", "upper left", "upper right", "lower left", "lower right", "top left",
    "top right", "bottom left", "bottom right", "far left", "far right", "centre of", "rest",
}


def parse_objects(caption: str, limit: int = 8) -> tuple[str, ...]:
    """The objects a caption names, lower case, in order, without repeats: each phrase that
    follows an article ("a red cup", "the kettle") up to the next verb, preposition or
    punctuation, at most three words, less the words that say where (left, middle, ...).

    >>> parse_objects("A red cup sits on the left of the table, next to a blue book.")
    ('red cup', 'table', 'blue book')
    """
    found: list[str] = []
    for clause in re.split(r"[.,;:!?()\n]+", caption.lower()):
        words = re.findall(r"[a-z0-9][a-z0-9'-]*", clause)
        i = 0
        while i < len(words):
            if words[i] not in _ARTICLES:
                i += 1
                continue
            j = i + 1
            while j < len(words) and words[j] not in _ENDS and words[j] not in _ARTICLES and j - i <= 3:
                j += 1
            phrase = " ".join(words[i + 1:j])
            if phrase and phrase not in _PLACES and phrase.split()[-1] not in _PLACES and phrase not in found:
                found.append(phrase)
            i = max(j, i + 1)
    return tuple(found[:limit])


_CHATTY = re.compile(r"^(sure[,.!]?|certainly[,.!]?|here is (a|the) description[:.]?|in (this|the) (image|picture|view)"
                     r"[,:]?|the (image|picture) shows)\s*", re.IGNORECASE)


def clean_caption(text: str, limit: int = 300) -> str:
    """One line of caption: whitespace folded, chatty openings dropped, a capital first, cut at `limit`."""
    text = " ".join(text.split())
    while (shorter := _CHATTY.sub("", text, count=1)) != text:
        text = shorter
    text = text[:limit].strip()
    return text[:1].upper() + text[1:]


# --- engines --------------------------------------------------------------------------------
def load_ocr() -> Callable[[np.ndarray], str] | None:
    """The reading skill's OCR engine (rapidocr-onnxruntime) as `read(image_bgr) -> text`, or None
    when it is not installed (entries then carry no text read)."""
    from pipelines.skills.ocr import load_reader, text_of

    reader = load_reader()
    return None if reader is None else (lambda image_bgr: text_of(reader.read(image_bgr)))


def caption_frame(vlm, image_rgb: np.ndarray, cancel: threading.Event,
                  max_new_tokens: int = CAPTION_TOKENS) -> str | None:
    """The VLM's caption for one image, or None when `cancel` was set before it was done.

    Where the model can leave a prefill half-way (HFVLM.prepare with `stop`), the image and
    prompt are pre-filled that way first, so a question arriving during the ~second of
    vision encoding waits one layer for the cores, not the whole encoding."""
    request = VLMRequest(CAPTION_PROMPT, image_rgb, (), "", max_new_tokens)
    prepare = getattr(vlm, "prepare", None) if getattr(vlm, "can_prepare", True) else None  # remote: nothing to fill
    if prepare is not None and "stop" in inspect.signature(prepare).parameters:
        prefix = prepare(request, stop=cancel)
        if cancel.is_set():
            return None
        if prefix is not None:
            request = VLMRequest(CAPTION_PROMPT, image_rgb, (), "", max_new_tokens, prefix)
    text = ""
    for piece in vlm.stream(request, cancel):
        text += piece
        if cancel.is_set():
            return None
    return None if cancel.is_set() else clean_caption(text)


def _private_thumbnail(image_rgb: np.ndarray, side: int, caption: str) -> tuple[bytes | None, dict]:
    """pipelines/faces.py's thumbnail: faces blurred, or all of it when the caption names a person
    whose face was not found (fail safe)."""
    from pipelines.faces import mentions_person, private_thumbnail

    return private_thumbnail(image_rgb, side, person_hint=mentions_person(caption))


# --- the describer --------------------------------------------------------------------------
class Describer:
    """See the module doc. `pick` and `describe_next` may run in two threads (live) or one
    (fast replay); `interrupt` may be called from any thread."""

    def __init__(self, store, vlm, picker, *, config: DescribeConfig = DescribeConfig(), wall_origin: float,
                 replay: bool, ocr: Callable[[np.ndarray], str] | None = None,
                 thumbnail: Callable[[np.ndarray, int, str], tuple[bytes | None, dict]] = _private_thumbnail,
                 log_=None, show: Callable[..., None] | None = None):
        self.store, self.vlm, self.picker, self.config = store, vlm, picker, config
        self.wall_origin, self.replay, self.ocr = wall_origin, replay, ocr
        self.thumbnail = thumbnail  # (image_rgb, side, caption) -> (JPEG bytes or None, what was done)
        self.log, self.show = log_, show
        self.off = ""  # why memory stopped for this session ("" while it runs)
        self.counts = {"offered": 0, "keyframes": 0, "skipped": 0, "described": 0, "stored": 0, "cancelled": 0,
                       "failed": 0, "with_text": 0, "faces_blurred": 0, "blurred_whole": 0, "expired": 0}
        self.describe_s: deque[float] = deque(maxlen=100)  # the last descriptions' wall seconds
        self.waited_s: deque[float] = deque(maxlen=100)  # session seconds the last keyframes waited to be described
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._pending: Keyframe | None = None
        self._cancel: threading.Event | None = None  # the description in flight
        self._yielded = 0  # interrupts so far: a description begun across one is dropped
        self._resume_at = -np.inf  # session time: nothing starts before it
        self._offered_at: float | None = None
        self._expired_at = 0.0  # retention ran at open (the store's own)

    def wall(self, t: float) -> float:
        """Wall-clock seconds for session time `t` (see the module doc)."""
        return self.wall_origin + t

    # --- picking ---------------------------------------------------------------------------
    def pick(self, now: float, frames: list[FrameSnapshot]) -> Keyframe | None:
        """Offer the frame due now to the picker; a kept one waits in the slot (returned)."""
        if self.off:
            return None
        self._expire(now)
        frame = due_frame(frames, self._offered_at, now, self.config.sample_every)
        if frame is None:
            return None
        self._offered_at = now
        self.counts["offered"] += 1
        keep, reason = self.picker.offer(frame.t, cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB))
        if not keep:
            return None
        key = Keyframe(frame.t, frame.image, reason)
        with self._ready:
            self.counts["keyframes"] += 1
            if self._pending is not None:
                self.counts["skipped"] += 1  # it could not keep up: the older one is let go
            self._pending = key
            self._ready.notify_all()
        return key

    def wait_pending(self, timeout: float) -> bool:
        """Until a keyframe waits (True) or `timeout` passes (live worker)."""
        with self._ready:
            return self._ready.wait_for(lambda: self._pending is not None and not self.off, timeout)

    def backlog(self) -> int:
        with self._lock:
            return int(self._pending is not None)

    # --- yielding --------------------------------------------------------------------------
    def interrupt(self, now: float) -> None:
        """The wearer is doing something: stop describing now, and for `resume_after` s."""
        with self._lock:
            self._yielded += 1
            self._resume_at = max(self._resume_at, now + self.config.resume_after)
            if self._cancel is not None:
                self._cancel.set()

    # --- describing ------------------------------------------------------------------------
    def describe_next(self, now: float, busy: Callable[[], bool]) -> bool:
        """Describe the waiting keyframe if the session is idle; True when an entry was stored."""
        with self._lock:
            if self.off or self._pending is None or now < self._resume_at:
                return False
            seen = self._yielded
        if busy():
            return False
        with self._lock:
            key, self._pending = self._pending, None
            if key is None or self._yielded != seen:  # an interrupt came in between: not now
                self._pending = self._pending or key
                return False
            cancel = self._cancel = threading.Event()
        self.waited_s.append(max(0.0, now - key.t))
        t0 = time.perf_counter()
        done: list[bool] = []
        # The model work runs in a thread of its own that ends with it. A thread that has run torch keeps
        # its OpenMP team while it lives, and with more OpenMP threads than cores libgomp stops spinning
        # at its barriers: every later answer then decodes ~30 % slower (2 cores, SmolVLM-256M size:
        # 1.54 -> 2.02 s for 40 tokens, benchmarks/memory_keyframes.py). The session's threads live long.
        worker = threading.Thread(target=lambda: done.append(self._describe_safely(key, cancel)), name="describing",
                                  daemon=True)
        worker.start()
        worker.join()
        with self._lock:
            self._cancel = None
        stored = bool(done and done[0])
        if stored:  # the time a whole description takes (a cancelled one says nothing about that)
            self.describe_s.append(time.perf_counter() - t0)
        return stored

    def _describe_safely(self, key: Keyframe, cancel: threading.Event) -> bool:
        try:
            return self._describe(key, cancel)
        except Exception as err:  # noqa: BLE001 - one failed description must not stop memory
            self.counts["failed"] += 1
            first = self.counts["failed"] == 1  # one warning line; the rest go to debug.log
            (log.warning if first else log.info)("memory: describing the keyframe at %.1f s failed: %s", key.t, err,
                                                 exc_info=True)
            return False

    def _describe(self, key: Keyframe, cancel: threading.Event) -> bool:
        from pipelines.memory.store import MemoryFull, MemoryRefused

        image = fit_for_model(key.image, self.config.image_side)  # RGB
        caption = caption_frame(self.vlm, image, cancel)
        text = ""
        if caption is not None and self.ocr is not None and not cancel.is_set():
            text = " ".join(self.ocr(key.image).split())[:500]
        if caption is None or cancel.is_set():
            self._requeue(key)
            return False
        if not caption:  # the model said nothing: there is nothing to find it by
            self.counts["failed"] += 1
            return False
        self.counts["described"] += 1
        self.counts["with_text"] += bool(text)
        thumb, done = self.thumbnail(cv2.cvtColor(key.image, cv2.COLOR_BGR2RGB), self.config.thumbnail_side, caption)
        self.counts["faces_blurred"] += done.get("action") == "faces"
        self.counts["blurred_whole"] += done.get("action") == "whole"
        try:
            self.store.add(wall=self.wall(key.t), media=key.t if self.replay else None, caption=caption, text=text,
                           objects=parse_objects(caption), thumbnail=thumb)
        except (MemoryFull, MemoryRefused) as err:  # a full disk, or the file broke under us: never again
            self._turn_off(key.t, f"memory is off for the rest of this session: {err}")
            return False
        self.counts["stored"] += 1
        return True

    def _requeue(self, key: Keyframe) -> None:
        """A cancelled description: its keyframe waits again, unless a newer one took the slot."""
        with self._lock:
            self.counts["cancelled"] += 1
            if self._pending is None:
                self._pending = key
            else:
                self.counts["skipped"] += 1

    def _turn_off(self, t: float, why: str) -> None:
        with self._lock:
            if self.off:
                return
            self.off = why
            if self._pending is not None:
                self.counts["skipped"] += 1
                self._pending = None
            self._ready.notify_all()
        log.warning("memory: %s", why)
        if self.log is not None:
            self.log.write("error", stage="memory", message=why, t=t)
        if self.show is not None:
            self.show(t, storing=False)

    def _expire(self, now: float) -> None:
        """Retention, hourly (start-up's is the store's own, at open)."""
        if now - self._expired_at < self.config.expire_every:
            return
        self._expired_at = now
        try:
            self.counts["expired"] += self.store.expire(self.wall(now), self.config.days)
        except Exception as err:  # noqa: BLE001 - retention is retried in an hour; nothing else depends on it
            log.warning("memory: retention failed: %s", err)

    # --- figures ---------------------------------------------------------------------------
    def figures(self) -> dict:
        """For the session's `end` record: what was kept, skipped, described and stored."""
        try:
            entries = self.store.counts().get("entries")
        except Exception:  # noqa: BLE001 - a store that broke still lets the session end
            entries = None
        spent, waited = sorted(self.describe_s), sorted(self.waited_s)
        with self._lock:
            in_flight = int(self._cancel is not None)
        return {**self.counts, "backlog": self.backlog(), "in_flight": in_flight, "entries": entries, "off": self.off,
                "describe_s_p50": spent[len(spent) // 2] if spent else None,
                "waited_s_p50": waited[len(waited) // 2] if waited else None,
                "waited_s_max": waited[-1] if waited else None}

"""Speculative vision: the frame and its encoding are ready before the question ends.

While the wearer is still speaking, the session picks the frame it would answer about,
and the VLM encodes it and pre-fills the prompt up to the question (`vlm.prepare`). When
the question's text arrives, only its own tokens remain to pre-fill. The decisions are
pure functions of the speculation and the frame picked now:

- keep the speculation when it is for this utterance, with the same prompt context, and
  the frame picked now shows the same view (`vision.same_view`): the answer then uses the
  prepared frame;
- otherwise redo it (at the pause) or answer without it (at the question), and count that.

`Speculator` holds the one speculation under way (control thread) and its one worker
thread; `settle` says, after the answer, what really became of it: "reused" only when the
answer ran on the prepared prefix (`Prefix.used`), not merely when the view matched.
A speculation that a newer one replaces is told to stop, and a model that can (HFVLM, between
two layers) leaves its forward pass, so the new frame's preparation starts at once. An answer
begun early and then discarded hands its speculation back (`give_back`): the wearer only
hesitated, and the frame prepared for the question still holds.
"""
from __future__ import annotations

import inspect
import logging
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import numpy as np

from core.messages import FrameSnapshot, VLMRequest
from pipelines.vision import fit_for_model, same_frame_view

log = logging.getLogger("speculate")


@dataclass
class Speculation:
    start: float  # speech start of the utterance it was made for
    frame: FrameSnapshot  # the frame it prepared, at camera resolution
    image: np.ndarray  # that frame as the model sees it (the array the Prefix is tied to)
    context: tuple  # (system prompt, history) the prefix was built with
    future: Future  # -> vlm.Prefix | None
    redone: int = 0  # times it was started again for this utterance
    stop: threading.Event = field(default_factory=threading.Event)  # set: a newer one replaces it, stop work


def judge(spec: Speculation | None, start: float, frame: FrameSnapshot | None, context: tuple) -> tuple[str, str]:
    """("keep" | "redo" | "new" | "none", why) for the frame picked now."""
    if frame is None:
        return "none", "no camera frame"
    if spec is None:
        return "new", "nothing prepared"
    if abs(spec.start - start) > 1e-6:
        return "new", "prepared for another utterance"
    if spec.context != context:
        return "redo", "the conversation changed"
    if same_frame_view(spec.frame, frame):
        return "keep", "same view"
    return "redo", "the view changed"


@dataclass
class Resolved:
    """What an answer starts from: the frame, its model image, and the prepared prefix if any."""

    frame: FrameSnapshot | None
    image: np.ndarray | None
    prefix: object | None
    record: dict  # the turn record's `speculation`, finished by `settle`


class Speculator:
    def __init__(self, vlm, *, enabled: bool, image_side: int, max_new_tokens: int):
        self.vlm = vlm
        # A model that cannot keep a prefix (a remote server: pipelines/remote_vlm.py) gets no speculation at all
        self.can = hasattr(vlm, "prepare") and getattr(vlm, "can_prepare", True)
        self.enabled = enabled and self.can
        self.image_side, self.max_new_tokens = image_side, max_new_tokens
        self.current: Speculation | None = None  # control thread only
        self._pool = OneAtATime("prepare")
        # A model whose prepare() can stop half-way (HFVLM: between layers) is told when its work is stale
        self._stoppable = self.enabled and "stop" in inspect.signature(vlm.prepare).parameters

    def start(self, start: float, frame: FrameSnapshot | None, context: tuple) -> None:
        """Have the VLM prepare `frame` for the utterance that began at `start` (control thread)."""
        if not self.enabled:
            return
        verdict, _ = judge(self.current, start, frame, context)
        if verdict in ("keep", "none"):
            return
        redone = self.current.redone + 1 if verdict == "redo" and self.current is not None else 0
        if self.current is not None:
            self.current.future.cancel()  # not started yet: never runs
            self.current.stop.set()  # started: it stops at its next layer, and the new one starts then
        image = fit_for_model(frame.image, self.image_side)
        request = VLMRequest("", image, context[1], context[0], self.max_new_tokens)
        stop = threading.Event()
        self.current = Speculation(start, frame, image, context, self._pool.submit(self._prepare, request, stop),
                                   redone, stop)

    def take(self) -> Speculation | None:
        """The speculation for the answer that starts now (judged when the answer uses it)."""
        spec, self.current = self.current, None
        return spec

    def give_back(self, spec: Speculation | None) -> None:
        """An answer begun early is discarded (speech went on): its speculation is still good for the
        same utterance, and the next look at the view judges it as usual (control thread). Without
        this, every hesitation would cost the whole frame encoding again, on the critical path."""
        if spec is None or self.current is not None or spec.future.cancelled():
            return  # something newer is under way, or it never ran
        if spec.future.done() and spec.future.result() is not None:
            spec.future.result().used = False  # the discarded answer ran on a copy of its cache
        self.current = spec

    def _prepare(self, request: VLMRequest, stop: threading.Event):
        try:
            return self.vlm.prepare(request, stop=stop) if self._stoppable else self.vlm.prepare(request)
        except Exception:  # a failed guess costs nothing but the guess: the answer does the work itself
            log.warning("speculative vision failed", exc_info=True)
            return None

    def resolve(self, spec: Speculation | None, start: float, frame: FrameSnapshot | None, context: tuple,
                uses_prefix: bool, waiting) -> Resolved:
        """The frame to answer from. `waiting()` is true while the answer is still wanted."""
        if not self.enabled:
            why = {} if self.can else {"why": "the model cannot prepare (a remote server)"}
            return Resolved(frame, None, None, {"vision": "off", **why})
        verdict, why = judge(spec, start, frame, context)
        record = {"vision": {"keep": "reused", "redo": "redone"}.get(verdict, "none"), "why": why}
        if spec is not None and verdict != "new":
            record["redone_while_speaking"] = spec.redone
        if verdict != "keep":
            return Resolved(frame, None, None, record)
        if not uses_prefix:  # the same view, but this answerer encodes its own images
            record.update(vision="redone", why="this answerer does not use a prepared prefix")
            return Resolved(spec.frame, spec.image, None, record)
        prefix = _wait(spec.future, waiting)
        if prefix is None:
            record.update(vision="unavailable", why="the prepared prefix failed or was cancelled")
        return Resolved(spec.frame, spec.image, prefix, record)

    @staticmethod
    def settle(resolved: Resolved) -> dict:
        """The record, once the answer ran: "reused" only if the answer really ran on the prefix."""
        record = dict(resolved.record)
        if record.get("vision") == "reused" and not getattr(resolved.prefix, "used", False):
            record.update(vision="redone", why="the prepared prefix did not fit the prompt")
        return record

    def close(self) -> None:
        if self.current is not None:
            self.current.future.cancel()
            self.current.stop.set()
        self._pool.shutdown()


class OneAtATime:
    """Runs each job in a thread of its own, one job at a time (a newer job waits for the older
    one, which its stop event ends at the next layer). Not a ThreadPoolExecutor: a thread that
    has run torch keeps its OpenMP team while it lives, and with more OpenMP threads than cores
    the runtime stops spinning, so answers decoded in other threads ran about 30 % slower
    (BENCHMARKS.md, issue 11). A thread that ends takes its team with it."""

    def __init__(self, name: str):
        self.name = name
        self._turn = threading.Lock()
        self._closed = False

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        if self._closed:
            future.cancel()
            return future

        def run():
            with self._turn:
                if not future.set_running_or_notify_cancel():
                    return  # cancelled while it waited: never runs
                try:
                    result = fn(*args)
                except BaseException as err:  # noqa: BLE001 - handed to whoever waits on the future
                    future.set_exception(err)
                else:
                    future.set_result(result)

        threading.Thread(target=run, name=self.name, daemon=True).start()
        return future

    def shutdown(self) -> None:
        self._closed = True


def _wait(future: Future, waiting):
    """The prepared prefix, waiting for it if it is still being made; None if cancelled or failed."""
    while waiting():
        try:
            return future.result(timeout=0.05)
        except FutureTimeout:
            continue
        except Exception:  # noqa: BLE001 - cancelled
            return None
    return None

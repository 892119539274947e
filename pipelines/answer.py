"""One answer: its answerer's text, cut into pieces, rendered by TTS and handed to the speaker.

An `Answer` runs in its own thread. It picks the frame, takes what speculative vision
prepared, asks its answerer (a VLM mode or a skill, chosen by the router) and streams the
text to speech: the first piece as soon as it is ready (pipelines/text.py), every later
sentence while the one before it plays. When all of it is handed over, it writes the turn
record and returns an `AnswerFinished` for turn-taking.

One cancel token per answer. Cancelling it (stop, barge-in, a newer question, shutdown)
stops generation at the next token, skips pieces not yet rendered, and, through `Playback`,
keeps any piece already rendered from reaching the speaker: the check that the answer is
still wanted and the hand-over to the speaker happen under one lock, and so do the cancel
and the speaker's clear. A cancelled sentence is never heard after the clear.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from core.clock import since
from core.messages import AnswerFinished, FrameSnapshot, SpeechAudio, VLMRequest
from pipelines import modes
from pipelines.modes import ModeContext, ModeResult
from pipelines.text import clean_for_speech, first_piece, split_ready
from pipelines.vision import fit_for_model, pick_frame

log = logging.getLogger("answer")

NO_IMAGE_NOTE = (
    " There is no camera image right now: if the question needs one, say that you can't see anything right now."
)
APOLOGY = "Sorry, I could not answer that."


def _one_line(err: BaseException) -> str:
    """A failure as the display's note: its first line (a model server's one-line reason)."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:120]


class Playback:
    """The one door to the speaker for answers (see the module doc)."""

    def __init__(self, speaker):
        self.speaker = speaker
        self._lock = threading.Lock()

    def play(self, token: threading.Event, audio: SpeechAudio, at: float) -> tuple[float, float] | None:
        """Hand `audio` to the speaker unless its answer was cancelled; (start, end) or None."""
        with self._lock:
            if token.is_set():
                return None
            return self.speaker.play(audio, at)

    def pause(self, at: float) -> None:
        """Hold the answer's audio from session time `at` (a speaker that cannot pause plays on)."""
        with self._lock:
            if hasattr(self.speaker, "pause"):
                self.speaker.pause(at)

    def resume(self, at: float) -> None:
        """Go on from where the pause stopped, at session time `at`."""
        with self._lock:
            if hasattr(self.speaker, "resume"):
                self.speaker.resume(at)

    def cancel(self, answer: "Answer | None", clear_at: float | None) -> None:
        """Cancel `answer` and, with `clear_at`, silence the speaker from then: one step."""
        with self._lock:
            if answer is not None:
                answer.stop()
            if clear_at is not None:
                self.speaker.clear(clear_at)


@dataclass(frozen=True)
class AnswerConfig:
    system_prompt: str
    max_new_tokens: int = 60
    image_side: int = 512
    first_chunk_words: int = 6  # the first piece is spoken at a clause end or after this many words
    agents: int = 4  # contemplating: drafts per answer
    stale_frame: float = 2.0  # a frame older than this at question time is "can't see right now"
    models: dict | None = None  # logged with every turn
    speculation: bool = True  # the record says "off" when speculative vision is off


@dataclass
class AnswerParts:
    """What every answer needs from the session; built once."""

    config: AnswerConfig
    vlm: object
    tts: object
    playback: Playback
    speculator: object  # pipelines.speculate.Speculator
    skills: dict  # name -> Skill
    frames: object  # () -> list[FrameSnapshot]
    show: object  # (t, **fields) -> None
    log: object  # SessionLog
    stopping: threading.Event
    early_asr: bool = True
    notes: object = None  # (question) -> text added to the system prompt (memory's facts that fit it), or None
    detailed: object = None  # () -> the frames, the newest at the camera's resolution (skills), or None


def pick(frames: list[FrameSnapshot], start: float, end: float, stale: float, lead: float = 0.3) -> FrameSnapshot | None:
    """The frame for a question, unless the newest is older than `stale`: the camera stopped, and an
    old frame would answer about the past. `lead`: how long before `end` the best moment is."""
    frame = pick_frame(frames, start, end, lead=lead)
    return None if frame is not None and end - frame.t > stale else frame


class Answer:
    def __init__(self, plan, parts: AnswerParts, history: tuple, spec=None):
        self.plan, self.parts, self.history, self.spec = plan, parts, history, spec
        self.detected, self.asr_s = plan.detected, plan.asr_s
        self.cancel = threading.Event()
        self.confirmed = threading.Event()
        if not plan.tentative:
            self.confirmed.set()
        self.discarded = False
        self.futures: list = []
        self.thread: threading.Thread | None = None
        self._handled = threading.Condition()
        self._count = 0  # pieces rendered or skipped, and handed over or dropped
        self._spoken: list[dict] = []
        self._first: dict = {}
        self._pending = ""

    # --- control (called by the session's control thread) --------------------------------
    def confirm(self, detected: tuple[float, float], asr_s: float) -> None:
        self.detected, self.asr_s = detected, asr_s
        self.confirmed.set()  # after `detected`: the answer's thread reads it once this is set

    def stop(self) -> None:
        """Cancel: generation stops at the next token, queued pieces are skipped (Playback's lock held)."""
        self.cancel.set()
        for future in list(self.futures):
            future.cancel()

    # --- the answer's thread ------------------------------------------------------------------
    def run(self) -> AnswerFinished:
        plan = self.plan
        try:
            return self._run()
        except Exception as err:  # noqa: BLE001 - a failed answer is reported; the session goes on
            log.exception("answer failed")
            self.parts.log.write("error", stage="answer", message=f"{type(err).__name__}: {err}", t=plan.end)
            now = since(self.detected)
            self.parts.show(now, status="idle", light=False, answer="(sorry, that failed)")
            return AnswerFinished(plan.id, plan.question, "", now, cancelled=True)

    def _run(self) -> AnswerFinished:
        plan, parts, cfg = self.plan, self.parts, self.parts.config
        frames = parts.frames()
        frame = pick(frames, plan.start, plan.end, cfg.stale_frame)
        context = (cfg.system_prompt, self.history)
        resolved = parts.speculator.resolve(self.spec, plan.start, frame, context, plan.route.speculates,
                                            waiting=lambda: not (self.cancel.is_set() or parts.stopping.is_set()))
        frame, image = resolved.frame, resolved.image
        if image is None and frame is not None:
            image = fit_for_model(frame.image, cfg.image_side)
        # What memory knows about the wearer that fits this question (most questions: nothing, and the
        # prefix prepared by speculative vision still fits; with a note it does not, and is redone).
        notes = parts.notes(plan.question) if parts.notes is not None and plan.route.target == "vlm" else ""
        system = cfg.system_prompt + notes + ("" if image is not None else NO_IMAGE_NOTE)
        request = VLMRequest(plan.question, image, self.history, system, cfg.max_new_tokens, resolved.prefix)
        if plan.route.target == "skill" and parts.detailed is not None:
            frames = parts.detailed()  # a skill reads text and barcodes: the camera's own pixels
        ctx = ModeContext(parts.vlm, request, self.cancel, self._stream_to_speech,
                          show=lambda text: parts.show(since(self.detected), notes=(text[-120:],)),
                          cue=self._speak, frames=frames, best=frame, start=plan.start, end=plan.end,
                          image_side=cfg.image_side, agents=cfg.agents,
                          elapsed=lambda: since(self.detected) - plan.end,
                          evidence=lambda ev: parts.show(since(self.detected), evidence=ev))
        failure = None
        try:
            # Cancelled while it waited for the prepared frame (speech went on, a barge-in): a forward pass
            # cannot be stopped half-way, so starting one would only take the cores from what comes next.
            result = ModeResult("", None, 0.0) if self.cancel.is_set() else self._answerer()(ctx)
        except Exception as err:  # noqa: BLE001 - the model failed: say so aloud, the session goes on
            log.exception("answerer failed: %s", _one_line(err))  # the terminal shows this line, debug.log the trace
            failure, result = err, ModeResult("", None, 0.0)
        if self.discarded:  # begun on an early transcript that did not hold: no record, no display
            return AnswerFinished(plan.id, plan.question, "", since(self.detected), cancelled=True, discarded=True)
        if failure is not None:
            parts.log.write("error", stage="answer", message=f"{type(failure).__name__}: {failure}", t=plan.end)
            self._pending = APOLOGY if not self.cancel.is_set() else ""
        self._speak(self._pending)
        self._wait_handed_over()
        answer = result.answer.strip()
        end = self._write_record(plan, frame, result, answer, parts.speculator.settle(resolved))
        parts.show(end, status="idle", light=False, latency=self._first["t"] - plan.end if self._first else None,
                   **({"answer": "(sorry, that failed)", "notes": (_one_line(failure),)} if failure is not None
                      else {}))
        return AnswerFinished(plan.id, plan.question, answer, end, cancelled=self.cancel.is_set())

    def _answerer(self):
        route = self.plan.route
        if route.target == "skill":
            return self.parts.skills[route.name].answer
        return lambda ctx: modes.answer(route.name, ctx)

    def _write_record(self, plan, frame, result: ModeResult, answer: str, speculation: dict) -> float:
        cfg = self.parts.config
        speculation["asr"] = (plan.early_asr or "none") if self.parts.early_asr else "off"
        speculation["answer"] = "begun on the early transcript" if plan.heard else "after the decision"
        with self._handled:
            spoken = list(self._spoken)
            first = dict(self._first)
        end = max((s["end"] for s in spoken), default=since(self.detected))
        v2v = first["t"] - plan.end if first else None
        record = {
            "id": plan.id,  # a later stop or barge_in record that cut this answer names it
            "question": plan.question, "answer": answer, "mode": plan.route.name, "mode_reason": plan.route.reason,
            "route": plan.route.target, "heard_at": plan.end, "speech_start": plan.start,
            "frame_time": frame.t if frame is not None else None,
            "frame_sharpness": frame.sharpness if frame is not None else None,
            "models": cfg.models or {},
            "latency": {
                "vad": self.detected[0] - plan.end, "asr": self.asr_s, "vlm_first_token": result.first_token,
                "vlm_total": result.vlm_total, "tts_first_audio": first.get("tts"), "voice_to_voice": v2v,
            },
            "speculation": speculation,
            "spoken": spoken, "cancelled": self.cancel.is_set(), **result.extra,
        }
        self.parts.log.write("turn", **record)
        return end

    # --- speech ---------------------------------------------------------------------------
    def _stream_to_speech(self, piece: str) -> None:
        """The answerer's text as it streams: each complete piece goes to TTS now."""
        self._pending += piece
        ready: list[str] = []
        if not self.futures:  # nothing spoken yet: the wearer is waiting for this piece
            ready, self._pending = first_piece(self._pending, self.parts.config.first_chunk_words)
        if self.futures or ready:
            more, self._pending = split_ready(self._pending)
            ready += more
        for sentence in ready:
            self._speak(sentence)

    def _speak(self, text: str) -> None:
        text = clean_for_speech(text)
        while text and not self.confirmed.wait(0.02):  # a tentative answer stays silent until confirmed
            if self.cancel.is_set():
                return
        if text and not self.cancel.is_set():
            future = self.parts.tts.submit(text)
            self.futures.append(future)
            future.add_done_callback(lambda f, s=text, t0=time.perf_counter(): self._on_audio(f, s, t0))

    def _on_audio(self, future, text: str, submitted: float) -> None:
        # Runs in the TTS thread the moment a piece is rendered: hand it to the speaker now.
        try:
            if future.cancelled():
                return
            if future.exception() is not None:  # this piece could not be rendered: the rest still is
                self.parts.log.write("error", stage="tts", message=f"{text[:60]!r}: {future.exception()}",
                                     t=self.plan.end)
                return
            at = since(self.detected)
            placed = self.parts.playback.play(self.cancel, future.result(), at)
            if placed is None:
                return  # cancelled after rendering: never handed to the speaker
            start, end = placed
            with self._handled:
                if not self._first:
                    self._first.update(t=at, tts=time.perf_counter() - submitted)
                self._spoken.append({"text": text, "start": start, "end": end})
                words = " ".join(s["text"] for s in self._spoken)
            self.parts.show(start, status="speaking", answer=words)
        finally:
            with self._handled:
                self._count += 1
                self._handled.notify_all()

    def _wait_handed_over(self) -> None:
        """Until every piece is rendered (or skipped) and handed to the speaker (or dropped)."""
        with self._handled:
            self._handled.wait_for(lambda: self._count >= len(self.futures) or self.parts.stopping.is_set(),
                                   timeout=120)

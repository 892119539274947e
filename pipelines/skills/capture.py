"""Photos and video: "take a photo", "record a video for ten seconds", "stop recording".

- Photo: the sharpest frame of the question's last moments (`photo_frame`, full camera
  resolution), faces blurred (private_video.private_photo), saved as OUT/photos/photo-0001.jpg
  and shown on the display.
- Video: the frames the session hands to `offer` (its source thread) from the end of the
  question on, for the asked length of session time, or until "stop recording" (cut where those
  words began) or `close()`; written to OUT/videos/video-0001.mp4 by pipelines/skills/recording.py
  (off the camera thread, faces blurred, never overwriting a file).
- A folder that cannot be written is said aloud and logged; the session goes on.

Log: `log("capture", kind=photo|video_start|video_end, path=(relative to the folder), frames,
dropped, error=...)`.
"""
from __future__ import annotations

import re
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from core.messages import Evidence, FrameSnapshot, VideoFrame
from pipelines.faces import fit
from pipelines.modes import ModeContext, ModeResult
from pipelines.skills.base import matches, say
from pipelines.skills.recording import QUEUE_FRAMES, Recording, publish, reason_of, reserve
from pipelines.skills.timers import duration_runs, tokenize

DEFAULT_S, LONGEST_S, SHORTEST_S = 10.0, 60.0, 1.0  # a video's length: unasked, most, least
PHOTO_BEFORE, PHOTO_AFTER = 0.8, 0.3  # s: the photo is the sharpest frame this near the question's end
RECENT_FRAMES = 32  # the last frames offered, kept (the ring's own arrays) so a video starts without a gap
JPEG_QUALITY, THUMB_SIDE = 92, 192
STOP_WAIT_S = 10.0  # "stop recording" waits this long for the file to be whole before it answers

PHOTO_TAKEN = "Photo taken."
NOT_RECORDING = "I'm not recording."
ALREADY = "I'm already recording. Say stop recording to end it."
HELP = "Say take a photo, or record a video."
NO_PICTURE = "I couldn't take a photo: the camera shows nothing."

# --- pure decisions: the words ------------------------------------------------------------------
_PRE = (r"^(?:(?:um+|uh+|er+|erm|hmm+|ok|okay|hey|so|now|alright|right|well|oh|wow|yes|yeah|quick|quickly|"
        r"please|just|go ahead and|lets|let us|can you|could you|would you|will you|"
        r"(?:i want|i need|i would like|id like|i wanna) (?:you )?to)\s+)*")
_ART = r"(?:(?:a|an|the|one|another|me a|us a|quick|new|nice|good|short|little)\s+)*"
_SIZE = (r"(?:(?:\d+|a|an|and|half|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|"
         r"thirty|forty|fifty|sixty|ninety|second|seconds|sec|secs|minute|minutes|min|mins|s|long|short|quick)\s+)*")
_STOP = re.compile(_PRE + r"(?:stop|end|finish|halt|cancel)\s+(?:(?:the|this|my|a|video)\s+)?"
                   r"(?:recording|filming|video|clip|taping|capture|capturing)\b")
_VIDEO = re.compile(_PRE + r"(?:(?:start|begin)\s+" + _ART + r"(?:recording|filming|video|videoing|taping|clip)\b"
                    r"|(?:record|film|shoot|capture|take|make|get|start)\s+" + _ART + _SIZE + r"(?:video|clip|movie)s?\b"
                    r"|(?:record|film|video|tape)(?:\s+(?:this|it|everything|now|for|until|till|me|us|the\s+\w+)\b"
                    r"|\s+that(?:\s+(?:for|now|please)\b|$)|$))")
_PHOTO = re.compile(_PRE + r"(?:(?:take|snap|grab|shoot|capture|get|make)\s+" + _ART
                    + r"(?:photo|picture|pic|photograph|snapshot|snap|selfie)s?\b"
                    r"|(?:photograph|snap|capture)(?:\s+(?:this|that|it|the\s+\w+)\b|$)"
                    r"|(?:a\s+)?(?:photo|picture|pic|snapshot)(?:\s+(?:please|now))*$"
                    r"|(?:i want|i need|i would like|id like)\s+(?:to take\s+)?(?:a|an)\s+(?:photo|picture|pic)\b)")
_AUDIO_ONLY = re.compile(r"\b(?:voice|audio|sound|memo|note)\b")


def intent(question: str) -> str:
    """"photo" | "video" | "stop" | "": a command opening a clause ("can you take a photo?",
    "Look. Take a picture."); never a question about one ("what's in this photo?", "did I take a
    photo of ...?", "how do I take a picture?": the VLM's or memory's)."""
    for clause in re.split(r"[!?;]+|[.,:](?!\d)", question):  # Whisper's punctuation; "1.5" stays whole
        if matches(_STOP, clause):
            return "stop"
        if matches(_VIDEO, clause) and not matches(_AUDIO_ONLY, clause):
            return "video"
        if matches(_PHOTO, clause):
            return "photo"
    return ""


def parse_duration(text: str) -> float | None:
    """Seconds asked for ("for ten seconds", "a 30 second video", "a minute", "half a minute", "a
    minute and a half", "90s", "for 20"), or None when the words name no length. The words are
    read as the timers read a length (pipelines/skills/timers.py), so both skills hear one way."""
    norm = re.sub(r"\b(\d+(?:\.\d+)?) s\b", r"\1 seconds", " ".join(t.norm for t in tokenize(text)))  # "45s"
    runs = duration_runs(norm)
    if runs:
        return sum(seconds for _, _, seconds in runs)
    bare = re.search(r"\bfor (\d+(?:\.\d+)?)$", norm)  # "record for 20": seconds
    return (float(bare.group(1)) or None) if bare else None


def video_length(question: str, default: float = DEFAULT_S, longest: float = LONGEST_S) -> tuple[float, str]:
    """(seconds to record, why): "asked", "default" (none asked, or not understood), "longest"
    ("until I say stop"), "capped" (more than `longest` asked)."""
    if re.search(r"\b(?:until|till|til) i (?:say )?stop|\bas long as\b", question.lower()):
        return longest, "longest"
    asked = parse_duration(question)
    if asked is None or asked < SHORTEST_S / 2:
        return default, "default"
    return (longest, "capped") if asked > longest else (max(SHORTEST_S, asked), "asked")


def recording_line(seconds: float, why: str) -> str:
    """What is said when a recording starts: always its length."""
    length = f"{seconds:g} second" + ("" if seconds == 1 else "s")
    if why == "capped":
        return f"I can record up to {length}, so recording for {length}."
    if why == "longest":
        return f"Recording for up to {length}. Say stop recording to end it."
    return f"Recording for {length}."


# --- pure decisions: the picture ----------------------------------------------------------------
def photo_frame(frames: Sequence[FrameSnapshot], end: float, before: float = PHOTO_BEFORE,
                after: float = PHOTO_AFTER) -> FrameSnapshot | None:
    """The sharpest frame from `before` s ahead of the question's end to `after` s past it, of those
    kept at the camera's own resolution when there are any (the ring keeps every other frame or
    so at full size: a photo is not to be 640 px because a small neighbour scored a hair
    sharper); the frame nearest the end when none is that near; None without frames."""
    near = [f for f in frames if end - before <= f.t <= end + after]
    if near:
        largest = max(f.image.shape[0] * f.image.shape[1] for f in near)
        return max((f for f in near if f.image.shape[0] * f.image.shape[1] == largest), key=lambda f: (f.sharpness, f.t))
    return min(frames, key=lambda f: abs(f.t - end), default=None)


# --- the skill ---------------------------------------------------------------------------------------
class CaptureSkill:
    name = "capture"

    def __init__(self, folder, blur: bool = True, log: Callable[..., object] = lambda type_, **fields: None, *,
                 realtime: bool = True, default_s: float = DEFAULT_S, longest_s: float = LONGEST_S,
                 queue_frames: int = QUEUE_FRAMES):
        """`folder`: the session's OUT (photos/ and videos/ go in it). `blur`: faces blurred in what
        is saved. `log(type_, **fields)`: e.g. SessionLog.write (an event's fields include `kind`).
        `realtime`: False for a replay, whose camera thread may wait for the encoder (no drops)."""
        self.folder, self.blur, self.log, self.wait = Path(folder), blur, log, 0.0 if realtime else 5.0
        self.default_s, self.longest_s, self.queue_frames = default_s, longest_s, queue_frames
        self._active: Recording | None = None  # read without a lock by `offer`: one attribute read
        self._writing: list[Recording] = []  # until their file is whole
        self._recent: deque[VideoFrame] = deque(maxlen=RECENT_FRAMES)
        self._lock = threading.Lock()
        self._faces: tuple | None = None  # (detector or None, warning), loaded by the first video

    def wants(self, question: str, active: str = "") -> str:
        kind = intent(question)
        return f"capture: {kind}" if kind else ""

    def recording(self) -> bool:
        rec = self._active
        return rec is not None and not rec.ending.is_set()

    def offer(self, frame: VideoFrame) -> None:
        """Every camera frame, from the source thread: an append, and more only while recording."""
        self._recent.append(frame)
        rec = self._active
        if rec is not None:
            rec.offer(frame.t, frame.image)

    def answer(self, ctx: ModeContext) -> ModeResult:
        kind = intent(ctx.request.question)
        run = {"photo": self._photo, "video": self._video, "stop": self._stop}.get(kind)
        if run is None:  # the router asked, so the words changed since: say what works rather than guess
            return say(ctx, time.perf_counter(), HELP, {"kind": ""}, "capture")
        return run(ctx)

    def close(self) -> None:
        """Finishes a recording in progress (session end): returns once every file is whole."""
        rec = self._active
        if rec is not None:
            rec.end()
        for rec in list(self._writing):
            rec.thread.join(timeout=60.0)

    def _photo(self, ctx: ModeContext) -> ModeResult:
        t0 = time.perf_counter()
        frame = photo_frame(ctx.frames, ctx.end) or ctx.best
        if frame is None:
            return self._failed(ctx, t0, "photo", NO_PICTURE, "no camera picture")
        image, faces = frame.image, None
        if self.blur:
            from pipelines.private_video import private_photo
            image, faces = private_photo(image)
        ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[..., :3]), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            return self._failed(ctx, t0, "photo", "I couldn't save the photo.", "JPEG encoding failed")
        part = None
        try:
            part = reserve(self.folder / "photos", "photo", "jpg")
            part.write_bytes(data.tobytes())
            path = publish(part)
        except OSError as err:
            if part is not None:
                part.unlink(missing_ok=True)  # ours, made above: never a user's file
            why = reason_of(err)
            return self._failed(ctx, t0, "photo", f"I couldn't save the photo: {why}.", why, frame_t=frame.t)
        record = {"kind": "photo", "path": self._rel(path), "frames": 1, "dropped": 0, "frame_t": frame.t,
                  "faces": faces}
        self.log("capture", **record)
        ctx.evidence(Evidence(0, "photo saved", fit(image, THUMB_SIDE)[0]))
        return say(ctx, t0, PHOTO_TAKEN, record, "capture")

    def _video(self, ctx: ModeContext) -> ModeResult:
        t0 = time.perf_counter()
        if self.recording():
            return say(ctx, t0, ALREADY, {"kind": "video_start", "error": "already recording"}, "capture")
        seconds, why = video_length(ctx.request.question, self.default_s, self.longest_s)
        try:
            part = reserve(self.folder / "videos", "video", "mp4")
        except OSError as err:
            reason = reason_of(err)
            return self._failed(ctx, t0, "video_start", f"I couldn't start the video: {reason}.", reason)
        if self.blur:
            self._detector()  # loaded now (once), so the worker takes frames at once
        rec = Recording(part, ctx.end, ctx.end + seconds, self._detector if self.blur else None, self._finished,
                        self.queue_frames, self.wait)
        with self._lock:
            self._writing.append(rec)
        rec.thread.start()
        with rec.lock:  # the frames since the question ended, already seen, go in before the camera's next
            self._active = rec
            seen = {f.t: f.image for f in (*ctx.frames, *list(self._recent)) if f.t >= ctx.end}
            for t in sorted(seen):
                rec.take(t, seen[t])
        record = {"kind": "video_start", "path": self._rel(part)[:-len(".part")], "seconds": seconds, "length": why}
        self.log("capture", **record, start=ctx.end, frames=0, dropped=0)
        return say(ctx, t0, recording_line(seconds, why), record, "capture")

    def _stop(self, ctx: ModeContext) -> ModeResult:
        t0 = time.perf_counter()
        rec = self._active
        if rec is None or rec.ending.is_set():
            return say(ctx, t0, NOT_RECORDING, {"kind": "video_stop", "error": "not recording"}, "capture")
        rec.end(ctx.start if ctx.start > rec.start else None)  # the words "stop recording" are left out
        deadline = time.monotonic() + STOP_WAIT_S
        while rec.thread.is_alive() and time.monotonic() < deadline and not ctx.cancel.is_set():
            rec.thread.join(0.05)
        if rec.thread.is_alive():
            text = "Stopped recording. The video is still being saved."
        elif rec.error:
            text = f"I couldn't save the video: {rec.error}."
        else:
            text = f"Stopped recording. Video saved, {rec.seconds:.0f} seconds."
        return say(ctx, t0, text, {"kind": "video_stop", "path": self._rel(rec.path), "error": rec.error}, "capture")

    def _failed(self, ctx: ModeContext, t0: float, kind: str, text: str, error: str, **fields) -> ModeResult:
        self.log("capture", kind=kind, path=None, frames=0, dropped=0, error=error, **fields)
        return say(ctx, t0, text, {"kind": kind, "error": error}, "capture")

    def _detector(self) -> tuple:
        """The video's face detector (private_video.load_detector at FaceBlur's size), loaded once."""
        with self._lock:
            if self._faces is None:
                from pipelines.private_video import BlurConfig, load_detector
                self._faces = load_detector(BlurConfig.side)
            return self._faces

    def _finished(self, rec: Recording) -> None:
        with self._lock:
            if rec in self._writing:
                self._writing.remove(rec)
            if self._active is rec:
                self._active = None
        self.log("capture", kind="video_end", path=self._rel(rec.path), frames=rec.frames, dropped=rec.dropped,
                 offered=rec.offered, seconds=round(rec.seconds, 3), codec=rec.codec, faces=rec.faces,
                 **({"error": rec.error} if rec.error else {}))

    def _rel(self, path: Path | None) -> str | None:
        if path is None:
            return None
        return str(Path(path).relative_to(self.folder)) if Path(path).is_relative_to(self.folder) else str(path)

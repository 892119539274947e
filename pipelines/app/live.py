"""The live command: the laptop's camera, microphone and speaker play the glasses."""
from __future__ import annotations

import datetime as dt
import logging
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from core.clock import WallClock
from core.messages import TypedQuestion
from pipelines.app.common import (RANDOM_BANNER, AssistantOptions, Terminated, UsageError, _print_turns,
                                  default_out, open_session, prepare_out, privacy_badge, session_config, stages)
from pipelines.app.memory import open_memory, summary_line
from pipelines.app.skills import build_skills, open_catalog
from pipelines.vision import CAMERA_SIDE
from pipelines.private_video import load_detector, private_photo
from pipelines.session import Session
from pipelines.vad import SileroVAD


@dataclass(frozen=True)
class LiveOptions(AssistantOptions):
    camera: str = "0"  # device index, stream URL, video file, or "none"
    mic: str | None = None  # None: the default input; an index, a name, an audio file, or "none" (typed questions)
    speaker: str | None = None  # None: the default output; an index, a name, or "none" (answers as text)
    window: bool = True
    ptt: str = "toggle"  # push-to-talk key: toggle | hold
    self_hearing: str = "aec"  # aec | gate | mute | off (see glasses/microphone.py, glasses/echo.py)
    echo_ratio: float = 1.0  # gate: how loud the speaker's echo may be, relative to what is played
    echo: bool = True  # print what was heard and answered in the terminal


@dataclass
class LiveResult:
    out: Path
    turns: list[dict]
    records: list[dict]
    warnings: list[str]
    reason: str  # why the session ended
    code: int  # 0, or 130 after Ctrl+C
    figures: dict = field(default_factory=dict)


def _open_ports(opts: LiveOptions, warnings: list[str], camera, mic, speaker):
    """Open what was not injected, cheapest first; a bad device is one line (UsageError).

    The speaker comes back as a factory taking the session clock's `now`: the clock starts
    when the session does, after the models have loaded."""
    from glasses.camera import Camera, CameraError, parse_source
    from glasses.speaker import SoundDeviceSpeaker, TextSpeaker
    from glasses.microphone import DeviceError, find_device, open_microphone
    from glasses.window import display_problem

    if opts.window:
        problem = display_problem()
        if problem:
            raise UsageError(f"{problem}; run with --no-window")
    if camera is None and opts.camera.lower() != "none":
        try:
            camera = Camera.open(parse_source(opts.camera), max_side=CAMERA_SIDE)  # reading needs the pixels
        except CameraError as err:
            raise UsageError(str(err)) from err
    try:
        if mic is None and (opts.mic or "").lower() != "none":
            try:
                mic = open_microphone(opts.mic)
            except DeviceError as err:
                if opts.mic is not None:
                    raise UsageError(str(err)) from err
                warnings.append(f"no microphone, so type your questions in the terminal ({err})")
        make_speaker = (lambda now: speaker) if speaker is not None else TextSpeaker
        if speaker is None and (opts.speaker or "").lower() != "none":
            try:
                device = find_device(opts.speaker, "output")
                make_speaker = lambda now: SoundDeviceSpeaker(device, now)  # noqa: E731
            except DeviceError as err:
                if opts.speaker is not None:
                    raise UsageError(f"--speaker {opts.speaker}: {err}") from err
                warnings.append("no audio output device: answers are shown as text only")
        return camera, mic, make_speaker
    except BaseException:
        for port in (camera, mic):
            if port is not None:
                port.close()
        raise


def live(opts: LiveOptions, *, camera=None, mic=None, speaker=None, window=None, asr=None, vlm=None, tts=None,
         vad=None, stdin=None, clock=None) -> LiveResult:
    """Run the glasses on this laptop until q/Esc, Ctrl+C or the end of a file camera.

    Ports and stages may be injected (tests pass fakes); the rest is opened from `opts`.
    Devices are checked before any model loads, so a bad one costs a line, not a minute."""
    from glasses.live import LiveDisplay, LiveSource
    from glasses.speaker import TextSpeaker
    from glasses.echo import open_self_hearing, preload as preload_echo
    from glasses.window import Window

    warnings: list[str] = []
    camera, mic, make_speaker = _open_ports(opts, warnings, camera, mic, speaker)
    source = LiveSource(camera, mic)
    memory = None
    try:
        if window is None and opts.window:
            window = Window("glasses")
        catalog = open_catalog(opts.catalog)  # before the models load, like a refused memory folder
        if opts.memory:  # before the models load: a refused folder costs a line, not a minute
            memory = open_memory(opts.memory, opts.memory_days, warnings)
        asr, vlm, models = stages(opts, asr, vlm)
        if memory is not None:
            memory.prepare(vlm, replay=False)
        out = opts.out or default_out(Path("live"))
        skills = build_skills(opts, out, catalog, memory, blur=opts.blur_faces, realtime=True)  # before the folder
        out = prepare_out(out)
        if opts.self_hearing == "aec":
            preload_echo()  # importing livekit takes ~0.7 s: before the clock starts, not before the microphone
        clock = clock or WallClock()  # session time 0: now, with the models loaded
        try:
            speaker = make_speaker(clock.now)
        except Exception as err:  # noqa: BLE001 - PortAudio refusing the output stream
            raise UsageError(f"cannot open the speaker: {str(err).splitlines()[0]}; try --speaker none") from err
    except BaseException:
        source.close()
        if memory is not None:
            memory.close()
        raise
    source.gate, problem = open_self_hearing(opts.self_hearing, speaker, ratio=opts.echo_ratio)
    warnings += [problem] if problem else []
    if getattr(speaker, "latency", 0.0) is None:  # a SoundDeviceSpeaker whose device reports none
        warnings.append("the output device reports no latency: echo cancellation assumes 0 ms and searches for the rest")
    detector = None
    if opts.blur_faces:  # photos are kept with faces blurred (memory thumbnails always are)
        detector, why = load_detector()
        warnings += [why] if why else []
    session_log, tts, own_tts = open_session(
        out, opts, models, warnings, tts, "live", clip=None, pace="live", duration=None,
        camera=getattr(camera, "name", None), mic=getattr(mic, "name", None),
        speaker=speaker.name if hasattr(speaker, "name") else type(speaker).__name__, self_hearing=source.gate.mode,
        speaker_latency_s=getattr(speaker, "latency", None), memory=memory.describe() if memory is not None else None,
        blur_faces=opts.blur_faces, face_detector=getattr(detector, "name", None), skills=skills.describe())
    skills.log = session_log
    display = LiveDisplay(speaker, clock.now, echo=(lambda line: print(line, flush=True)) if opts.echo else None)
    session = Session(session_config(opts, models), source=source, vad=vad or SileroVAD(), asr=asr, vlm=vlm,
                      tts=tts, speaker=speaker, clock=clock, log_=session_log, display=display,
                      **{**(memory.session_kwargs() if memory is not None else {}), "skills": skills.skills})
    if memory is not None:
        memory.attach(session, session_log)
    banner = [RANDOM_BANNER] if models.get("random_weights") else []
    banner += ["no camera"] if camera is None else []
    banner += ["no speaker: answers as text"] if isinstance(speaker, TextSpeaker) else []
    run = _LiveRun(opts, session, source, speaker, window, display, clock, session_log, out, banner, stdin)
    try:
        result = run.go()
    finally:
        if own_tts:
            tts.close()
        skills.close()
        if memory is not None:
            memory.close()
    result.warnings = warnings
    return result


INPUT_END_GRACE = 0.5  # seconds the session must stay idle after its input ended before it ends


class _LiveRun:
    """The supervisor: starts the ports and the session, turns keys and typed lines into
    messages, watches the camera, and shuts everything down in order (within ~2 s)."""

    def __init__(self, opts, session, source, speaker, window, display, clock, log_, out, banner, stdin):
        self.opts, self.session, self.source, self.speaker, self.window = opts, session, source, speaker, window
        self.display, self.clock, self.log, self.out, self.banner = display, clock, log_, out, banner
        self.camera, self.mic = source.camera, source.mic
        self.stdin = stdin
        self.quit_event = threading.Event()
        self.typed = None
        self.note_until = None
        self.camera_fps: deque[float] = deque(maxlen=600)  # the last ~30 s of rates: the median is reported
        self.failure: BaseException | None = None

    # --- actions (called from the window or the typing thread) ------------------------------
    def quit(self) -> None:
        self.quit_event.set()

    def ask(self, text: str) -> None:
        self.session.submit(TypedQuestion(self.clock.now(), text))

    def photo(self) -> None:
        import cv2

        t = self.clock.now()
        frame = self.camera.latest() if self.camera is not None else None
        if frame is None:
            self.session.show(t, notes=("photo: no camera frame",))
        else:
            folder = self.out / "photos"
            folder.mkdir(exist_ok=True)
            path = folder / f"photo-{dt.datetime.now().strftime('%Y%m%d-%H%M%S-%f')[:-3]}.jpg"
            image, faces = private_photo(frame.image) if self.opts.blur_faces else (frame.image, None)
            cv2.imwrite(str(path), image)
            self.log.write("photo", t=t, path=str(path.relative_to(self.out)), frame_time=frame.t, faces=faces)
            self.session.show(t, notes=(f"photo saved: {path.name}",))
            print(f"photo:  {path}", flush=True)
        self.note_until = t + 3.0

    # --- running ------------------------------------------------------------------------------
    def go(self) -> LiveResult:
        from glasses.live import Buttons, TypedQuestions, stdin_usable

        session, clock = self.session, self.clock
        buttons = Buttons(clock.now, session.submit, self.photo, self.quit, ptt=self.opts.ptt)
        badge = privacy_badge(session.config.models, self.opts.blur_faces or self.opts.memory is not None)
        session.show(0.0, banner=" | ".join(self.banner), **({"badge": badge} if badge else {}))
        if self.camera is not None:
            self.camera.start(clock.now)
        if self.mic is not None:
            self.mic.start(clock.now)
        thread = threading.Thread(target=self._session, name="session", daemon=True)
        thread.start()
        if self.window is not None:
            self.window.start(self.camera.latest if self.camera is not None else (lambda: None),
                              self.display.current, buttons.key, buttons.tick)
        stdin = self.stdin if self.stdin is not None else (sys.stdin if stdin_usable() else None)
        if self.mic is None and stdin is not None:
            self.typed = TypedQuestions(stdin, self.ask).start()
        self._hello()
        reason, code = "quit", 0
        asks = sorted(self.opts.asks)
        stale = False
        idle_since: float | None = None  # no input left and nothing to finish since then
        try:
            while not self.quit_event.wait(0.05):
                now = clock.now()
                while asks and asks[0][0] <= now:
                    self.ask(asks.pop(0)[1])
                if not thread.is_alive():
                    reason = "the session stopped (see session.jsonl)"
                    break
                if self.camera is not None and self.camera.ended:
                    reason = "the camera file ended"
                    break
                if not asks and not self._input_left() and session.idle():
                    idle_since = now if idle_since is None else idle_since
                    if now - idle_since >= INPUT_END_GRACE:
                        reason = "no input left (the microphone file or standard input ended)"
                        break
                else:
                    idle_since = None
                stale = self._watch_camera(now, stale)
                if self.note_until is not None and now > self.note_until:
                    self.note_until = None
                    session.show(now, notes=())
        except KeyboardInterrupt as err:
            reason, code = ("terminated (SIGTERM)", 143) if isinstance(err, Terminated) else ("interrupted (Ctrl+C)", 130)
        finally:
            figures = self._shutdown(thread, reason)
        if self.failure is not None:
            raise self.failure
        return LiveResult(self.out, self.log.turns(), list(self.log.records), [], reason, code, figures)

    def _input_left(self) -> bool:
        """Whether anything can still ask a question: a microphone that has not ended, a terminal
        still open for typing, or the window (its keys). With none, the session ends once it has
        answered what it was asked."""
        mic = self.mic is not None and not self.mic.ended
        typed = self.typed is not None and not self.typed.ended
        return mic or typed or self.window is not None

    def _watch_camera(self, now: float, stale: bool) -> bool:
        """The display says when the camera stopped delivering; answers go on without an image."""
        if self.camera is None:
            return stale
        frame = self.camera.latest()
        fps = self.camera.fps
        if fps:
            self.camera_fps.append(fps)
        now_stale = now > 1.5 and (frame is None or now - frame.t > 1.0)
        if now_stale != stale:
            banner = self.banner + (["camera: no frames"] if now_stale else [])
            self.session.show(now, banner=" | ".join(banner))
            if now_stale:
                self.log.write("error", stage="camera", message="the camera stopped delivering frames", t=now)
        return now_stale

    def _session(self) -> None:
        try:
            self.session.run()
        except BaseException as err:  # noqa: BLE001 - re-raised in the main thread after shutdown
            logging.getLogger("live").exception("session failed")
            self.failure = err

    def _hello(self) -> None:
        ports = [f"camera: {self.camera.name if self.camera else 'none'}",
                 f"microphone: {self.mic.name if self.mic else 'none, type your questions and press Enter'}",
                 f"speaker: {getattr(self.speaker, 'name', type(self.speaker).__name__)}",
                 f"self-hearing: {self.source.gate.mode if self.source.gate is not None else 'off'}"]
        print("live | " + " | ".join(ports), flush=True)
        keys = "space push-to-talk (%s), p photo, m mode, q or Esc quit; " % self.opts.ptt if self.window else ""
        ask = (f"Say \"{self.opts.wake}, what am I looking at?\"" if self.opts.wake
               else "No wake phrase: press space (push-to-talk) or type a question")
        print(f"{keys}Ctrl+C quits. {ask}", flush=True)

    def _shutdown(self, thread: threading.Thread, reason: str) -> dict:
        """Stop in order: the session (cancels the turn), then the devices, the window and the
        speaker; the log gets its `end` and is closed. Every step has a deadline."""
        t0 = time.perf_counter()
        session = self.session
        session.stop()
        self.source.close()  # camera and microphone threads end, devices released
        if self.typed is not None:
            self.typed.close()
        thread.join(2.0)
        session.join(max(0.1, 2.0 - (time.perf_counter() - t0)))  # answers stop at their next token
        if self.window is not None:
            self.window.close()
        self.speaker.close()
        figures = {
            "camera_fps": round(sorted(self.camera_fps)[len(self.camera_fps) // 2], 1) if self.camera_fps else None,
            "camera_frames": self.camera.frames if self.camera is not None else 0,
            "window_drawn": getattr(self.window, "drawn", 0), "window_dropped": getattr(self.window, "dropped", 0),
            "mic_dropped_chunks": self.mic.dropped if self.mic is not None else 0,
            "self_hearing": self.source.gate.stats() if self.source.gate is not None else None,
            "shutdown_s": round(time.perf_counter() - t0, 3),
            "sizes": {**session.sizes(), "camera_fps": len(self.camera_fps)},
        }
        if not self.log.records or self.log.records[-1]["type"] != "end":
            self.log.write("end", t=self.clock.now(), reason=reason, **session.end_fields(), **figures)
        self.log.close()
        return figures


def print_live_summary(result: LiveResult) -> None:
    _print_turns(result)
    kept = summary_line(result.records)
    if kept:
        print(kept)
    photos = [r for r in result.records if r["type"] == "photo"]
    if photos:
        print(f"photos: {len(photos)} in {result.out / 'photos'}")
    print(f"ended: {result.reason}")
    print(f"log:   {result.out / 'session.jsonl'}")

"""Assembly: build the ports and stages a command asks for, run a Session, write outputs.

This is the only module that imports both the wearable side (`glasses/`) and the stages;
`session.py` does the runtime wiring and never sees a concrete device.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from glasses.recorded import MediaError, RecordedSource
from glasses.render import render_annotated
from glasses.speaker import MixSpeaker
from pipelines.asr import ASRConfig, ASRStage, FasterWhisper
from pipelines.clock import MediaClock, WallClock
from pipelines.log import SessionLog, summary_table
from pipelines.messages import TypedQuestion
from pipelines.models import ModelChoice, ModelUnavailable, choose
from pipelines.session import Session, SessionConfig
from pipelines.tts import Pyttsx3TTS
from pipelines.vad import EndpointConfig, SileroVAD
from pipelines.vlm import HFVLM, VLMConfig, default_dtype

RANDOM_BANNER = "RANDOM WEIGHTS: wiring smoke run, answers are noise"


class UsageError(Exception):
    """Bad input: one line for the user, exit code 2."""


@dataclass(frozen=True, kw_only=True)
class AssistantOptions:
    """What replay and live share: models, turn-taking, mode and output folder."""

    out: Path | None = None
    models: str = "default"
    vlm: str | None = None
    asr: str | None = None
    wake: str = "hey glasses"
    asks: tuple[tuple[float, str], ...] = ()  # typed questions at media seconds (live: seconds after start)
    mode: str = "instant"
    agents: int = 4
    language: str | None = "en"
    translate: bool = False
    silence: float = EndpointConfig.silence
    follow_up: float = 6.0
    max_new_tokens: int = 60
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ReplayOptions(AssistantOptions):
    clip: Path
    pace: str = "fast"
    render: bool = True
    progress: bool = True


@dataclass
class ReplayResult:
    out: Path
    turns: list[dict]
    records: list[dict]
    warnings: list[str]
    video: Path | None
    timings: dict = field(default_factory=dict)  # wall seconds: load, session, render


def default_out(clip: Path) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{clip.stem}-{stamp}"


def prepare_out(out: Path) -> Path:
    """Never overwrite a previous session: an --out that already holds one is refused."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    for name in ("session.jsonl", "annotated.mp4"):
        if (out / name).exists():
            raise UsageError(f"--out {out} already holds a session ({name}); choose another folder or move it away")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create --out {out}: {err.strerror}") from err
    return out


def log_to_file(out: Path) -> None:
    """Details (tracebacks included) go to OUT/debug.log; the terminal gets one-line warnings."""

    class OneLine(logging.Formatter):
        def formatException(self, ei):  # noqa: N802 - logging's name
            return ""

        def format(self, record):
            return super().format(record).strip().splitlines()[0]

    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.INFO)
    file = logging.FileHandler(out / "debug.log", encoding="utf-8")
    file.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"))
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    console.setFormatter(OneLine("warning: %(message)s"))
    root.addHandler(file)
    root.addHandler(console)
    for noisy in ("transformers", "huggingface_hub", "faster_whisper", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def load_models(choice: ModelChoice, opts: AssistantOptions):
    """The real stages for a model choice (ModelUnavailable when weights cannot be had)."""
    threads = max(1, min(4, os.cpu_count() or 1))
    asr_config = ASRConfig(model=choice.asr, language=opts.language, task="translate" if opts.translate else "transcribe",
                           cpu_threads=threads)
    whisper = FasterWhisper(asr_config)
    vlm = HFVLM(VLMConfig(model=choice.vlm, dtype=default_dtype()))
    whisper.setup()
    vlm.setup()
    return ASRStage(whisper, asr_config), vlm


def stages(opts: AssistantOptions, asr=None, vlm=None) -> tuple[object, object, dict]:
    """ASR and VLM for the options (injected ones kept: tests pass fakes), and their description."""
    if asr is None or vlm is None:
        try:
            choice = choose(opts.models, opts.vlm, opts.asr)
            real_asr, real_vlm = load_models(choice, opts)
        except ModelUnavailable as err:
            raise UsageError(str(err)) from err
        return asr or real_asr, vlm or real_vlm, {**choice.describe(), "dtype": real_vlm.config.dtype}
    return asr, vlm, {"vlm": type(vlm).__name__, "asr": type(getattr(asr, "model", asr)).__name__,
                      "random_weights": False, "fake": True}


def open_session(out: Path, opts: AssistantOptions, models: dict, warnings: list[str], tts, name: str, **fields):
    """Logging, the TTS worker (unless injected) and session.jsonl's first record, for either command."""
    log_to_file(out)
    for w in warnings:
        logging.getLogger(name).warning(w)
    own_tts = tts is None
    if own_tts:
        tts = Pyttsx3TTS()
        tts.setup()
    session_log = SessionLog(out / "session.jsonl")
    session_log.write("session", **fields, models=models, mode=opts.mode, wake_phrase=opts.wake, warnings=warnings,
                      started=dt.datetime.now().isoformat(timespec="seconds"),
                      note=RANDOM_BANNER if models.get("random_weights") else "")
    return session_log, tts, own_tts


def session_config(opts, models: dict, **more) -> SessionConfig:
    """The SessionConfig both commands build from their shared options."""
    fields = dict(wake_phrase=opts.wake, follow_up=opts.follow_up, mode=opts.mode, agents=opts.agents,
                  max_new_tokens=opts.max_new_tokens, endpoint=EndpointConfig(silence=opts.silence), models=models)
    return SessionConfig(**{**fields, **more, **opts.extra})


def replay(opts: ReplayOptions, *, asr=None, vlm=None, tts=None) -> ReplayResult:
    """Replay a clip through the loop; stages may be injected (tests pass fakes)."""
    timings = {}
    t_load = time.perf_counter()
    if not opts.clip.exists():
        raise UsageError(f"no such file: {opts.clip}")
    try:
        source = RecordedSource(opts.clip)
    except MediaError as err:
        raise UsageError(str(err)) from err
    duration = source.info.duration
    for t, _ in opts.asks:
        if t > duration + 1e-6:
            raise UsageError(f"--ask at {t:g} s is past the end of the clip ({duration:.1f} s)")
    asr, vlm, models = stages(opts, asr, vlm)
    out = prepare_out(opts.out or default_out(opts.clip))  # after loading: a failed start leaves nothing behind
    warnings = list(source.warnings)
    session_log, tts, own_tts = open_session(out, opts, models, warnings, tts, "replay", clip=str(opts.clip),
                                             pace=opts.pace, duration=duration)
    config = session_config(opts, models, asks=tuple(opts.asks))
    speaker = MixSpeaker()
    clock = WallClock() if opts.pace == "realtime" else MediaClock()
    bar = _progress_bar(duration) if opts.progress and opts.pace == "fast" else None
    session = Session(config, source=source, vad=SileroVAD(), asr=asr, vlm=vlm, tts=tts, speaker=speaker,
                      clock=clock, log_=session_log, on_progress=(lambda t: bar.update(max(0.0, t - bar.n))) if bar else None)
    banner = RANDOM_BANNER if models.get("random_weights") else ""
    if not source.info.has_video:
        banner = (banner + " | " if banner else "") + "audio only: no frames to look at"
    session.show(0.0, banner=banner)
    timings["load"] = time.perf_counter() - t_load
    t_session = time.perf_counter()
    try:
        session.run()
    finally:
        timings["session"] = time.perf_counter() - t_session
        if bar:
            bar.close()
        if own_tts:
            tts.close()
        source.close()
        session_log.close()

    video = None
    t_render = time.perf_counter()
    if opts.render:
        speech = [(c.start, c.samples, c.rate) for c in speaker.clips() if len(c.samples)]
        try:
            video = render_annotated(opts.clip, out / "annotated.mp4", session.timeline(), speech,
                                     progress=opts.progress)
        except MediaError as err:
            logging.getLogger("replay").warning("annotated video not written: %s", err)
    timings["render"] = time.perf_counter() - t_render
    return ReplayResult(out, session_log.turns(), session_log.records, warnings, video, timings)


def _progress_bar(duration: float):
    from tqdm import tqdm

    return tqdm(total=round(duration, 2), unit="s", desc="replay", bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s media [{elapsed}<{remaining}]")


def _print_turns(result) -> None:
    """The turn table, and the random-weights note wherever it applies (replay and live)."""
    print(summary_table(result.turns))
    if any(r.get("models", {}).get("random_weights") for r in result.records if r["type"] == "session"):
        print(f"note: {RANDOM_BANNER}")


def print_summary(result: ReplayResult) -> None:
    _print_turns(result)
    duration = next((r.get("duration", 0.0) for r in result.records if r["type"] == "session"), 0.0)
    took = result.timings.get("session", 0.0)
    if took > 0:
        print(f"replayed {duration:.1f} s of media in {took:.1f} s ({duration / took:.1f}x real time); "
              f"models loaded in {result.timings.get('load', 0.0):.1f} s, video written in {result.timings.get('render', 0.0):.1f} s")
    print(f"log:   {result.out / 'session.jsonl'}")
    if result.video:
        print(f"video: {result.video}")


# --- live: the laptop plays the glasses ----------------------------------------------------------
@dataclass(frozen=True)
class LiveOptions(AssistantOptions):
    camera: str = "0"  # device index, stream URL, video file, or "none"
    mic: str | None = None  # None: the default input; an index, a name, an audio file, or "none" (typed questions)
    speaker: str | None = None  # None: the default output; an index, a name, or "none" (answers as text)
    window: bool = True
    ptt: str = "toggle"  # push-to-talk key: toggle | hold
    self_hearing: str = "gate"  # gate | mute | off (see glasses/microphone.py)
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
    from glasses.live import SoundDeviceSpeaker, TextSpeaker
    from glasses.microphone import DeviceError, find_device, open_microphone
    from glasses.window import display_problem

    if opts.window:
        problem = display_problem()
        if problem:
            raise UsageError(f"{problem}; run with --no-window")
    if camera is None and opts.camera.lower() != "none":
        try:
            camera = Camera.open(parse_source(opts.camera))
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
    from glasses.live import LiveDisplay, LiveSource, TextSpeaker
    from glasses.microphone import SelfHearingGate
    from glasses.window import Window

    warnings: list[str] = []
    camera, mic, make_speaker = _open_ports(opts, warnings, camera, mic, speaker)
    source = LiveSource(camera, mic)
    try:
        if window is None and opts.window:
            window = Window("glasses")
        asr, vlm, models = stages(opts, asr, vlm)
        out = prepare_out(opts.out or default_out(Path("live")))
        clock = clock or WallClock()  # session time 0: now, with the models loaded
        try:
            speaker = make_speaker(clock.now)
        except Exception as err:  # noqa: BLE001 - PortAudio refusing the output stream
            raise UsageError(f"cannot open the speaker: {str(err).splitlines()[0]}; try --speaker none") from err
    except BaseException:
        source.close()
        raise
    source.gate = SelfHearingGate(opts.self_hearing, speaker.played, ratio=opts.echo_ratio)
    session_log, tts, own_tts = open_session(
        out, opts, models, warnings, tts, "live", clip=None, pace="live", duration=None,
        camera=getattr(camera, "name", None), mic=getattr(mic, "name", None),
        speaker=speaker.name if hasattr(speaker, "name") else type(speaker).__name__, self_hearing=opts.self_hearing)
    display = LiveDisplay(speaker, clock.now, echo=(lambda line: print(line, flush=True)) if opts.echo else None)
    session = Session(session_config(opts, models), source=source, vad=vad or SileroVAD(), asr=asr, vlm=vlm,
                      tts=tts, speaker=speaker, clock=clock, log_=session_log, display=display)
    banner = [RANDOM_BANNER] if models.get("random_weights") else []
    banner += ["no camera"] if camera is None else []
    banner += ["no speaker: answers as text"] if isinstance(speaker, TextSpeaker) else []
    run = _LiveRun(opts, session, source, speaker, window, display, clock, session_log, out, banner, stdin)
    try:
        result = run.go()
    finally:
        if own_tts:
            tts.close()
    result.warnings = warnings
    return result


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
        self.camera_fps: list[float] = []
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
            cv2.imwrite(str(path), frame.image)
            self.log.write("photo", t=t, path=str(path.relative_to(self.out)), frame_time=frame.t)
            self.session.show(t, notes=(f"photo saved: {path.name}",))
            print(f"photo:  {path}", flush=True)
        self.note_until = t + 3.0

    # --- running ------------------------------------------------------------------------------
    def go(self) -> LiveResult:
        from glasses.live import Buttons, TypedQuestions, stdin_usable

        session, clock = self.session, self.clock
        buttons = Buttons(clock.now, session.submit, self.photo, self.quit, ptt=self.opts.ptt)
        session.show(0.0, banner=" | ".join(self.banner))
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
        try:
            while not self.quit_event.wait(0.05):
                now = clock.now()
                while asks and asks[0][0] <= now:
                    self.ask(asks.pop(0)[1])
                if not thread.is_alive():
                    reason = "the session stopped (see session.jsonl)"
                    break
                if self.camera is not None:
                    if self.camera.ended:
                        reason = "the camera file ended"
                        break
                    frame = self.camera.latest()
                    fps = self.camera.fps
                    if fps:
                        self.camera_fps.append(fps)
                    now_stale = now > 1.5 and (frame is None or now - frame.t > 1.0)
                    if now_stale != stale:  # the display says so; answers go on without an image
                        stale = now_stale
                        banner = self.banner + (["camera: no frames"] if stale else [])
                        session.show(now, banner=" | ".join(banner))
                        if stale:
                            self.log.write("error", stage="camera", message="the camera stopped delivering frames", t=now)
                if self.note_until is not None and now > self.note_until:
                    self.note_until = None
                    session.show(now, notes=())
        except KeyboardInterrupt:
            reason, code = "interrupted (Ctrl+C)", 130
        finally:
            figures = self._shutdown(thread, reason)
        if self.failure is not None:
            raise self.failure
        return LiveResult(self.out, self.log.turns(), self.log.records, [], reason, code, figures)

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
                 f"self-hearing: {self.opts.self_hearing}"]
        print("live | " + " | ".join(ports), flush=True)
        keys = "space push-to-talk (%s), p photo, m mode, q or Esc quit; " % self.opts.ptt if self.window else ""
        print(f"{keys}Ctrl+C quits. Say \"{self.opts.wake}, what am I looking at?\"", flush=True)

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
        turn = session.turn
        if turn is not None and turn.thread is not None:
            turn.thread.join(max(0.1, 2.0 - (time.perf_counter() - t0)))
        if self.window is not None:
            self.window.close()
        self.speaker.close()
        figures = {
            "camera_fps": round(sorted(self.camera_fps)[len(self.camera_fps) // 2], 1) if self.camera_fps else None,
            "camera_frames": self.camera.frames if self.camera is not None else 0,
            "window_drawn": getattr(self.window, "drawn", 0), "window_dropped": getattr(self.window, "dropped", 0),
            "mic_dropped_chunks": self.mic.dropped if self.mic is not None else 0,
            "shutdown_s": round(time.perf_counter() - t0, 3),
        }
        if not self.log.records or self.log.records[-1]["type"] != "end":
            self.log.write("end", t=self.clock.now(), dropped_audio_chunks=session.dropped_audio, reason=reason,
                           **figures)
        self.log.close()
        return figures


def print_live_summary(result: LiveResult) -> None:
    _print_turns(result)
    photos = [r for r in result.records if r["type"] == "photo"]
    if photos:
        print(f"photos: {len(photos)} in {result.out / 'photos'}")
    print(f"ended: {result.reason}")
    print(f"log:   {result.out / 'session.jsonl'}")

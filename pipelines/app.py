"""Assembly: build the ports and stages a command asks for, run a Session, write outputs.

This is the only module that imports both the wearable side (`glasses/`) and the stages;
`session.py` does the runtime wiring and never sees a concrete device.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from glasses.recorded import MediaError, RecordedSource
from glasses.render import render_annotated
from glasses.speaker import MixSpeaker
from pipelines.asr import ASRConfig, ASRStage, FasterWhisper
from pipelines.clock import MediaClock, WallClock
from pipelines.log import SessionLog, summary_table
from pipelines.models import ModelChoice, ModelUnavailable, choose
from pipelines.session import Session, SessionConfig
from pipelines.tts import Pyttsx3TTS
from pipelines.vad import EndpointConfig, SileroVAD
from pipelines.vlm import HFVLM, VLMConfig

RANDOM_BANNER = "RANDOM WEIGHTS: wiring smoke run, answers are noise"


class UsageError(Exception):
    """Bad input: one line for the user, exit code 2."""


@dataclass(frozen=True)
class ReplayOptions:
    clip: Path
    out: Path | None = None
    pace: str = "fast"
    models: str = "default"
    vlm: str | None = None
    asr: str | None = None
    wake: str = "hey glasses"
    asks: tuple[tuple[float, str], ...] = ()
    mode: str = "instant"
    language: str | None = "en"
    translate: bool = False
    silence: float = 0.6
    follow_up: float = 6.0
    max_new_tokens: int = 60
    render: bool = True
    progress: bool = True
    extra: dict = field(default_factory=dict)


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


def load_models(choice: ModelChoice, opts: ReplayOptions):
    """The real stages for a model choice (ModelUnavailable when weights cannot be had)."""
    threads = max(1, min(4, os.cpu_count() or 1))
    asr_config = ASRConfig(model=choice.asr, language=opts.language, task="translate" if opts.translate else "transcribe",
                           cpu_threads=threads)
    whisper = FasterWhisper(asr_config)
    vlm = HFVLM(VLMConfig(model=choice.vlm))
    whisper.setup()
    vlm.setup()
    return ASRStage(whisper, asr_config), vlm


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
    if asr is None or vlm is None:
        try:
            choice = choose(opts.models, opts.vlm, opts.asr)
            real_asr, real_vlm = load_models(choice, opts)
        except ModelUnavailable as err:
            raise UsageError(str(err)) from err
        asr, vlm = asr or real_asr, vlm or real_vlm
        models = choice.describe()
    else:
        models = {"vlm": type(vlm).__name__, "asr": type(getattr(asr, "model", asr)).__name__, "random_weights": False,
                  "fake": True}
    out = prepare_out(opts.out or default_out(opts.clip))  # after loading: a failed start leaves nothing behind
    log_to_file(out)
    warnings = list(source.warnings)
    for w in warnings:
        logging.getLogger("replay").warning(w)
    own_tts = tts is None
    if own_tts:
        tts = Pyttsx3TTS()
        tts.setup()

    session_log = SessionLog(out / "session.jsonl")
    session_log.write("session", clip=str(opts.clip), pace=opts.pace, models=models, mode=opts.mode,
                      wake_phrase=opts.wake, duration=duration, warnings=warnings,
                      started=dt.datetime.now().isoformat(timespec="seconds"),
                      note=RANDOM_BANNER if models.get("random_weights") else "")
    config = SessionConfig(
        wake_phrase=opts.wake, follow_up=opts.follow_up, mode=opts.mode, asks=tuple(opts.asks),
        max_new_tokens=opts.max_new_tokens, endpoint=EndpointConfig(silence=opts.silence), models=models,
        **opts.extra,
    )
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


def print_summary(result: ReplayResult) -> None:
    print(summary_table(result.turns))
    random = any(r.get("models", {}).get("random_weights") for r in result.records if r["type"] == "session")
    if random:
        print(f"note: {RANDOM_BANNER}")
    duration = next((r.get("duration", 0.0) for r in result.records if r["type"] == "session"), 0.0)
    took = result.timings.get("session", 0.0)
    if took > 0:
        print(f"replayed {duration:.1f} s of media in {took:.1f} s ({duration / took:.1f}x real time); "
              f"models loaded in {result.timings.get('load', 0.0):.1f} s, video written in {result.timings.get('render', 0.0):.1f} s")
    print(f"log:   {result.out / 'session.jsonl'}")
    if result.video:
        print(f"video: {result.video}")

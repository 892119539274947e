"""What both commands assemble alike: options, models, the output folder, logging and the session log.

The assembly (this package) is the only code that imports both the wearable side
(`glasses/`) and the stages; `pipelines/session.py` does the runtime wiring and never sees a
concrete device.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.asr import ASRConfig, ASRStage, FasterWhisper, check_language, whisper_language
from pipelines.log import SessionLog, summary_table
from pipelines.models import ASR, VLM, ModelChoice, ModelUnavailable, choose, locate
from pipelines.session import SessionConfig
from pipelines.tts import Pyttsx3TTS
from pipelines.turn_model import DEFAULT_POLICY
from pipelines.vad import EndpointConfig
from pipelines.vlm import HFVLM, VLMConfig, default_dtype

RANDOM_BANNER = "RANDOM WEIGHTS: wiring smoke run, answers are noise"


class UsageError(Exception):
    """Bad input: one line for the user, exit code 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl+C's KeyboardInterrupt, so every path that
    shuts down on Ctrl+C shuts down on it too; a supervisor that must tell them apart can."""


@dataclass(frozen=True, kw_only=True)
class AssistantOptions:
    """What replay and live share: models, turn-taking, mode and output folder."""

    out: Path | None = None
    models: str = "default"
    vlm: str | None = None
    vlm_url: str | None = None  # --vlm-url URL: answers from this OpenAI-compatible server (off when None)
    asr: str | None = None
    wake: str = "hey glasses"  # "": no wake phrase (push-to-talk, typed questions and their follow-ups only)
    asks: tuple[tuple[float, str], ...] = ()  # typed questions at media seconds (live: seconds after start)
    mode: str = "instant"
    agents: int = 4
    language: str | None = None  # a Whisper code, "auto" to detect, None: not given (see whisper_language)
    translate: bool = False
    silence: float = EndpointConfig.silence
    turn: str = DEFAULT_POLICY  # "smart": Smart Turn judges each pause; "silence": the silence alone (pipelines/hearing.py)
    follow_up: float = 6.0
    max_new_tokens: int = 60
    memory: Path | None = None  # --memory DIR: keep what was seen there (off when None)
    memory_days: float = 7.0  # --memory-days: entries older than this are deleted, at start and hourly
    blur_faces: bool = True  # bystanders' faces blurred in the saved video and photos (--no-blur-faces: off, logged)
    skill: str = ""  # --skill shopping: start in that skill's standing mode
    catalog: Path | None = None  # --catalog FILE: the shop's products (None: the sample catalog that ships)
    extra: dict = field(default_factory=dict)


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
    for noisy in ("transformers", "huggingface_hub", "faster_whisper", "httpx", "httpx2", "openai", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def load_models(choice: ModelChoice, opts: AssistantOptions):
    """The real stages for a model choice (ModelUnavailable when weights cannot be had).

    Both models are located first (a cached snapshot, a folder, or a hub id that can be
    downloaded now), so a missing one costs a second, not the other one's loading time."""
    remote = open_remote(opts) if getattr(opts, "vlm_url", None) else None  # its server first: a line, not a load
    vlm_from, asr_from = (None if remote else locate(VLM, choice.vlm)), locate(ASR, choice.asr)
    threads = max(1, min(4, os.cpu_count() or 1))
    asr_config = ASRConfig(model=asr_from, language=whisper_language(opts.language, opts.translate),
                           task="translate" if opts.translate else "transcribe", cpu_threads=threads)
    whisper = FasterWhisper(asr_config)
    vlm = remote or HFVLM(VLMConfig(model=vlm_from, dtype=default_dtype()))
    whisper.setup()
    if remote is None:
        vlm.setup()
    return ASRStage(whisper, asr_config), vlm


def open_remote(opts: AssistantOptions):
    """The remote VLM for --vlm-url, its server checked once (ModelUnavailable, one line, when it
    cannot answer with the model: --vlm NAME, or the server's only model when NAME is not given)."""
    from pipelines.remote_vlm import RemoteConfig, RemoteVLM

    try:
        vlm = RemoteVLM(RemoteConfig(opts.vlm_url, opts.vlm or ""))
    except ValueError as err:  # not a URL
        raise UsageError(str(err)) from err
    vlm.setup()
    return vlm


def privacy_badge(models: dict, faces_blurred: bool) -> str:
    """The display's privacy badge: "remote" while answers come from a server, "faces blurred"
    while faces are blurred in what is kept, both when both (pure)."""
    from pipelines.private_video import BADGE

    return ", ".join((["remote"] if models.get("remote") else []) + ([BADGE] if faces_blurred else []))


def check_options(opts: AssistantOptions) -> None:
    """What the command line checks, for callers that build options themselves (UsageError)."""
    from pipelines.wake import has_letters

    if opts.wake and not has_letters(opts.wake):  # it would never match: the wearer could not wake the glasses
        raise UsageError(f"wake phrase {opts.wake!r} has no letters: give words, or '' for push-to-talk only")
    if opts.language is not None:
        try:
            check_language(opts.language)
        except ValueError as err:
            raise UsageError(str(err)) from err


def stages(opts: AssistantOptions, asr=None, vlm=None) -> tuple[object, object, dict]:
    """ASR and VLM for the options (injected ones kept: tests pass fakes), and their description."""
    check_options(opts)
    if asr is None or vlm is None:
        try:
            choice = choose(opts.models, opts.vlm, opts.asr)
            real_asr, real_vlm = load_models(choice, opts)
        except ModelUnavailable as err:
            raise UsageError(str(err)) from err
        described = real_vlm.describe() if hasattr(real_vlm, "describe") else {"dtype": real_vlm.config.dtype}
        return asr or real_asr, vlm or real_vlm, {**choice.describe(), **described}
    return asr, vlm, {"vlm": type(vlm).__name__, "asr": type(getattr(asr, "model", asr)).__name__,
                      "random_weights": False, "fake": True, **(vlm.describe() if hasattr(vlm, "describe") else {})}


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
                  max_new_tokens=opts.max_new_tokens, endpoint=EndpointConfig(silence=opts.silence), turn=opts.turn,
                  models=models, skill=opts.skill)
    return SessionConfig(**{**fields, **more, **opts.extra})


def _print_turns(result) -> None:
    """The turn table, and the random-weights note wherever it applies (replay and live)."""
    print(summary_table(result.turns))
    if any(r.get("models", {}).get("random_weights") for r in result.records if r["type"] == "session"):
        print(f"note: {RANDOM_BANNER}")

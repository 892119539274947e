"""Smart-glasses assistant: the entry point.

    python demo.py replay CLIP [--out DIR] [--pace fast|realtime] [--models default|tiny-random]
                              [--vlm ID_OR_DIR] [--asr ID_OR_DIR] [--wake PHRASE|none] [--ask SECONDS:QUESTION]...
                              [--memory DIR [--memory-days N]] [--skill shopping|translate] [--catalog FILE]
                              [--vlm-url URL]
    python demo.py live [--camera SRC] [--mic SRC] [--speaker DEV] [--no-window] [same model options]
    python demo.py sample CLIP.mp4     # write a short clip that asks "hey glasses, what colour is the square?"
    python demo.py memory DIR list | search WORDS... | show ID [--out FILE.jpg] | forget ID | forget --all [--yes]

Exit codes: 0 done, 2 bad input or usage (one line on stderr), 1 internal error, 130 interrupted
(Ctrl+C), 143 terminated (SIGTERM). Argument parsing lives only here; everything else takes frozen
config dataclasses. The program is also installed as `glasses-assistant`; messages name it as invoked.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from core.process import Signals, leave, report_crash, say
from pipelines.modes import MODE_CHOICES
from pipelines.turn_model import DEFAULT_POLICY, POLICIES, SmartTurnConfig
from pipelines.vad import EndpointConfig


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not the usage block) and exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def ask_arg(text: str) -> tuple[float, str]:
    seconds, sep, question = text.partition(":")
    try:
        t = float(seconds)
    except ValueError:
        t = -1.0
    if not sep or t < 0 or t != t or not question.strip():
        raise argparse.ArgumentTypeError(f"--ask wants SECONDS:QUESTION, e.g. 2.5:what is this? (got {text!r})")
    return t, question.strip()


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def agents(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 16:
        raise argparse.ArgumentTypeError(f"--agents wants a whole number from 1 to 16, got {text!r}")
    return value


def wake_arg(text: str) -> str:
    """A wake phrase, or "" for 'none' (push-to-talk and typed questions only)."""
    from pipelines.wake import has_letters

    if text.strip().lower() == "none":
        return ""
    if not has_letters(text):  # it would match nothing ever said: the glasses could not be woken
        raise argparse.ArgumentTypeError(f"the wake phrase needs letters, got {text!r}: give words (e.g. 'hey glasses'), "
                                         "or 'none' for push-to-talk and typed questions only")
    return text.strip()


def language_arg(text: str) -> str:
    from pipelines.asr import check_language

    try:
        return check_language(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_shared_options(p: Parser) -> None:
    """The model, mode, wake-phrase and output options that replay and live share."""
    p.add_argument("--out", type=Path, help="output folder (default: runs/NAME-TIMESTAMP); never overwritten")
    p.add_argument("--models", choices=("default", "tiny-random"), default="default",
                   help="default: real hub models (downloaded on first use); tiny-random: offline wiring smoke run")
    p.add_argument("--vlm", help="vision-language model: hub id or local folder; with --vlm-url, the served model's name")
    p.add_argument("--vlm-url", metavar="URL",
                   help="answer with a model server instead (vLLM, transformers serve, llama-server, Ollama: "
                        "an OpenAI-compatible http://HOST:PORT/v1); frames and questions go there, the display "
                        "shows 'remote'; an API key is read from $GLASSES_VLM_API_KEY (off when not given)")
    p.add_argument("--asr", help="Whisper: size name (tiny, base, ...), hub id or local CTranslate2 folder")
    p.add_argument("--wake", type=wake_arg, default="hey glasses",
                   help="wake phrase in any language, or 'none': only push-to-talk and typed questions "
                        "(and their follow-ups) are answered (default: %(default)s)")
    p.add_argument("--ask", type=ask_arg, action="append", default=[], metavar="SECONDS:QUESTION",
                   help="put a typed question at a time: media seconds in replay, seconds after the start live (repeatable)")
    p.add_argument("--mode", choices=MODE_CHOICES, default="instant", help="answer mode (default: %(default)s)")
    p.add_argument("--agents", type=agents, default=4, metavar="K", help="contemplating: drafts per answer, 1-16 (default: 4)")
    p.add_argument("--language", type=language_arg,
                   help="spoken language (a Whisper code: en, de, zh, ...) or 'auto' to detect "
                        "(default: en; with --translate, detected)")
    p.add_argument("--translate", action="store_true",
                   help="questions asked in another language are translated to English before answering")
    p.add_argument("--silence", type=positive, default=EndpointConfig.silence,
                   help="silence in seconds that ends a question (default: %(default)s, chosen from data)")
    p.add_argument("--turn", choices=POLICIES, default=DEFAULT_POLICY,
                   help="what ends a question: 'smart' asks Smart Turn (a trained end-of-turn model) at each pause, "
                        f"then a finished question ends after {SmartTurnConfig.short:g} s of silence and an unfinished "
                        f"one waits {SmartTurnConfig.long:g} s; 'silence' ends it after --silence alone, as smart does "
                        "when the model is missing (default: %(default)s, chosen from data)")
    p.add_argument("--follow-up", type=positive, default=6.0, help="seconds after an answer without wake phrase")
    p.add_argument("--no-blur-faces", action="store_true",
                   help="keep bystanders' faces unblurred in the saved video and photos (memory thumbnails are "
                        "always blurred); the session record says so")
    p.add_argument("--memory", type=Path, metavar="DIR",
                   help="keep a private memory of what the glasses see in DIR (keyframes described in the background, "
                        "faces blurred; ask 'where did I leave my keys?'); off when not given")
    p.add_argument("--memory-days", type=positive, default=7.0, metavar="N",
                   help="with --memory: delete what is older than N days, at start-up and hourly (default: 7)")
    p.add_argument("--skill", choices=("shopping", "translate"), default="",
                   help="start in a skill's standing mode (as if 'shopping mode' or 'translate what they say' was said)")
    p.add_argument("--catalog", type=Path, metavar="FILE",
                   help="shopping: the products (CSV with code,name,price[,unit,notes], or SQLite); "
                        "default: the small sample catalog that ships")


def build_parser() -> Parser:
    # prog: argparse's default, the name it was invoked by (demo.py, glasses-assistant)
    parser = Parser(description="A smart-glasses assistant you can try on a laptop.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    rp = sub.add_parser("replay", help="run a recorded clip through the assistant")
    rp.add_argument("clip", type=Path, help="video (or audio) file any ffmpeg reads")
    rp.add_argument("--pace", choices=("fast", "realtime"), default="fast",
                    help="fast: as fast as compute allows (default); realtime: 1x, latencies as a wearer feels them")
    add_shared_options(rp)
    rp.add_argument("--no-video", action="store_true", help="skip writing annotated.mp4")

    lp = sub.add_parser("live", help="the laptop's camera, microphone and speaker play the glasses")
    lp.add_argument("--camera", default="0", metavar="SRC",
                    help="device index, stream URL or video file (played in real time); 'none' (default: 0)")
    lp.add_argument("--mic", metavar="SRC",
                    help="input device index or name, an audio file played in real time, or 'none' to type "
                         "questions (default: the default input; without one, typed questions)")
    lp.add_argument("--speaker", metavar="DEV",
                    help="output device index or name, or 'none' (default: the default output; without one, answers as text)")
    lp.add_argument("--no-window", action="store_true", help="run headless: no display window")
    lp.add_argument("--ptt", choices=("toggle", "hold"), default="toggle",
                    help="space bar push-to-talk: toggle (press, speak, press) or hold (default: %(default)s)")
    lp.add_argument("--self-hearing", choices=("aec", "gate", "mute", "off"), default="aec",
                    help="keep the answer's own sound out of the microphone: aec (echo cancellation, for "
                         "speakers: talk over the answer to interrupt), gate (if aec is unavailable or still "
                         "interrupts itself: be louder than the answer to interrupt), mute (only the push-to-talk "
                         "key interrupts), off (headphones) (default: %(default)s)")
    lp.add_argument("--echo-ratio", type=positive, default=1.0,
                    help="gate (and aec's fallback): how loud the speaker's echo may be relative to what is "
                         "played (default: 1.0)")
    add_shared_options(lp)

    sp = sub.add_parser("sample", help="write a sample clip to try replay on")
    sp.add_argument("path", type=Path, help="where to write the .mp4 (an existing file is never replaced)")
    add_memory_parser(sub)
    return parser


def whole(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a whole number of at least {low}, got {text!r}")
        return value
    return parse


def add_memory_parser(sub) -> None:
    """`memory DIR ACTION`: see and manage what a session's --memory DIR keeps (pipelines/memory/cli.py)."""
    mp = sub.add_parser("memory", help="see and manage what --memory DIR keeps: list, search, show, forget",
                        description="See and manage what the glasses keep. Times are local.")
    mp.add_argument("folder", type=Path, metavar="DIR", help="the memory folder given to a session's --memory")
    actions = mp.add_subparsers(dest="action", required=True, parser_class=Parser)
    ml = actions.add_parser("list", help="entries (newest first) and facts")
    ml.add_argument("--limit", type=whole(0), default=50, help="entries shown, 0 for all (default: %(default)s)")
    ms = actions.add_parser("search", help="the entries a question would recall, best first")
    ms.add_argument("words", nargs="+", metavar="WORDS")
    ms.add_argument("--limit", type=whole(1), default=10, help="entries shown (default: %(default)s)")
    mw = actions.add_parser("show", help="one entry in full; writes its thumbnail")
    mw.add_argument("id", type=whole(1), metavar="ID")
    mw.add_argument("--out", type=Path, metavar="FILE.jpg",
                    help="where the thumbnail goes (default: memory-ID.jpg here); an existing file is never replaced")
    mf = actions.add_parser("forget", help="delete an entry, a fact or everything, for real (overwritten)")
    mf.add_argument("id", type=whole(1), nargs="?", metavar="ID", help="the entry to forget")
    mf.add_argument("--fact", type=whole(1), metavar="ID", help="forget this fact instead")
    mf.add_argument("--all", action="store_true",
                    help="everything: entries, thumbnails, facts; asks first in a terminal, needs --yes elsewhere")
    mf.add_argument("--yes", action="store_true", help="with --all: do not ask")


def main(argv: list[str] | None = None) -> int:
    """Run a command; the exit code. Called without `argv` it is the program itself: it then
    leaves with os._exit when threads are still alive, so the exit code is the intended one."""
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # No telemetry: the hub client's user agent would otherwise fetch the hub's list of AI agents (a
    # request of its own) with the first download. Set before huggingface_hub is imported: it reads it then.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    signals = Signals()
    signals.install()
    try:
        code = run(args, parser.prog, signals)
    finally:
        signals.restore()
    if argv is None:
        leave(code)
    return code


def run(args, prog: str, signals: Signals) -> int:
    try:
        if args.command == "memory":
            return memory_command(args, prog)  # before the heavy imports: sqlite3 is all it needs
        if args.command == "live":
            import cv2  # noqa: F401 - before PyAV (pipelines.app), or the window hangs: see glasses/window.py
        from pipelines.app import UsageError  # heavy imports after parsing: --help stays instant
        from pipelines.app.common import Terminated

        signals.terminated = Terminated
        try:
            if args.command == "sample":
                return sample_command(args)
            if args.command == "live":
                code = live_command(args)  # the live supervisor shuts down on an interrupt and returns
                return interrupted(signals) if signals.first is not None else code
            return replay_command(args)
        except UsageError as err:
            say(f"{prog}: error: {err}")
            return 2
    except KeyboardInterrupt:  # Ctrl+C, or SIGTERM as Terminated: the same shutdown, its own line and code
        return interrupted(signals)
    except Exception as err:  # noqa: BLE001 - the last line of defence: one line, details to a file
        return report_crash(err, prog)


def interrupted(signals: Signals) -> int:
    code = signals.code(130)
    say(f"{'terminated' if code == 143 else 'interrupted'}: the session log written so far is kept")
    return code


def memory_command(args, prog: str) -> int:
    from pipelines.memory.cli import MemoryOptions, run_memory

    return run_memory(MemoryOptions(
        folder=args.folder, action=args.action, words=tuple(getattr(args, "words", ())), id=getattr(args, "id", None),
        out=getattr(args, "out", None), fact=getattr(args, "fact", None), all=getattr(args, "all", False),
        yes=getattr(args, "yes", False), limit=getattr(args, "limit", 50), prog=prog))


def sample_command(args) -> int:
    from glasses.sample import make_sample_clip
    from pipelines.app import UsageError

    try:
        print(make_sample_clip(args.path, overwrite=False))
    except FileExistsError as err:
        raise UsageError(f"{args.path} already exists and is kept: give a new path, or delete it first") from err
    except OSError as err:
        raise UsageError(f"cannot write {args.path}: {err.strerror or err}") from err
    return 0


def replay_command(args) -> int:
    from pipelines.app import ReplayOptions, print_summary, replay

    opts = ReplayOptions(
        clip=args.clip, out=args.out, pace=args.pace, models=args.models, vlm=args.vlm, vlm_url=args.vlm_url,
        asr=args.asr, wake=args.wake, asks=tuple(args.ask), mode=args.mode, agents=args.agents,
        language=args.language, translate=args.translate,
        silence=args.silence, turn=args.turn, follow_up=args.follow_up, render=not args.no_video,
        blur_faces=not args.no_blur_faces, memory=args.memory, memory_days=args.memory_days,
        skill=args.skill, catalog=args.catalog,
    )
    result = replay(opts)
    print_summary(result)
    return 0


def live_command(args) -> int:
    from pipelines.app import LiveOptions, live, print_live_summary

    opts = LiveOptions(
        camera=args.camera, mic=args.mic, speaker=args.speaker, window=not args.no_window, out=args.out,
        models=args.models, vlm=args.vlm, vlm_url=args.vlm_url, asr=args.asr, wake=args.wake, asks=tuple(args.ask),
        mode=args.mode,
        agents=args.agents, language=args.language, translate=args.translate,
        silence=args.silence, turn=args.turn, follow_up=args.follow_up, ptt=args.ptt, self_hearing=args.self_hearing,
        echo_ratio=args.echo_ratio, blur_faces=not args.no_blur_faces, memory=args.memory,
        memory_days=args.memory_days, skill=args.skill, catalog=args.catalog,
    )
    result = live(opts)
    print_live_summary(result)
    return result.code


if __name__ == "__main__":
    sys.exit(main())

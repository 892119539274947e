"""Smart-glasses assistant: the entry point.

    python demo.py replay CLIP [--out DIR] [--pace fast|realtime] [--models default|tiny-random]
                              [--vlm ID_OR_DIR] [--asr ID_OR_DIR] [--wake PHRASE] [--ask SECONDS:QUESTION]...
    python demo.py live [--camera SRC] [--mic SRC] [--speaker DEV] [--no-window] [same model options]
    python demo.py sample CLIP.mp4     # write a short clip that asks "hey glasses, what colour is the square?"

Exit codes: 0 done, 2 bad input or usage (one line on stderr), 1 internal error, 130 interrupted.
Argument parsing lives only here; everything else takes frozen config dataclasses.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from pipelines.modes import MODE_CHOICES
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


def add_shared_options(p: Parser) -> None:
    """The model, mode, wake-phrase and output options that replay and live share."""
    p.add_argument("--out", type=Path, help="output folder (default: runs/NAME-TIMESTAMP); never overwritten")
    p.add_argument("--models", choices=("default", "tiny-random"), default="default",
                   help="default: real hub models (downloaded on first use); tiny-random: offline wiring smoke run")
    p.add_argument("--vlm", help="vision-language model: hub id or local folder")
    p.add_argument("--asr", help="Whisper: size name (tiny, base, ...), hub id or local CTranslate2 folder")
    p.add_argument("--wake", default="hey glasses", help="wake phrase (default: %(default)s)")
    p.add_argument("--ask", type=ask_arg, action="append", default=[], metavar="SECONDS:QUESTION",
                   help="put a typed question at a time: media seconds in replay, seconds after the start live (repeatable)")
    p.add_argument("--mode", choices=MODE_CHOICES, default="instant", help="answer mode (default: %(default)s)")
    p.add_argument("--agents", type=agents, default=4, metavar="K", help="contemplating: drafts per answer, 1-16 (default: 4)")
    p.add_argument("--language", default="en", help="spoken language code, or 'auto' to detect (default: en)")
    p.add_argument("--translate", action="store_true", help="translate speech to English before answering")
    p.add_argument("--silence", type=positive, default=EndpointConfig.silence,
                   help="silence in seconds that ends a question (default: %(default)s, chosen from data)")
    p.add_argument("--follow-up", type=positive, default=6.0, help="seconds after an answer without wake phrase")


def build_parser() -> Parser:
    parser = Parser(prog="demo.py", description="A smart-glasses assistant you can try on a laptop.")
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
    lp.add_argument("--self-hearing", choices=("gate", "mute", "off"), default="gate",
                    help="keep the answer's own sound out of the microphone: gate (speak over it to interrupt), "
                         "mute (no barge-in), off (headphones) (default: %(default)s)")
    lp.add_argument("--echo-ratio", type=positive, default=1.0,
                    help="gate: how loud the speaker's echo may be relative to what is played (default: 1.0)")
    add_shared_options(lp)

    sp = sub.add_parser("sample", help="write a sample clip to try replay on")
    sp.add_argument("path", type=Path, help="where to write the .mp4")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.command == "live":
        import cv2  # noqa: F401 - before PyAV (pipelines.app), or the window hangs: see glasses/window.py
    from pipelines.app import UsageError  # heavy imports after parsing: --help stays instant

    try:
        if args.command == "sample":
            from glasses.sample import make_sample_clip

            try:
                print(make_sample_clip(args.path))
            except OSError as err:
                raise UsageError(f"cannot write {args.path}: {err.strerror or err}") from err
            return 0
        if args.command == "live":
            return live_command(args)
        return replay_command(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the session log written so far is kept", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the last line of defence: one line, details to a file
        path = Path(os.environ.get("TMPDIR", "/tmp")) / "glasses-error.log"
        path.write_text(traceback.format_exc())
        print(f"internal error: {type(err).__name__}: {err} (details in {path})", file=sys.stderr)
        return 1


def replay_command(args) -> int:
    from pipelines.app import ReplayOptions, print_summary, replay

    opts = ReplayOptions(
        clip=args.clip, out=args.out, pace=args.pace, models=args.models, vlm=args.vlm, asr=args.asr,
        wake=args.wake, asks=tuple(args.ask), mode=args.mode, agents=args.agents,
        language=None if args.language == "auto" else args.language, translate=args.translate,
        silence=args.silence, follow_up=args.follow_up, render=not args.no_video,
    )
    result = replay(opts)
    print_summary(result)
    return 0



def live_command(args) -> int:
    from pipelines.app import LiveOptions, live, print_live_summary

    opts = LiveOptions(
        camera=args.camera, mic=args.mic, speaker=args.speaker, window=not args.no_window, out=args.out,
        models=args.models, vlm=args.vlm, asr=args.asr, wake=args.wake, asks=tuple(args.ask), mode=args.mode,
        agents=args.agents, language=None if args.language == "auto" else args.language, translate=args.translate,
        silence=args.silence, follow_up=args.follow_up, ptt=args.ptt, self_hearing=args.self_hearing,
        echo_ratio=args.echo_ratio,
    )
    result = live(opts)
    print_live_summary(result)
    return result.code

if __name__ == "__main__":
    sys.exit(main())

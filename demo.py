"""Smart-glasses assistant: the entry point.

    python demo.py replay CLIP [--out DIR] [--pace fast|realtime] [--models default|tiny-random]
                              [--vlm ID_OR_DIR] [--asr ID_OR_DIR] [--wake PHRASE] [--ask SECONDS:QUESTION]...
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

MODES = ("instant",)


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


def build_parser() -> Parser:
    parser = Parser(prog="demo.py", description="A smart-glasses assistant you can try on a laptop.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    rp = sub.add_parser("replay", help="run a recorded clip through the assistant")
    rp.add_argument("clip", type=Path, help="video (or audio) file any ffmpeg reads")
    rp.add_argument("--out", type=Path, help="output folder (default: runs/CLIP-TIMESTAMP); never overwritten")
    rp.add_argument("--pace", choices=("fast", "realtime"), default="fast",
                    help="fast: as fast as compute allows (default); realtime: 1x, latencies as a wearer feels them")
    rp.add_argument("--models", choices=("default", "tiny-random"), default="default",
                    help="default: real hub models (downloaded on first use); tiny-random: offline wiring smoke run")
    rp.add_argument("--vlm", help="vision-language model: hub id or local folder")
    rp.add_argument("--asr", help="Whisper: size name (tiny, base, ...), hub id or local CTranslate2 folder")
    rp.add_argument("--wake", default="hey glasses", help="wake phrase (default: %(default)s)")
    rp.add_argument("--ask", type=ask_arg, action="append", default=[], metavar="SECONDS:QUESTION",
                    help="put a typed question at a media time (repeatable)")
    rp.add_argument("--mode", choices=MODES, default="instant", help="answer mode (default: %(default)s)")
    rp.add_argument("--language", default="en", help="spoken language code, or 'auto' to detect (default: en)")
    rp.add_argument("--translate", action="store_true", help="translate speech to English before answering")
    rp.add_argument("--silence", type=positive, default=0.6, help="silence in seconds that ends a question")
    rp.add_argument("--follow-up", type=positive, default=6.0, help="seconds after an answer without wake phrase")
    rp.add_argument("--no-video", action="store_true", help="skip writing annotated.mp4")

    sp = sub.add_parser("sample", help="write a sample clip to try replay on")
    sp.add_argument("path", type=Path, help="where to write the .mp4")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from pipelines.app import UsageError  # heavy imports after parsing: --help stays instant

    try:
        if args.command == "sample":
            from glasses.sample import make_sample_clip

            try:
                print(make_sample_clip(args.path))
            except OSError as err:
                raise UsageError(f"cannot write {args.path}: {err.strerror or err}") from err
            return 0
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
        wake=args.wake, asks=tuple(args.ask), mode=args.mode,
        language=None if args.language == "auto" else args.language, translate=args.translate,
        silence=args.silence, follow_up=args.follow_up, render=not args.no_video,
    )
    result = replay(opts)
    print_summary(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

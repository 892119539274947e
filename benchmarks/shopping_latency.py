"""Shopping: time from "how much is this?" to the first sound of the answer, with no VLM on the path.

A generated 1280x720 clip shows five products of the sample catalog in turn, their barcodes held
up in a cluttered scene, and the wearer asks "hey glasses, how much is this?" (espeak) at each.
It is replayed through the app as a user runs it (`demo.py replay CLIP --models tiny-random --asr
DIR`): real Silero VAD and Smart Turn, real Whisper base (GLASSES_TEST_WHISPER or --asr) to hear
the wake phrase, the real barcode readers and catalog, the real pyttsx3 voice. The VLM is loaded
(tiny random weights) but a read code never calls it.

    python -m benchmarks.shopping_latency [--asr DIR] [--out DIR]

Per turn: voice to voice (end of speech to the answer's first sample), and its parts: the
endpointing wait, ASR, the skill's time to its first words (reading the code, the catalog) and TTS.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.machine import machine

PRODUCTS = ("5074852605749", "5000831671627", "5079380927523", "5053093185616", "5085982082812")
QUESTION = "hey glasses, how much is this?"
EVERY = 8.0  # seconds between questions; each product is in view for this long


def make_clip(path: Path) -> Path:
    from glasses.sample import make_clip as write
    from glasses.sample_barcodes import linear_label, scene

    shots = [scene(linear_label(code, module_px=3), angle=8.0 * i, seed=i) for i, code in enumerate(PRODUCTS)]
    speech = [(1.5 + EVERY * i, QUESTION) for i in range(len(PRODUCTS))]
    return write(path, duration=EVERY * len(PRODUCTS), size=(1280, 720), fps=15, speech=speech,
                 draw=lambda frame, t: shots[min(int(t // EVERY), len(shots) - 1)])


def figures(turns: list[dict]) -> dict:
    def med(key):
        values = [t["latency"][key] for t in turns if t["latency"].get(key) is not None]
        return round(statistics.median(values), 3) if values else None

    v2v = sorted(t["latency"]["voice_to_voice"] for t in turns if t["latency"].get("voice_to_voice") is not None)
    return {"turns": len(turns), "shopping": sum(t["mode"] == "shopping" for t in turns),
            "read": sum(bool((t.get("shopping") or {}).get("code")) for t in turns),
            "voice_to_voice_p50": round(statistics.median(v2v), 3) if v2v else None,
            "voice_to_voice_max": round(v2v[-1], 3) if v2v else None,
            "vad": med("vad"), "asr": med("asr"), "skill_first_words": med("vlm_first_token"),
            "tts_first_audio": med("tts_first_audio")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.shopping_latency", description=__doc__.splitlines()[0])
    p.add_argument("--asr", default=os.environ.get("GLASSES_TEST_WHISPER"), help="a Whisper CTranslate2 folder")
    p.add_argument("--turn", choices=("smart", "silence"), default="smart", help="what ends a question (as demo.py)")
    p.add_argument("--out", type=Path, default=Path("runs") / f"shopping_latency-{dt.datetime.now():%Y%m%d-%H%M%S}")
    args = p.parse_args(argv)
    if not args.asr:
        print("give --asr DIR (real Whisper base: ../shared/models/whisper-base.sh DIR) or set GLASSES_TEST_WHISPER",
              file=sys.stderr)
        return 2
    from pipelines.app import ReplayOptions, replay

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "shop.mp4")
        result = replay(ReplayOptions(clip, out=args.out, models="tiny-random", asr=args.asr, render=False,
                                      progress=False, turn=args.turn))
    got = figures(result.turns)
    report = {"command": "python -m benchmarks.shopping_latency " + " ".join(argv or sys.argv[1:]),
              "machine": machine(), "date": dt.date.today().isoformat(), **got,
              "answers": [t["answer"] for t in result.turns]}
    (args.out / "shopping_latency.json").write_text(json.dumps(report, indent=1))
    print(f"| turns | shopping | code read | v2v p50 | v2v max | endpointing | ASR | skill's first words | TTS |\n"
          f"|---|---|---|---|---|---|---|---|---|\n"
          f"| {got['turns']} | {got['shopping']} | {got['read']} | {got['voice_to_voice_p50']} s | "
          f"{got['voice_to_voice_max']} s | {got['vad']} s | {got['asr']} s | {got['skill_first_words']} s | "
          f"{got['tts_first_audio']} s |")
    for answer in report["answers"]:
        print(" -", answer)
    print(f"{report['machine']}, {report['date']}; details in {args.out / 'shopping_latency.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

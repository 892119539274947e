"""Where the keyframe thresholds come from: novelty and sharpness on the shared media.

    python -m benchmarks.keyframe_thresholds [--out DIR]

With the app's own functions (pipelines/memory/keyframes.py), on ../shared/media:
- novelty (`difference`) between views of one place: the handheld creek and the flower
  timelapse 0.5 and 1 s apart; every still image moved as a wearer's head moves it (shift,
  roll, zoom); a thing put down covering 3, 8 or 15 % of the view;
- novelty between different places: every pair of still images, the clips' middle frames;
- sharpness of a steady frame over the sharpest frame of the second before it, on every clip,
  against the same ratio for stills and clip frames blurred (Gaussian, and sideways smears as a
  turning head makes).
A novelty threshold must lie above the first group and below the second; the relative
sharpness threshold below the steady ratios and above the blurred ones.
"""
from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from benchmarks.faces import MEDIA, machine, read_rgb
from pipelines.memory.keyframes import KeyframeConfig, difference, sharpness, signature


def fit(image: np.ndarray, side: int = 640) -> np.ndarray:
    scale = min(1.0, side / max(image.shape[:2]))
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image


def clip(path: Path) -> list[tuple[float, np.ndarray]]:
    import av

    with av.open(str(path)) as c:
        return [(float(f.time), fit(f.to_ndarray(format="rgb24"))) for f in c.decode(c.streams.video[0])]


def moved(image: np.ndarray, shift: float, angle: float, zoom: float) -> np.ndarray:
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, zoom)
    m[:, 2] += (shift * w, shift * h / 2)
    return cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def put_down(image: np.ndarray, share: float) -> np.ndarray:
    out, (h, w) = image.copy(), image.shape[:2]
    out[h // 2:h // 2 + int(h * share ** 0.5), w // 3:w // 3 + int(w * share ** 0.5)] = (200, 30, 30)
    return out


def smear(image: np.ndarray, length: int) -> np.ndarray:
    return cv2.filter2D(image, -1, np.full((1, length), 1 / length, np.float32))


def spread(values) -> dict:
    v = np.asarray(list(values), float)
    return {"n": int(v.size), "min": round(float(v.min()), 3), "p10": round(float(np.percentile(v, 10)), 3),
            "p50": round(float(np.median(v)), 3), "p90": round(float(np.percentile(v, 90)), 3),
            "max": round(float(v.max()), 3)}


def novelty_rows(clips: dict, stills: list) -> dict:
    d = lambda a, b: difference(signature(a), signature(b))  # noqa: E731
    rows = {}
    for lag in (0.5, 1.0):
        values = []
        for name in ("mdn_stream_of_water_handheld.mp4", "mdn_flower_silent_audio.mp4"):
            frames = clips[name]
            times = [t for t, _ in frames]
            for t, image in frames[::3]:
                j = int(np.searchsorted(times, t + lag))
                if j < len(frames):
                    values.append(d(image, frames[j][1]))
        rows[f"same place: handheld creek and flower, {lag} s apart"] = spread(values)
    for shift, angle, zoom in ((0.03, 1.0, 1.0), (0.05, 2.0, 1.03), (0.08, 3.0, 1.05)):
        rows[f"same place: head moved {shift:.0%}, {angle:.0f} deg, zoom {zoom}"] = spread(
            d(s, moved(s, shift, angle, zoom)) for s in stills)
    for share in (0.03, 0.08, 0.15):
        rows[f"a thing put down, {share:.0%} of the view"] = spread(d(s, put_down(s, share)) for s in stills)
    rows["different places: pairs of stills"] = spread(d(a, b) for a, b in itertools.combinations(stills, 2))
    middles = [frames[len(frames) // 2][1] for frames in clips.values()]
    rows["different places: the clips' middle frames"] = spread(d(a, b) for a, b in itertools.combinations(middles, 2))
    return rows


def sharpness_rows(clips: dict, stills: list) -> dict:
    rows = {}
    for name, frames in clips.items():
        values = [(t, sharpness(image)) for t, image in frames]
        ratios = []
        for k, (t, s) in enumerate(values):
            before = [v for tt, v in values[:k] if t - 1.0 <= tt < t]
            if before:
                ratios.append(s / max(before))
        rows[f"steady: {name}, frame / sharpest of the second before"] = spread(ratios)
    samples = stills + [frames[i][1] for frames in clips.values() for i in range(0, len(frames), max(1, len(frames) // 6))]
    for label, blur in (("Gaussian sigma 1", lambda i: cv2.GaussianBlur(i, (0, 0), 1.0)),
                        ("Gaussian sigma 1.5", lambda i: cv2.GaussianBlur(i, (0, 0), 1.5)),
                        ("smeared 9 px", lambda i: smear(i, 9)), ("smeared 15 px", lambda i: smear(i, 15))):
        rows[f"blurred: {label}, over the sharp original"] = spread(sharpness(blur(s)) / sharpness(s) for s in samples)
    rows["absolute sharpness of the clip frames"] = spread(sharpness(i) for frames in clips.values() for _, i in frames)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not MEDIA.is_dir():
        print(f"no shared media at {MEDIA}: nothing to measure", file=sys.stderr)
        return 2
    clips = {p.name: clip(p) for p in sorted((MEDIA / "video").glob("*.mp4"))}
    stills = [fit(read_rgb(p)) for p in sorted((MEDIA / "images").glob("*/*")) if p.suffix in (".png", ".jpg", ".tif")]
    config = KeyframeConfig()
    report = {"command": "python -m benchmarks.keyframe_thresholds " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine(), "date": dt.date.today().isoformat(), "clips": len(clips), "stills": len(stills),
              "chosen": {"novelty": config.novelty, "relative_sharpness": config.relative_sharpness,
                         "min_sharpness": config.min_sharpness},
              "novelty": novelty_rows(clips, stills), "sharpness": sharpness_rows(clips, stills)}
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-keyframes-"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "keyframe_thresholds.json").write_text(json.dumps(report, indent=2))
    for part in ("novelty", "sharpness"):
        print(f"\n| {part} | n | min | p10 | p50 | p90 | max |\n|---|---:|---:|---:|---:|---:|---:|")
        for label, r in report[part].items():
            print(f"| {label} | {r['n']} | {r['min']} | {r['p10']} | {r['p50']} | {r['p90']} | {r['max']} |")
    print(f"\nchosen: {report['chosen']}\nwritten: {out / 'keyframe_thresholds.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

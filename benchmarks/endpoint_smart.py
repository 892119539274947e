"""The smart policy on the endpointing data: Smart Turn judges each pause.

It runs through the session's own `Hearing` (pipelines/hearing.py), fed the clip's Silero
probabilities and audio window by window, so what is measured is what ships: the model is
asked once a pause has lasted the short silence, about the utterance so far, and its
verdict sets the silence that pause needs. The points of the grid mostly hear the same
pieces of audio, so each distinct piece is scored once (`Memo`).
"""
from __future__ import annotations

import itertools
import time

import numpy as np

from core.messages import SAMPLE_RATE

GRID = {"threshold": (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99), "short": (0.1, 0.2, 0.3), "long": (1.0, 1.2, 1.5, 2.0)}


class Replay:
    """A VAD that hands back a clip's precomputed probabilities, one per 512-sample window."""

    def __init__(self, probs):
        self._probs, self._i = probs, 0

    def __call__(self, samples: np.ndarray) -> list[float]:
        n = len(samples) // 512
        out, self._i = self._probs[self._i:self._i + n], self._i + n
        return list(out)


class Memo:
    """The turn model, each distinct piece of audio scored once; counts calls and their time."""

    def __init__(self, model, keep: int = 20):
        self.model, self._seen, self.times, self._kept, self._keep = model, {}, [], [], keep

    def __call__(self, audio: np.ndarray) -> float:
        key = (len(audio), hash(audio.tobytes()))
        if key not in self._seen:
            t0 = time.perf_counter()
            self._seen[key] = self.model(audio)
            self.times.append(time.perf_counter() - t0)
            if len(self._kept) < self._keep:
                self._kept.append(audio.copy())
        return self._seen[key]

    def seen_audio(self) -> list[np.ndarray]:
        """The first pieces of audio the model heard (real pauses, to time it on)."""
        return self._kept


def smart_ends(clip, probs, model, point) -> list[tuple[float, float]]:
    """(end of speech, decided at) for every end Hearing declares with this operating point.

    As for the silence policy, the 20 s cap is lifted and the end of the file ends nothing."""
    from core.clock import MediaClock
    from core.messages import AudioChunk, Utterance
    from pipelines.hearing import Hearing, HearingConfig
    from pipelines.vad import WINDOW, EndpointConfig

    config = HearingConfig(EndpointConfig(max_utterance=float("inf")), early_asr=False, turn="smart", smart=point)
    hearing = Hearing(config, Replay(probs), MediaClock(), model)
    ends = []
    for i in range(len(probs)):
        chunk = AudioChunk(i * WINDOW / SAMPLE_RATE, clip.audio[i * WINDOW:(i + 1) * WINDOW])
        ends += [(m.end, m.detected_at) for m in hearing.feed(chunk) if isinstance(m, Utterance)]
    return ends


def sweep_smart(data, model, grid=GRID) -> list[dict]:
    """One row per operating point (threshold, short, long) over every clip."""
    from benchmarks.endpoint import score
    from pipelines.turn_model import SmartTurnConfig

    rows = []
    for threshold, short, long in itertools.product(grid["threshold"], grid["short"], grid["long"]):
        point = SmartTurnConfig(threshold, short, long)
        rows.append({"threshold": threshold, "short": short, "long": long,
                     **score(data, lambda clip, probs: smart_ends(clip, probs, model, point))})
    return rows


def front(rows: list[dict]) -> list[dict]:
    """The points no other point beats on both counts (fewer utterances cut, shorter mean wait)."""
    def beaten(r):
        return any(o["cut_utterances"] <= r["cut_utterances"] and o["mean_wait"] <= r["mean_wait"]
                   and (o["cut_utterances"], o["mean_wait"]) != (r["cut_utterances"], r["mean_wait"]) for o in rows)
    unbeaten = {}  # points that tie on both counts are one: the lowest threshold and silences stand for them
    for r in sorted(rows, key=lambda r: (r["threshold"], r["short"], r["long"])):
        if not beaten(r):
            unbeaten.setdefault((r["cut_utterances"], round(r["mean_wait"], 9)), r)
    return sorted(unbeaten.values(), key=lambda r: r["mean_wait"])


def _stricter(rows: list[dict], r: dict) -> list[dict]:
    """The points with r's silences and a higher threshold, lowest first."""
    same = [o for o in rows if (o["short"], o["long"]) == (r["short"], r["long"]) and o["threshold"] > r["threshold"]]
    return sorted(same, key=lambda o: o["threshold"])


def knee(rows: list[dict], baseline: dict) -> dict | None:
    """The point with the shortest mean wait among those that cut fewer utterances than the
    baseline (the silence alone) and keep doing so at every higher threshold with the same
    silences (a lucky dip is not a knee)."""
    def ok(r):
        return r["cut_utterances"] < baseline["cut_utterances"]
    good = [r for r in rows if ok(r) and all(ok(o) for o in _stricter(rows, r))]
    return min(good, key=lambda r: (r["mean_wait"], r["cut_utterances"])) if good else None


def choose(rows: list[dict], baseline: dict) -> dict | None:
    """The knee, one threshold step stricter, as long as it still waits less than the baseline:
    the hesitations measured are few and made (benchmarks/endpoint_hesitation.py), so the
    knee itself would sit at the edge of what they show."""
    k = knee(rows, baseline)
    if k is None:
        return None
    step = _stricter(rows, k)[:1]
    return step[0] if step and step[0]["mean_wait"] < baseline["mean_wait"] else k


def better(point: dict | None, baseline: dict | None) -> bool:
    """Whether a point cuts fewer utterances than the baseline at a shorter mean wait."""
    return bool(point and baseline and point["cut_utterances"] < baseline["cut_utterances"]
                and point["mean_wait"] < baseline["mean_wait"])


def run(data, baseline: dict | None) -> dict | None:
    """The whole smart side of the benchmark, or None after one line saying why it cannot run."""
    from pipelines.turn_model import load_smart_turn

    model = load_smart_turn()
    if model is None or baseline is None:
        print("smart policy skipped: " + ("the Smart Turn model is unavailable (the warning above says why)"
                                          if model is None else "no silence baseline"))
        return None
    memo = Memo(model)
    rows = sweep_smart(data, memo)
    k, chosen = knee(rows, baseline), choose(rows, baseline)
    pauses = memo.seen_audio()
    return {"grid": GRID, "rows": rows, "front": front(rows), "knee": k, "chosen": chosen,
            "better": better(chosen, baseline), "distinct_calls": len(memo.times),
            "cost": cost(model.path, pauses), "load": _load()}


def cost(model_path: str | None, audios: list[np.ndarray], threads=(1, 2), repeat: int = 3) -> dict:
    """Milliseconds per call (features and inference) on real pauses, per thread count: wall
    time (best of `repeat`), and with 1 thread the calling thread's CPU time too, which other
    processes on the shared cores disturb far less than the wall time."""
    from pipelines.turn_model import SmartTurn

    out = {}
    for n in threads:
        model = SmartTurn(model_path, threads=n)
        model(audios[0])  # the first call sets onnxruntime up
        walls, cpus = [], []
        for audio in audios:
            runs = [_timed(model, audio) for _ in range(repeat)]
            walls.append(min(w for w, _ in runs))
            cpus.append(min(c for _, c in runs))
        feats = min(_timed(model.features, audios[0])[0] for _ in range(repeat))
        out[n] = {"p50_ms": 1000 * float(np.median(walls)), "max_ms": 1000 * max(walls), "features_ms": 1000 * feats,
                  "cpu_p50_ms": 1000 * float(np.median(cpus)) if n == 1 else None, "calls": len(audios)}
    return out


def _timed(fn, audio) -> tuple[float, float]:
    """(wall, this thread's CPU) seconds of one call."""
    w0, c0 = time.perf_counter(), time.thread_time()
    fn(audio)
    return time.perf_counter() - w0, time.thread_time() - c0


def _load() -> float | None:
    """The 1-minute load average when the timing ran: other processes share these cores."""
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except (OSError, ValueError, IndexError):
        return None

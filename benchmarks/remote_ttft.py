"""Time to first token, remote against local, on the same machine and model.

    python -m benchmarks.remote_ttft [--size smolvlm-256m|tiny] [--runs 5] [--threads 2]

The same random-weight model (SmolVLM-256M's real size by default, built once, see
benchmarks/latency_models.py) answers the same request, a 512 px frame with the app's system
prompt, twice over: in this process through HFVLM, and through `transformers serve` on
127.0.0.1 through RemoteVLM (JPEG, HTTP, server-sent events). Both get the same CPU threads
and dtype, and the server runs with image splitting off, as HFVLM does; the two are measured
in turn, never at once. Remote pays for the JPEG, the request, the server's own image
decoding and preprocessing, and it has no speculative vision (nothing prepared). Printed:
a markdown table of the median and best time to first token and the decode rate.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from core.messages import VLMRequest

NO_SPLITTING = ["--chat-template-kwargs", '{"do_image_splitting": false}']
QUESTION = "What is in front of me?"


def bench_model_dir(size: str) -> Path:
    """The random-weight VLM folder: "tiny" (tests' model) or "smolvlm-256m" (the latency benchmark's)."""
    if size == "tiny":
        from pipelines.tiny import ensure_tiny_models

        return ensure_tiny_models()[0]
    from benchmarks.latency_models import bench_models
    from benchmarks.latency_run import BenchOptions

    return bench_models(BenchOptions())[0]


def frame(side: int = 512, seed: int = 0) -> np.ndarray:
    """A camera-like RGB frame: smooth shapes, so its JPEG has a realistic size (noise would not)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side] / side
    image = np.stack([np.sin(6 * x + rng.uniform(0, 6)), np.cos(5 * y + rng.uniform(0, 6)), x * y], -1)
    return ((image - image.min()) / np.ptp(image) * 255).astype(np.uint8)


def timed(vlm, request: VLMRequest, tokens: int) -> tuple[float, float]:
    """(seconds to the first piece, pieces per second after it) for one streamed answer, cut after
    `tokens` pieces (cancelled: the rest would only measure decoding again)."""
    cancel = threading.Event()
    t0 = time.perf_counter()
    first = None
    n = 0
    for _ in vlm.stream(request, cancel):
        n += 1
        first = time.perf_counter() - t0 if first is None else first
        if n >= tokens:
            cancel.set()
    end = time.perf_counter() - t0
    if first is None:
        return end, 0.0
    return first, (n - 1) / (end - first) if n > 1 and end > first else 0.0


def run(size: str, runs: int, threads: int, dtype: str | None, tokens: int) -> dict:
    from pipelines.remote_server import LocalServer
    from pipelines.remote_vlm import RemoteConfig, RemoteVLM, jpeg_data_url
    from pipelines.vlm import SYSTEM_PROMPT, HFVLM, VLMConfig, default_dtype

    dtype = dtype or default_dtype()
    model_dir = bench_model_dir(size)
    request = VLMRequest(QUESTION, frame(), (), SYSTEM_PROMPT, tokens + 8)
    t0 = time.perf_counter()
    jpeg = [len(jpeg_data_url(request.image)) for _ in range(5)]
    encode = (time.perf_counter() - t0) / 5
    results: dict = {"size": size, "dtype": dtype, "threads": threads, "jpeg_kb": jpeg[0] * 3 / 4 / 1024,
                     "jpeg_encode_s": encode}
    with tempfile.TemporaryDirectory(prefix="remote-ttft-") as tmp:
        server = LocalServer(model_dir, extra_args=[*NO_SPLITTING, "--dtype", dtype], log=Path(tmp) / "server.log",
                             threads=threads)
        results["server_ready_s"] = server.start()
        try:
            remote = RemoteVLM(RemoteConfig(server.url, server.model, timeout=120.0))
            remote.setup()
            local = HFVLM(VLMConfig(model=str(model_dir), dtype=dtype, threads=threads))
            local.setup()
            samples: dict[str, list[tuple[float, float]]] = {"local": [], "remote": []}
            for i in range(runs + 1):  # the first of each is a warm-up, not counted
                for name, vlm in (("local", local), ("remote", remote)):
                    sample = timed(vlm, request, tokens)
                    if i:
                        samples[name].append(sample)
        finally:
            server.stop()
    for name, got in samples.items():
        ttft = [s[0] for s in got]
        results[name] = {"ttft_median_s": statistics.median(ttft), "ttft_best_s": min(ttft),
                         "decode_tokens_per_s": statistics.median(s[1] for s in got), "runs": len(got)}
    return results


def table(r: dict) -> str:
    lines = [f"Time to first token, {r['size']} ({r['dtype']}, {r['threads']} threads), one 512 px frame, "
             f"JPEG {r['jpeg_kb']:.0f} KB encoded in {r['jpeg_encode_s'] * 1000:.0f} ms:", "",
             "| answerer | first token, median | best | decode tokens/s | runs |", "|---|---|---|---|---|"]
    for name in ("local", "remote"):
        m = r[name]
        lines.append(f"| {name} | {m['ttft_median_s']:.3f} s | {m['ttft_best_s']:.3f} s | "
                     f"{m['decode_tokens_per_s']:.1f} | {m['runs']} |")
    lines.append(f"\nremote - local (medians): {r['remote']['ttft_median_s'] - r['local']['ttft_median_s']:+.3f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=("smolvlm-256m", "tiny"), default="smolvlm-256m")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", choices=("float32", "bfloat16"),
                   help="default: the app's (bfloat16 where the CPU is fast at it)")
    p.add_argument("--tokens", type=int, default=12, help="pieces streamed before the answer is cut")
    args = p.parse_args(argv)
    print(table(run(args.size, max(1, args.runs), args.threads, args.dtype, max(2, args.tokens))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

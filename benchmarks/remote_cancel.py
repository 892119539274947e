"""The cost of a cancelled request: seconds until the server stops generating.

    python -m benchmarks.remote_cancel [--size smolvlm-256m|tiny] [--runs 5] [--threads 2]

`transformers serve` runs on 127.0.0.1 with a random-weight model; RemoteVLM streams a long
answer and the cancel event is set (a barge-in). The server's CPU time is sampled every 10 ms
(psutil), and "stopped" is the end of the last 10 ms in which it used more than a fifth of a
core. Two moments are measured:

- while decoding (after a few pieces): the server stops at its next token;
- during the prefill (0.1 s after the request, before any token): a forward pass cannot be
  left half-way, so the server stops when the prefill ends, at the first token.

Printed: for each, the median and worst seconds from the cancel to the client's stream ending
and to the server stopping.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from core.messages import VLMRequest

SAMPLE_S = 0.01
BUSY = 0.2  # of a core: above this the server is computing (idle uvicorn uses ~0)


class CPUWatch:
    """Samples a process's CPU time every SAMPLE_S seconds in a thread: (end time, cores used)."""

    def __init__(self, pid: int):
        import psutil

        self.proc = psutil.Process(pid)
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-watch", daemon=True)
        self._thread.start()

    def _cpu(self) -> float:
        t = self.proc.cpu_times()
        return t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)

    def _run(self) -> None:
        last, t_last = self._cpu(), time.perf_counter()
        while not self._stop.wait(SAMPLE_S):
            now, t = self._cpu(), time.perf_counter()
            self.samples.append((t, (now - last) / max(t - t_last, 1e-6)))
            last, t_last = now, t

    def stopped_after(self, t0: float) -> float:
        """Seconds from t0 to the end of the last busy sample after it (0 when none was busy)."""
        busy = [t for t, cores in self.samples if t > t0 and cores > BUSY]
        return max(busy) - t0 if busy else 0.0

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def cancelled_once(vlm, server_pid: int, when: str, after_pieces: int = 3, settle: float = 1.5) -> tuple[float, float]:
    """(seconds from cancel to the stream's end, seconds from cancel to the server idle)."""
    from pipelines.vlm import SYSTEM_PROMPT

    from benchmarks.remote_ttft import frame

    watch = CPUWatch(server_pid)
    cancel = threading.Event()
    request = VLMRequest("Describe everything you see, in detail.", frame(), (), SYSTEM_PROMPT, 2000)
    marks: dict[str, float] = {}

    def cancel_now() -> None:
        marks["cancel"] = time.perf_counter()
        cancel.set()

    if when == "prefill":
        timer = threading.Timer(0.1, cancel_now)
        timer.start()
    pieces = 0
    for _ in vlm.stream(request, cancel):
        pieces += 1
        if when == "decode" and pieces == after_pieces:
            cancel_now()
    ended = time.perf_counter()
    time.sleep(settle)  # long enough for a server that goes on to show it
    watch.close()
    t_cancel = marks.get("cancel", ended)
    return ended - t_cancel, watch.stopped_after(t_cancel)


def run(size: str, runs: int, threads: int) -> dict:
    from benchmarks.remote_ttft import NO_SPLITTING, bench_model_dir
    from pipelines.remote_server import LocalServer
    from pipelines.remote_vlm import RemoteConfig, RemoteVLM

    results: dict = {"size": size, "threads": threads}
    with tempfile.TemporaryDirectory(prefix="remote-cancel-") as tmp:
        with LocalServer(bench_model_dir(size), extra_args=[*NO_SPLITTING, "--dtype", "float32"],
                         log=Path(tmp) / "server.log", threads=threads) as server:
            vlm = RemoteVLM(RemoteConfig(server.url, server.model, timeout=120.0))
            vlm.setup()
            cancelled_once(vlm, server.proc.pid, "decode", settle=0.5)  # warm-up
            for when in ("decode", "prefill"):
                got = [cancelled_once(vlm, server.proc.pid, when) for _ in range(runs)]
                results[when] = {"client_median_s": statistics.median(g[0] for g in got),
                                 "client_worst_s": max(g[0] for g in got),
                                 "server_median_s": statistics.median(g[1] for g in got),
                                 "server_worst_s": max(g[1] for g in got), "runs": runs}
    return results


def table(r: dict) -> str:
    lines = [f"Cancelled requests, {r['size']} on transformers serve (float32, {r['threads']} threads):", "",
             "| cancelled | stream ends, median | worst | server stops, median | worst | runs |",
             "|---|---|---|---|---|---|"]
    for when in ("decode", "prefill"):
        m = r[when]
        lines.append(f"| {when} | {m['client_median_s']:.3f} s | {m['client_worst_s']:.3f} s | "
                     f"{m['server_median_s']:.3f} s | {m['server_worst_s']:.3f} s | {m['runs']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=("smolvlm-256m", "tiny"), default="smolvlm-256m")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    print(table(run(args.size, max(1, args.runs), args.threads)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

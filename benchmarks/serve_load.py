"""Many wearers on one server: `python -m benchmarks.serve_load [--quick] [--out DIR]`.

One `transformers serve` on 127.0.0.1 answers N simulated wearers at once (N = 1, 2, 4, 8).
Each wearer is a real client session in its own process: the app's own command line,
`demo.py replay CLIP --pace realtime --vlm-url URL --vlm NAME --ask T:Q ...` on a generated
silent clip, with the tiny random Whisper so that the client costs little. Questions are typed,
about one every `--period` s per wearer, staggered: the load grows with N and nothing else.

The server holds a SmolVLM-256M-sized Idefics3 with random weights (the latency benchmark's
recipe and cache), bf16 where the CPU has it, told through `--chat-template-kwargs` to process
images as the app does locally (one tile: 64 image tokens; its default splits a 512 px frame
into 13 tiles, 832 tokens). `--continuous-batching` is passed, but transformers 5.23 applies it
to text-only models alone: for Idefics3 it falls back to one request at a time (the report
says what happened, from the server's log).

Per N: voice to voice p50/p95 and time to first token (each wearer's session.jsonl), answers
per minute (all wearers, over the clip), the CPU of the server's process tree, of the wearers
and of everything else (psutil, every 0.5 s), and one answer's tokens (the server's `usage`,
from a probe). On 2 cores the server and the wearers share the cores: their shares are shown.
The server and every wearer run in their own process groups and are stopped on the way out,
on an error, on Ctrl+C and on SIGTERM.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.serve_load_report import (batching_used, grep_line, history_of, last_line, machine, markdown, notes,
                                          read_records, schedule, server_args, server_line, summarize, table, versions,
                                          wearers_line)

REPO = Path(__file__).resolve().parents[1]
WEARERS = (1, 2, 4, 8)
READY_TIMEOUT = 240.0  # s: N clients importing torch together on 2 cores
DRAIN = 90.0  # s after the clip for the last answers (a queued request may wait up to the client's 30 s timeout)


class BenchError(Exception):
    """The benchmark cannot go on; str() is one line."""


# --- the wearers' side -----------------------------------------------------------------------
def client(argv: list[str]) -> int:
    """One wearer (`python -m benchmarks.serve_load client READY_FILE DEMO_ARGS...`): the heavy
    imports first, then READY_FILE, then wait for "go" on stdin, then the real command line.
    So N wearers begin their clips together instead of one import time apart."""
    ready, args = Path(argv[0]), argv[1:]
    import demo  # noqa: F401 - the imports a replay needs, done before the start line
    import pipelines.app  # noqa: F401
    import pipelines.app.replay  # noqa: F401
    import pipelines.remote_vlm  # noqa: F401
    from core.process import leave

    sys.argv[0] = "demo.py"  # its messages name the program as invoked
    ready.touch()
    if sys.stdin.readline().strip() != "go":
        return 130
    code = demo.main(args)
    leave(code)  # a thread still alive would otherwise make the exit code lie
    return code


def make_clip(path: Path, duration: float) -> Path:
    """A silent 640x360 clip at 10 fps (the default scene: a red square, a moving ball)."""
    from glasses.sample import make_clip as write

    return write(path, duration=duration, size=(640, 360), fps=10.0, audio_rate=16000, audio_channels=1)


def client_command(ready: Path, clip: Path, out: Path, url: str, model: str, asks) -> list[str]:
    args = ["replay", str(clip), "--pace", "realtime", "--models", "tiny-random", "--vlm-url", url,
            "--vlm", model, "--no-video", "--out", str(out)]
    for t, q in asks:
        args += ["--ask", f"{t:g}:{q}"]
    return [sys.executable, "-m", "benchmarks.serve_load", "client", str(ready), *args]


def run_wearers(n: int, asks: list, clip: Path, url: str, model: str, out: Path, server_pid: int,
                duration: float) -> tuple[list[list[dict]], dict, list[int]]:
    """Start n wearers, let them go together, wait for them (stopping them all on the way out);
    their records, the CPU figures of the window and their exit codes."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_DISABLE_TELEMETRY": "1"}
    procs, monitor = [], None
    try:
        for i, plan in enumerate(asks):
            ready = out / f"wearer{i}.ready"
            with open(out / f"wearer{i}.log", "wb") as log:
                procs.append(subprocess.Popen(client_command(ready, clip, out / f"wearer{i}", url, model, plan),
                                              cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True))
        _wait_ready(procs, [out / f"wearer{i}.ready" for i in range(n)], out)
        monitor = CPUMonitor(server_pid, [p.pid for p in procs]).start()
        for p in procs:
            try:
                p.stdin.write(b"go\n")
                p.stdin.close()
            except BrokenPipeError:  # it died after it was ready: its exit code says so
                pass
        deadline = time.monotonic() + duration + DRAIN
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.25)
    finally:
        cpu = monitor.stop() if monitor else {}
        for p in procs:
            stop_group(p)
    codes = [p.returncode for p in procs]
    sessions = [read_records(out / f"wearer{i}" / "session.jsonl") for i in range(n)]
    return sessions, cpu, codes


def _wait_ready(procs, files: list[Path], out: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not all(f.exists() for f in files):
        for i, p in enumerate(procs):
            if p.poll() is not None:
                raise BenchError(f"wearer {i} exited with code {p.returncode} before it started: "
                                 f"{last_line(out / f'wearer{i}.log')}")
        if time.monotonic() > deadline:
            raise BenchError(f"the wearers were not ready after {READY_TIMEOUT:g} s (see {out}/wearer*.log)")
        time.sleep(0.2)


# --- CPU ---------------------------------------------------------------------------------------
class CPUMonitor:
    """CPU seconds (user + system) of the server's process tree, of the wearers' trees and of the
    whole machine, sampled every `period` s by a thread. A process that has exited counts with
    its last sample (at most `period` s of its CPU is missed)."""

    def __init__(self, server_pid: int, client_pids: list[int], period: float = 0.5):
        import threading

        self.roots = {"server": [server_pid], "clients": list(client_pids)}
        self.seen: dict[str, dict[int, float]] = {"server": {}, "clients": {}}
        self.period, self.peak = period, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-monitor", daemon=True)

    def _sample(self) -> tuple[float, float]:
        """Update `seen`; (machine busy CPU seconds, this process's CPU seconds)."""
        import psutil

        for group, roots in self.roots.items():
            for root in roots:
                try:
                    top = psutil.Process(root)
                    procs = [top, *top.children(recursive=True)]
                except psutil.Error:
                    continue
                for proc in procs:
                    try:
                        t = proc.cpu_times()
                        self.seen[group][proc.pid] = t.user + t.system
                    except psutil.Error:
                        pass
        m, me = psutil.cpu_times(), psutil.Process().cpu_times()
        return sum(m) - m.idle - getattr(m, "iowait", 0.0), me.user + me.system

    def start(self) -> "CPUMonitor":
        self.machine0, self.me0 = self._sample()
        self.base = {g: dict(v) for g, v in self.seen.items()}
        self.t0 = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        last, t_last = sum(self.seen["server"].values()), time.monotonic()
        while not self._stop.wait(self.period):
            self._sample()
            now, t = sum(self.seen["server"].values()), time.monotonic()
            self.peak = max(self.peak, (now - last) / max(t - t_last, 1e-6))
            last, t_last = now, t

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        machine, me = self._sample()
        wall = max(time.monotonic() - self.t0, 1e-6)
        used = {g: sum(v - self.base[g].get(pid, 0.0) for pid, v in self.seen[g].items()) for g in self.seen}
        cores = os.cpu_count() or 1
        others = (machine - self.machine0) - used["server"] - used["clients"] - (me - self.me0)
        return {"window_s": round(wall, 1), "server_cores": round(used["server"] / wall, 2),
                "server_pct": round(100 * used["server"] / wall / cores, 1), "server_peak_cores": round(self.peak, 2),
                "clients_cores": round(used["clients"] / wall, 2), "others_cores": round(max(others, 0.0) / wall, 2),
                "machine_cores": round((machine - self.machine0) / wall, 2)}


def stop_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM to a process group (the app writes its log and exits 143), SIGKILL after `grace` s."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            pass


# --- the server's side -----------------------------------------------------------------------
def server_model(size: str) -> Path:
    """The random-weight model folder, built once in the latency benchmark's cache (same recipe:
    pipelines.tiny at the real size, its BPE taught the prompt's words)."""
    import hashlib

    from benchmarks.latency_models import CACHE_VERSION, _corpus, bench_corpus
    from pipelines.tiny import _default_cache, _ensure, build_vlm

    root = _default_cache() / "glasses-assistant" / CACHE_VERSION
    root.mkdir(parents=True, exist_ok=True)
    corpus = bench_corpus()

    def build(d):
        with _corpus(corpus):
            build_vlm(d, size)

    return _ensure(root / f"{size}-{hashlib.sha1(corpus.encode()).hexdigest()[:8]}", build)


def probe(url: str, model: str, history: tuple = (), max_tokens: int = 60) -> dict:
    """One answer as a wearer's first question asks it (the app's system prompt, a 512x288 frame
    of the clip's scene, its history), streamed; the server's usage and the times."""
    import numpy as np

    from core.messages import VLMRequest
    from glasses.sample import default_scene
    from pipelines.remote_vlm import chat_messages, make_client
    from pipelines.vlm import SYSTEM_PROMPT

    frame = np.zeros((288, 512, 3), np.uint8)
    default_scene((512, 288), 10.0)(frame, 1.0)
    request = VLMRequest("What is this?", np.ascontiguousarray(frame[:, :, ::-1]), tuple(history), SYSTEM_PROMPT,
                         max_tokens)
    import openai

    client = make_client(url, timeout=300.0)
    t0, first, usage, finish = time.monotonic(), None, None, None
    try:
        stream = client.chat.completions.create(model=model, messages=chat_messages(request), max_tokens=max_tokens,
                                                temperature=0, stream=True, stream_options={"include_usage": True})
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and first is None:
                first = time.monotonic() - t0
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
            usage = getattr(chunk, "usage", None) or usage
    except openai.OpenAIError as err:
        raise BenchError(f"the probe request to {url} failed: {type(err).__name__}: {err}") from None
    finally:
        client.close()
    return {"ttft": round(first, 3) if first else None, "total": round(time.monotonic() - t0, 3),
            "prompt_tokens": getattr(usage, "prompt_tokens", None),
            "completion_tokens": getattr(usage, "completion_tokens", None), "finish_reason": finish,
            "history_turns": len(history)}



# --- the run ---------------------------------------------------------------------------------
def run(args, command: str) -> dict:
    from pipelines.remote_server import free_port, served_name, start_server, stop_server, wait_ready
    from pipelines.tiny import ensure_tiny_models
    from pipelines.vlm import default_dtype

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    dtype = args.dtype or default_dtype(args.device)
    model_dir = server_model(args.size)
    ensure_tiny_models()  # the wearers' Whisper, built once here rather than by N clients at once
    plans = {n: schedule(n, args.duration, args.period, seed=args.seed) for n in args.wearers}
    clip = make_clip(out / "scenario.mp4", args.duration)
    port = args.port or free_port()
    url, model = f"http://127.0.0.1:{port}/v1", served_name(model_dir)
    extra = server_args(model_dir, dtype, args.batching, args.splitting)
    meta = {"date": dt.datetime.now().isoformat(timespec="seconds"), "command": command, "machine": machine(),
            "versions": versions(), "model": str(model_dir), "size": args.size, "dtype": dtype,
            "device": args.device, "server_args": extra, "duration": args.duration, "period": args.period,
            "plans": {str(n): p for n, p in plans.items()}, "notes": []}
    rows, server, sessions = [], None, []
    try:
        server = start_server(model_dir, port, extra, device=args.device, log=out / "server.log")
        meta["server_ready_s"] = round(wait_ready(url, 300.0, server), 1)
        meta["probe"] = probe(url, model)  # also the warm-up: the first request pays for lazy set-up
        print(f"server ready in {meta['server_ready_s']} s; one answer alone: {meta['probe']}", flush=True)
        for n in args.wearers:
            wdir = out / f"wearers-{n}"
            wdir.mkdir(exist_ok=True)
            asked = sum(len(p) for p in plans[n])
            print(f"{n} wearer(s), {asked} questions over {args.duration:g} s ...", flush=True)
            sessions, cpu, codes = run_wearers(n, plans[n], clip, url, model, wdir, server.pid, args.duration)
            if server.poll() is not None:
                raise BenchError(f"the server exited with code {server.returncode} (see {out / 'server.log'})")
            if not any(sessions) and all(c != 0 for c in codes):  # nothing to measure: say why, once
                raise BenchError(f"every wearer failed (exit {codes[0]}): {last_line(wdir / 'wearer0.log')}")
            row = summarize(n, sessions, asked, args.duration, cpu, meta["probe"])
            row["exit_codes"] = codes
            row["replayed"] = [grep_line(wdir / f"wearer{i}.log", "replayed ") for i in range(n)]  # real time kept?
            rows.append(row)
            print(table([row]).splitlines()[-1], flush=True)
            (out / "serve_load.json").write_text(json.dumps({"meta": meta, "rows": rows, "partial": True}, indent=2))
        history = history_of(sessions)
        if history:
            meta["probe_with_history"] = probe(url, model, history)
    finally:
        if server is not None:
            stop_server(server)
    log = out / "server.log"
    meta["batching"] = batching_used(log.read_text(errors="replace") if log.exists() else "")
    meta["server"] = server_line(args.size, dtype, args.device, meta["batching"], args.splitting)
    meta["wearers_note"] = wearers_line(args.duration, args.period, os.cpu_count() or 1)
    meta["notes"] += notes(meta, rows)
    return {"meta": meta, "rows": rows}


def positive_ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--wearers wants numbers like 1,2,4,8, got {text!r}")
    return values


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not the usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse(argv: list[str]) -> argparse.Namespace:
    p = Parser(prog="python -m benchmarks.serve_load", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 1 and 2 wearers, a 30 s clip")
    p.add_argument("--wearers", type=positive_ints, help="numbers of wearers (default 1,2,4,8)")
    p.add_argument("--duration", type=float, help="clip seconds (default 75; quick 30)")
    p.add_argument("--period", type=float, help="seconds between one wearer's questions (default 12; quick 10)")
    p.add_argument("--size", choices=("smolvlm-256m", "smolvlm-2.2b"), default="smolvlm-256m")
    p.add_argument("--device", default="cpu", help="the server's device: cpu or cuda (default cpu)")
    p.add_argument("--dtype", help="the server's dtype (default: bfloat16 where fast, else float32)")
    p.add_argument("--no-continuous-batching", dest="batching", action="store_false")
    p.add_argument("--image-splitting", dest="splitting", action="store_true",
                   help="let the server split images as the processor defaults (13 tiles for a 512 px frame)")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="output folder (default runs/serve_load-TIME)")
    args = p.parse_args(argv)
    args.wearers = args.wearers or ((1, 2) if args.quick else WEARERS)
    args.duration = args.duration or (30.0 if args.quick else 75.0)
    args.period = args.period or (10.0 if args.quick else 12.0)
    args.out = args.out or Path("runs") / f"serve_load-{dt.datetime.now():%Y%m%d-%H%M%S}"
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["client"]:
        return client(argv[1:])
    args = parse(argv)
    try:
        schedule(max(args.wearers), args.duration, args.period)
    except ValueError as err:
        print(f"serve_load: error: {err}", file=sys.stderr)
        return 2
    if args.out.exists() and any(args.out.iterdir()):
        print(f"serve_load: error: --out {args.out} is not empty; choose a new folder", file=sys.stderr)
        return 2
    command = "python -m benchmarks.serve_load " + shlex.join(argv)
    from pipelines.remote_server import ServerError

    got = []

    def terminated(*_):
        got.append("SIGTERM")
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminated)  # SIGTERM shuts down like Ctrl+C: servers, clients
    try:
        result = run(args, command)
    except KeyboardInterrupt:
        print(f"serve_load: {'terminated' if got else 'interrupted'}; the server and the wearers were stopped",
              file=sys.stderr)
        return 143 if got else 130
    except (BenchError, ServerError) as err:
        print(f"serve_load: error: {err}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    text = markdown(result["meta"], result["rows"])
    (args.out / "serve_load.json").write_text(json.dumps(result, indent=2))
    (args.out / "serve_load.md").write_text(text)
    print(text)
    print(f"written: {args.out / 'serve_load.md'}, {args.out / 'serve_load.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A local `transformers serve` process, for the tests and the benchmarks of the remote backend.

`transformers serve` (the `transformers[serving]` extra) is a real OpenAI-compatible server.
Pinned to a local model folder, offline, on 127.0.0.1, it is the server the remote backend
(pipelines/remote_vlm.py) is tested and measured against: `start_server` starts it,
`wait_ready` polls its model list until it answers, `stop_server` ends it. Nothing here is
used by a session; a wearer's server is started by whoever runs it (see README).

Two details of this server matter to a client: pinned to a folder, its `/v1/models` lists
only the models in its hub cache (an empty list with an empty cache), and a request must
name the folder exactly as it was given (`served_name`), or it answers 400.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

READY_TIMEOUT = 120.0  # seconds: importing torch and loading a model on 2 busy cores


class ServerError(Exception):
    """The server could not be started or did not become ready; str() is one line."""


def serving_available() -> str:
    """"" when `transformers serve` can run here, else why not (one line)."""
    try:
        import fastapi  # noqa: F401
        import openai  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        return f"transformers' serving extra is not installed ({err.name} missing): pip install 'transformers[serving]'"
    return ""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS picks it; a race with another process is possible but rare)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def served_name(model_dir: str | Path) -> str:
    """The model name requests must send to a server pinned to `model_dir` (its path, as given)."""
    return str(model_dir)


def server_command(model_dir: str | Path, port: int, extra_args: Sequence[str] = (), host: str = "127.0.0.1",
                   device: str = "cpu") -> list[str]:
    """The command line: this interpreter runs transformers' own CLI (no dependence on PATH)."""
    runner = ("import sys; from transformers.cli.transformers import main; sys.argv[0] = 'transformers'; "
              "sys.exit(main())")
    return [sys.executable, "-c", runner, "serve", served_name(model_dir), "--host", host, "--port", str(port),
            "--device", device, *extra_args]


def start_server(model_dir: str | Path, port: int, extra_args: Sequence[str] = (), *, host: str = "127.0.0.1",
                 device: str = "cpu", log: str | Path | None = None, cache_dir: str | Path | None = None,
                 threads: int | None = None) -> subprocess.Popen:
    """Start `transformers serve MODEL_DIR` on host:port, offline, and return the process at once
    (call `wait_ready`). Its output goes to `log` (a file), else nowhere. `cache_dir`: an existing
    folder for HF_HUB_CACHE (default: an empty one beside the log or in /tmp), so the server never
    looks at, or downloads into, the user's cache. `threads`: torch's CPU threads (OMP_NUM_THREADS)."""
    problem = serving_available()
    if problem:
        raise ServerError(problem)
    if cache_dir is None:
        cache_dir = Path(log).parent / "hf-cache" if log else Path("/tmp") / f"glasses-serve-cache-{os.getuid()}"
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache_dir), "HF_HUB_DISABLE_TELEMETRY": "1",
           "TOKENIZERS_PARALLELISM": "false", "NO_COLOR": "1"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    out = open(log, "ab") if log else subprocess.DEVNULL
    try:
        # Its own process group: stop_server ends the server and anything it started, and a
        # Ctrl+C meant for the caller does not reach it.
        return subprocess.Popen(server_command(model_dir, port, extra_args, host, device), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    finally:
        if log:
            out.close()  # the child holds its own copy


def wait_ready(url: str, timeout: float = READY_TIMEOUT, proc: subprocess.Popen | None = None) -> float:
    """Poll GET {url}/models until it answers 200; the seconds it took. ServerError when `timeout`
    passes first or `proc` (the server) exits. `url`: the API's base, e.g. http://127.0.0.1:8000/v1."""
    import urllib.error
    import urllib.request

    from pipelines.remote_vlm import base_url

    t0 = time.monotonic()
    deadline = t0 + timeout
    models = base_url(url) + "/models"  # http://host:port works too
    why = "no answer yet"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerError(f"the server exited with code {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(models, timeout=2.0) as response:  # noqa: S310 - a local URL we built
                if response.status == 200:
                    return time.monotonic() - t0
                why = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as err:
            why = str(getattr(err, "reason", err))
        time.sleep(0.2)
    raise ServerError(f"the server at {url} was not ready after {timeout:g} s ({why})")


def stop_server(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM to the server's process group, SIGKILL after `timeout` seconds; waits for it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_server(proc)
    proc.wait()


def kill_server(proc: subprocess.Popen) -> None:
    """SIGKILL, as a crash would end it: no goodbye on its open connections beyond the kernel's."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class LocalServer:
    """One `transformers serve` on a fixed port that can be killed and started again there (a
    crash and a restart), or paused (SIGSTOP: a server that hangs). A context manager."""

    def __init__(self, model_dir: str | Path, port: int | None = None, extra_args: Sequence[str] = (),
                 log: str | Path | None = None, threads: int | None = None, host: str = "127.0.0.1",
                 device: str = "cpu"):
        self.model_dir, self.extra_args, self.log, self.threads = model_dir, tuple(extra_args), log, threads
        self.host, self.device = host, device
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}/v1"
        self.model = served_name(model_dir)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = READY_TIMEOUT) -> float:
        """Start it and wait until it answers; the seconds that took (ServerError, with the log's
        last line, when it does not come up)."""
        self.proc = start_server(self.model_dir, self.port, self.extra_args, host=self.host, device=self.device,
                                 log=self.log, threads=self.threads)
        try:
            return wait_ready(self.url, timeout, self.proc)
        except ServerError as err:
            kill_server(self.proc)
            raise ServerError(f"{err}; {self.last_log_line()}") from None

    def last_log_line(self) -> str:
        try:
            lines = Path(self.log).read_text(errors="replace").strip().splitlines() if self.log else []
        except OSError:
            lines = []
        return f"its log ends: {lines[-1][:200]}" if lines else "no log"

    def kill(self) -> None:
        if self.proc is not None:
            kill_server(self.proc)

    def pause(self) -> None:
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            try:
                self.resume()
            except ProcessLookupError:
                pass
            stop_server(self.proc)

    def __enter__(self) -> "LocalServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

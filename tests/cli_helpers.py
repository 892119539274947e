"""Shared by the command-line and end-to-end tests: how demo.py is run, what a bad-input answer must
look like, and a frame of a written video."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE_ENV = {"PATH": "/usr/bin:/bin"}  # no $DISPLAY, no proxies, no hub settings but the ones a test gives


def run_demo(*args, env=None, cwd=None, timeout=120, program=None):
    """demo.py (or `program`, e.g. the installed console script) with `args`, in a clean environment."""
    command = [str(program)] if program else [sys.executable, str(ROOT / "demo.py")]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env={**BASE_ENV, **(env if env is not None else {"HF_HUB_OFFLINE": "1"})})


def one_line_error(proc, code=2):
    """Exit `code` (2: bad input) and exactly one line on stderr, never a traceback; returns that line."""
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def frame_at(path, t: float):
    """The first frame of the video at `path` shown at or after `t` seconds (BGR)."""
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time >= t - 1e-6:
                return frame.to_ndarray(format="bgr24")
    raise AssertionError(f"no frame at {t}")

"""Ctrl+C at any moment of a turn: exit 130, the log kept and closed with an `end` record, every
thread released within 2 s, no traceback and no abort (exit 134 was a generation thread still
inside torch when the interpreter exited), and no temporary files left behind."""
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.cli_helpers import BASE_ENV, ROOT


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from glasses.sample import make_clip

    return make_clip(tmp_path_factory.mktemp("interrupts") / "clip.mp4", duration=8.0, size=(160, 90), fps=10)


def interrupt_at(clip, out: Path, after: float, *extra, sig=signal.SIGINT):
    """A real-time replay asked a question at 1 s; `sig` arrives `after` seconds into the session."""
    tmp = Path(tempfile.mkdtemp(prefix="interrupts-"))
    proc = subprocess.Popen([sys.executable, str(ROOT / "demo.py"), "replay", clip, "--models", "tiny-random",
                             "--pace", "realtime", "--ask", "1.0:what is this?", "--out", out, "--no-video", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**BASE_ENV, "HF_HUB_OFFLINE": "1", "TMPDIR": str(tmp)})
    try:
        t0 = time.perf_counter()
        while not (out / "session.jsonl").exists():  # the session has begun: its clock starts about now
            assert proc.poll() is None and time.perf_counter() - t0 < 120, proc.stderr.read()
            time.sleep(0.02)
        time.sleep(after)
        t_signal = time.perf_counter()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        took = time.perf_counter() - t_signal
    finally:
        proc.kill()
    records = [json.loads(line) for line in (out / "session.jsonl").read_text().splitlines()]
    return proc.returncode, err, took, records, list(tmp.glob("glasses-*"))  # torch keeps its own caches there


@pytest.mark.slow
@pytest.mark.parametrize("after", [0.6, 1.0, 1.1, 1.25, 1.6])
def test_ctrl_c_anywhere_in_a_turn_ends_cleanly(clip, tmp_path, after):
    code, err, took, records, left = interrupt_at(clip, tmp_path / "out", after)
    assert code == 130 and err.strip().splitlines() == ["interrupted: the session log written so far is kept"], err
    assert took < 3.0, f"took {took:.1f} s to stop"  # 2 s for the threads, plus the interpreter's exit
    assert records[0]["type"] == "session" and records[-1]["type"] == "end"
    assert records[-1]["reason"] == "interrupted (Ctrl+C)"
    assert left == [], left  # the TTS worker's folder is gone


@pytest.mark.slow
def test_sigterm_during_contemplating_with_sixteen_drafts(clip, tmp_path):
    code, err, took, records, left = interrupt_at(clip, tmp_path / "out", 1.1, "--mode", "contemplating",
                                                  "--agents", "16", sig=signal.SIGTERM)
    assert code == 143 and "terminate called" not in err and "Traceback" not in err, err
    assert took < 3.0 and records[-1]["type"] == "end" and records[-1]["reason"] == "terminated (SIGTERM)"
    assert left == [], left

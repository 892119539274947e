"""`demo.py live` as a user runs it: bad devices are one line and exit 2; no microphone means typed questions."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import one_line_error

ROOT = Path(__file__).resolve().parents[1]
ENV = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}  # no $DISPLAY


def demo(*args, input=None, timeout=120):
    return subprocess.run([sys.executable, str(ROOT / "demo.py"), "live", *map(str, args)], capture_output=True,
                          text=True, input=input, timeout=timeout, env=ENV)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from glasses.sample import make_clip

    return make_clip(tmp_path_factory.mktemp("live-cli") / "clip.mp4", duration=3.0, size=(320, 180), audio=False)


def test_no_display_says_so_and_suggests_no_window(clip):
    line = one_line_error(demo("--camera", clip))
    assert "no display available" in line and "--no-window" in line


def test_bad_cameras_are_one_line(tmp_path):
    line = one_line_error(demo("--camera", "7", "--no-window"))
    assert "no camera at index 7" in line and ("cameras that work" in line or "no camera works" in line)
    assert "no such file" in one_line_error(demo("--camera", tmp_path / "missing.mp4", "--no-window"))
    (tmp_path / "notes.txt").write_text("not a video")
    assert "cannot read video" in one_line_error(demo("--camera", tmp_path / "notes.txt", "--no-window"))


def test_bad_audio_devices_are_one_line(clip, tmp_path):
    line = one_line_error(demo("--camera", clip, "--no-window", "--mic", "no-such-mic"))
    assert "no input device matching 'no-such-mic'" in line and "input devices:" in line
    assert "no such file" in one_line_error(demo("--camera", clip, "--no-window", "--mic", tmp_path / "q.wav"))
    line = one_line_error(demo("--camera", clip, "--no-window", "--mic", "none", "--speaker", "no-such-speaker"))
    assert "no output device matching 'no-such-speaker'" in line


def test_without_a_microphone_questions_are_typed(clip, tmp_path):
    out = tmp_path / "out"
    proc = demo("--camera", clip, "--no-window", "--mic", "none", "--speaker", "none", "--models", "tiny-random",
                "--out", out, input="what is this?\n", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "type your questions" in proc.stdout and "heard:  what is this?" in proc.stdout
    # whichever ends first: the 3 s clip, or the typed input (EOF) once the answer is done
    assert ("ended: the camera file ended" in proc.stdout or "standard input ended" in proc.stdout)
    assert "Traceback" not in proc.stderr
    records = [json.loads(line) for line in (out / "session.jsonl").read_text().splitlines()]
    assert [r["type"] for r in records] == ["session", "ask", "turn", "end"]
    assert records[2]["question"] == "what is this?"  # typed before the first frame: frame_time may be None


def test_ctrl_c_stops_everything_quickly_and_keeps_the_log(tmp_path):
    import signal
    import time

    from glasses.sample import make_clip

    long_clip = make_clip(tmp_path / "long.mp4", duration=30.0, size=(160, 90), fps=10, audio=False)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(ROOT / "demo.py"), "live", "--camera", long_clip, "--no-window",
                             "--mic", "none", "--speaker", "none", "--models", "tiny-random", "--out", out],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        assert proc.stdout.readline().startswith("live |"), proc.stderr.read()  # running: ports open, models loaded
        time.sleep(1.0)
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        took = time.perf_counter() - t0
    finally:
        proc.kill()
    assert proc.returncode == 130 and took < 3.0, proc.stderr.read()
    end = json.loads((out / "session.jsonl").read_text().splitlines()[-1])
    assert end["type"] == "end" and end["reason"] == "interrupted (Ctrl+C)" and end["shutdown_s"] < 2.0


@pytest.mark.parametrize("typed", ["", "what is this?\n", "what is this?"])
def test_with_no_input_left_the_session_answers_and_ends(tmp_path, typed):
    # no camera, no microphone, standard input at its end: nothing more can be asked
    out = tmp_path / "out"
    proc = demo("--camera", "none", "--no-window", "--mic", "none", "--speaker", "none", "--models", "tiny-random",
                "--out", out, input=typed, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "ended: no input left" in proc.stdout and "Traceback" not in proc.stderr
    records = [json.loads(line) for line in (out / "session.jsonl").read_text().splitlines()]
    asked = ["ask", "turn"] if typed else []  # a last line without its newline is a question too
    assert [r["type"] for r in records] == ["session", *asked, "end"]


def test_a_microphone_file_that_ends_ends_the_session(tmp_path, speech16k):
    import numpy as np

    from core.audio import write_wav

    wav = write_wav(tmp_path / "q.wav", np.concatenate([np.zeros(8000, np.float32), speech16k("hello there")]), 16000)
    out = tmp_path / "out"
    proc = demo("--camera", "none", "--no-window", "--mic", wav, "--speaker", "none", "--models", "tiny-random",
                "--out", out, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "ended: no input left" in proc.stdout and "Traceback" not in proc.stderr
    assert json.loads((out / "session.jsonl").read_text().splitlines()[-1])["type"] == "end"

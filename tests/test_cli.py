"""demo.py as a user runs it: exit codes, and one clear line (never a traceback) for bad input."""
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import one_line_error

ROOT = Path(__file__).resolve().parents[1]


def demo(*args, cwd=None, timeout=120):
    return subprocess.run([sys.executable, str(ROOT / "demo.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def clip(tmp_path_factory, espeak):
    path = tmp_path_factory.mktemp("cli") / "sample.mp4"
    proc = demo("sample", path)
    assert proc.returncode == 0 and path.exists(), proc.stderr
    return path


def test_bad_inputs_get_one_line_and_exit_2(tmp_path):
    (tmp_path / "notes.txt").write_text("not a video")
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "noise.mp4").write_bytes(bytes(range(256)) * 400)
    assert "no such file" in one_line_error(demo("replay", tmp_path / "missing.mp4"))
    assert "not a media file" in one_line_error(demo("replay", tmp_path / "notes.txt"))
    assert "empty file" in one_line_error(demo("replay", tmp_path / "empty.mp4"))
    assert "media" in one_line_error(demo("replay", tmp_path / "noise.mp4"))
    assert "--ask" in one_line_error(demo("replay", tmp_path / "notes.txt", "--ask", "soon:what"))
    assert "--ask" in one_line_error(demo("replay", tmp_path / "notes.txt", "--ask", "3:"))
    assert "invalid choice" in one_line_error(demo("replay", tmp_path / "notes.txt", "--pace", "slow"))
    assert "required" in one_line_error(demo("replay"))


def test_truncated_clip_is_refused_or_replayed(clip, tmp_path):
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    proc = demo("replay", cut, "--models", "tiny-random", "--out", tmp_path / "o", "--no-video")
    assert proc.returncode in (0, 2) and "Traceback" not in proc.stderr


def test_missing_model_is_one_line_naming_it(clip, tmp_path):
    line = one_line_error(demo("replay", clip, "--vlm", tmp_path / "no-such-model", "--asr", tmp_path / "nor-this"))
    assert "cannot load" in line and "no-such-model" in line or "nor-this" in line
    assert not (tmp_path / "runs").exists()


def test_tiny_random_smoke_run_on_the_sample(clip, tmp_path):
    out = tmp_path / "out"
    proc = demo("replay", clip, "--models", "tiny-random", "--out", out, "--ask", "2:what is this?", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "RANDOM WEIGHTS" in proc.stdout and "what is this?" in proc.stdout
    assert (out / "session.jsonl").exists() and (out / "annotated.mp4").exists()
    assert "Traceback" not in proc.stderr

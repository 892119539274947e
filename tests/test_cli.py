"""demo.py as a user runs it: exit codes, and one clear line (never a traceback) for bad input."""
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import ROOT, one_line_error, run_demo

demo = run_demo


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


@pytest.mark.parametrize("phrase", ["!!!", "", "  ", "..."])
def test_a_wake_phrase_without_letters_is_refused(phrase, tmp_path):
    line = one_line_error(demo("replay", tmp_path / "missing.mp4", "--wake", phrase))
    assert "--wake" in line and "needs letters" in line and "'none'" in line


@pytest.mark.parametrize("phrase", ["none", "привет очки", "你好眼镜"])
def test_wake_none_and_other_scripts_are_accepted(phrase, tmp_path):
    assert "no such file" in one_line_error(demo("replay", tmp_path / "missing.mp4", "--wake", phrase))


def test_an_unknown_language_is_refused_naming_valid_codes(tmp_path):
    line = one_line_error(demo("replay", tmp_path / "missing.mp4", "--language", "zz-bogus"))
    assert "--language" in line and "zz-bogus" in line and "en, de" in line and "auto" in line
    for good in ("auto", "de", "ZH"):  # parsed: the missing clip is what is reported
        assert "no such file" in one_line_error(demo("replay", tmp_path / "missing.mp4", "--language", good))


def test_sample_never_overwrites_a_file(tmp_path):
    mine = tmp_path / "mine.mp4"
    mine.write_bytes(b"my own recording")
    line = one_line_error(demo("sample", mine))
    assert str(mine) in line and "already exists" in line
    assert mine.read_bytes() == b"my own recording"


def test_an_internal_error_is_one_line_even_without_a_temp_folder(tmp_path):
    """The last-resort handler must not fail itself: TMPDIR names a folder that does not exist."""
    crash = ("import sys, demo\n"
             "def boom(args): raise RuntimeError('simulated failure\\nsecond line')\n"
             "demo.replay_command = boom\n"
             "sys.exit(demo.main(['replay', 'x.mp4']))\n")
    proc = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path / "missing"), "HF_HUB_OFFLINE": "1"})
    line = one_line_error(proc, code=1)
    assert "internal error: RuntimeError: simulated failure" in line and "second line" not in line
    written = Path(line.rsplit("details in ", 1)[1].rstrip(")"))
    assert "RuntimeError" in written.read_text()


def test_the_crash_report_says_so_when_no_folder_takes_it(monkeypatch, capsys, tmp_path):
    import core.process as entry

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(entry, "crash_folders", lambda environ, home, cwd: [blocker / "x", blocker / "y"])
    try:
        raise ValueError("boom")
    except ValueError as err:
        assert entry.report_crash(err, "prog") == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("prog: internal error: ValueError: boom") and "no details written" in line


def test_crash_folders_try_tmpdir_first_then_fixed_places():
    folders = [str(p) for p in __import__("core.process").process.crash_folders({"TMPDIR": "/gone"}, Path("/h"), Path("/w"))]
    assert folders == ["/gone", "/tmp", "/var/tmp", "/h/.cache/glasses-assistant", "/w"]


def test_the_console_entry_point_names_itself():
    program = Path(sys.executable).parent / "glasses-assistant"
    if not program.exists():
        pytest.skip("glasses-assistant is not installed in this environment (pip install -e .)")
    proc = demo("replay", "--help", program=program)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: glasses-assistant replay"), proc.stderr
    line = one_line_error(demo("replay", "missing.mp4", "--wake", "!!!", program=program))
    assert line.startswith("glasses-assistant replay: error:")
    assert one_line_error(demo("replay", "/no/such/clip.mp4", program=program)).startswith("glasses-assistant: error:")


def test_truncated_clip_is_refused_or_replayed(clip, tmp_path):
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    proc = demo("replay", cut, "--models", "tiny-random", "--out", tmp_path / "o", "--no-video")
    assert proc.returncode in (0, 2) and "Traceback" not in proc.stderr


@pytest.mark.parametrize("flag, name", [("--vlm", "no-such-model"), ("--asr", "nor-this")])
def test_missing_model_is_one_line_naming_it(clip, tmp_path, flag, name):
    line = one_line_error(demo("replay", clip, "--models", "tiny-random", flag, tmp_path / name, cwd=tmp_path))
    kind = "vision-language" if flag == "--vlm" else "speech-recognition"
    assert f"cannot load {kind} model '{tmp_path / name}'" in line
    assert not (tmp_path / "runs").exists()


def test_tiny_random_smoke_run_on_the_sample(clip, tmp_path):
    out = tmp_path / "out"
    proc = demo("replay", clip, "--models", "tiny-random", "--out", out, "--ask", "2:what is this?", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "RANDOM WEIGHTS" in proc.stdout and "what is this?" in proc.stdout
    assert (out / "session.jsonl").exists() and (out / "annotated.mp4").exists()
    assert "Traceback" not in proc.stderr

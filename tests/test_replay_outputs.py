"""What a replay keeps and leaves: the replay speaker spools answers instead of holding them,
the annotated video is whole or absent (Ctrl+C, a full disk), and the progress bar stays in
its range."""
import errno
import importlib
import io
import json
import warnings

import numpy as np
import pytest

import demo
from core.messages import SpeechAudio
from glasses.render import NoSpace
from glasses.sample import make_clip
from glasses.speaker import MixSpeaker
from pipelines.app import ReplayOptions, UsageError, replay
from tests.fakes import FakeTTS, FakeVLM, ScriptedASR
from tests.test_render import _audio, _tone_amp

replay_app = importlib.import_module("pipelines.app.replay")  # the module: pipelines.app.replay is the function


def _speech(seconds, rate=22_050, text="hi"):
    k = np.arange(round(seconds * rate))
    return SpeechAudio(text, (0.25 * np.sin(2 * np.pi * 440 * k / rate)).astype(np.float32), rate)


# --- the replay speaker ---------------------------------------------------------------------------
def test_the_speaker_spools_samples_and_reads_them_back_cut_where_cleared(tmp_path):
    speaker = MixSpeaker(tmp_path)
    a, b = _speech(1.0, text="one"), _speech(2.0, text="two")
    assert speaker.play(a, 1.0) == (1.0, 2.0)
    assert speaker.play(b, 1.5) == (2.0, 4.0)  # queued after the one playing
    speaker.clear(3.0)
    first, second = speaker.clips()
    assert second.end == pytest.approx(3.0) and speaker.busy_until() == pytest.approx(3.0)
    assert np.abs(speaker.samples(first) - a.samples).max() <= 1 / 32768  # 16-bit on disk
    assert np.allclose(speaker.samples(second), b.samples[: 22_050], atol=1 / 32768)
    assert not hasattr(first, "samples")  # nothing but where they lie is kept per clip
    assert list(tmp_path.iterdir()) == []  # the spool has no name in the folder
    speaker.close()
    assert speaker.samples(first).size == 0


def test_without_a_spool_folder_no_audio_is_kept():
    speaker = MixSpeaker()
    speaker.play(_speech(0.5), 0.0)
    (clip,) = speaker.clips()
    assert clip.offset is None and clip.end == pytest.approx(0.5) and speaker.samples(clip).size == 0


def test_a_spool_that_cannot_be_written_keeps_the_times_and_warns(tmp_path, caplog):
    speaker = MixSpeaker(tmp_path / "gone")  # a folder that does not exist: the spool cannot open
    assert speaker.play(_speech(0.5), 1.0) == (1.0, 1.5)
    assert speaker.clips()[0].offset is None and "not kept" in caplog.text


# --- the replay command -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clip") / "c.mp4", duration=3.0, size=(160, 120), fps=10.0)


def _replay(clip, out, **kw):
    return replay(ReplayOptions(clip, out=out, progress=False, asks=((0.5, "what is this?"),), **kw),
                  asr=ScriptedASR([]), vlm=FakeVLM("It is a square."), tts=FakeTTS())


def test_the_answer_is_heard_in_the_video_and_nothing_else_is_left(clip, tmp_path):
    result = _replay(clip, tmp_path / "out")
    (turn,) = result.turns
    spoken = turn["spoken"][0]
    x = _audio(result.video)
    assert _tone_amp(x, spoken["start"] + 0.1, spoken["end"] - 0.1, 440.0) > 0.15  # FakeTTS: 0.2 at 440 Hz
    assert _tone_amp(x, 0.1, 0.4, 440.0) < 0.01
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["annotated.mp4", "debug.log", "session.jsonl"]


def test_a_full_disk_is_one_line_for_the_user_and_keeps_the_log(clip, tmp_path, monkeypatch):
    def full(src, path, *a, **k):
        raise NoSpace(path, 11_200_000, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(replay_app, "render_annotated", full)
    with pytest.raises(UsageError, match=r"^no space left on .*out for annotated.mp4 \(about 12 MB needed\)$"):
        _replay(clip, tmp_path / "out")
    records = [json.loads(line) for line in (tmp_path / "out" / "session.jsonl").read_text().splitlines()]
    assert records[-1]["type"] == "end" and not (tmp_path / "out" / "annotated.mp4").exists()


def test_the_entry_point_turns_a_full_disk_into_exit_2(clip, tmp_path, monkeypatch, capsys):
    real = replay_app.replay

    def with_fakes(opts):
        return real(opts, asr=ScriptedASR([]), vlm=FakeVLM("It is a square."), tts=FakeTTS())

    def full(src, path, *a, **k):
        raise NoSpace(path, 3_000_000, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(replay_app, "render_annotated", full)
    monkeypatch.setattr("pipelines.app.replay", with_fakes)  # what demo.py imports
    code = demo.main(["replay", str(clip), "--out", str(tmp_path / "o"), "--ask", "0.5:what is this?"])
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("replay:")]  # the bar
    expected = f"error: no space left on {tmp_path / 'o'} for annotated.mp4 (about 3 MB needed)"
    assert code == 2 and len(err) == 1 and err[0].endswith(expected)  # "demo.py: error: ..."
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["debug.log", "session.jsonl"]


def test_ctrl_c_while_the_video_is_written_leaves_no_video_and_says_so(clip, tmp_path, monkeypatch, capsys):
    import glasses.render as render

    frames = iter(range(1000))

    def overlay(image, state):
        if next(frames) == 5:
            raise KeyboardInterrupt  # what Ctrl+C raises in the main thread
        return image

    monkeypatch.setattr(render, "draw_overlay", overlay)
    with pytest.raises(KeyboardInterrupt):
        _replay(clip, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["debug.log", "session.jsonl"]
    assert "annotated video not written (interrupted)" in capsys.readouterr().err


def test_a_video_that_cannot_be_rendered_is_a_warning_and_the_replay_goes_on(clip, tmp_path, monkeypatch, capsys):
    def broken(src, path, *a, **k):
        raise ValueError(f"{src}: no decodable video frames")

    monkeypatch.setattr(replay_app, "render_annotated", broken)
    result = _replay(clip, tmp_path / "out")
    assert result.video is None and len(result.turns) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"warning: annotated video not written: {clip}: no decodable video frames"]


# --- the progress bar -------------------------------------------------------------------------------
def test_the_replay_bar_never_runs_past_its_total():
    out = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tqdm's "clamping frac" would fail the test
        bar = replay_app._progress_bar(7.0333, file=out, mininterval=0)
        for i in range(240):  # 32 ms chunks, the last ones past the end
            replay_app._advance(bar, i * 0.032)
        assert bar.n == bar.total == 7033
        bar.close()
    assert out.getvalue().rstrip().endswith("7.0/7.0 s media [00:00<00:00]")

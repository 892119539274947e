"""The echo benchmark's bookkeeping (benchmarks/echo.py): which event belongs to which stretch of
the wearer's speech, and how an answer is cut where it paused (closing the loop)."""
import numpy as np

from benchmarks.echo import delay_stats, matched, paused_at
from benchmarks.echo_sim import Devices, Program
from core.messages import SpeechAudio


def test_each_stretch_of_speech_takes_the_first_event_of_its_own():
    spans = [(1.0, 2.3), (5.0, 6.3), (9.0, 10.3)]
    events = [(0.9, 1.2), (1.0, 1.5), (4.0, 4.2), (5.1, 6.6), (9.0, 9.3)]  # (its start, when it reached the session)
    delays, used = matched(spans, events)
    assert np.allclose(delays, [0.2, 0.3]) and used == {(0.9, 1.2), (9.0, 9.3)}  # 5.1 came 1.6 s late: missed
    stats = delay_stats(delays, len(spans))
    assert (stats["detected"], stats["within_0.5s"], stats["rate_0.5s"], stats["delay_median_s"]) == (2, 2, 0.667, 0.25)
    assert delay_stats([], 3)["delay_median_s"] is None


def test_an_answer_falls_silent_where_it_paused_and_the_others_play_whole():
    a, b = (SpeechAudio(t, np.ones(16000 * 3, np.float32), 16000) for t in ("a", "b"))
    cut = paused_at(Program([(1.0, a), (6.0, b)], seconds=10.0), [2.0, 9.5])
    (_, first), (_, second) = cut.answers
    assert len(first.samples) == int((1.0 + Devices.out_latency) * 16000) and len(second.samples) == 48000


def test_without_the_real_speech_both_benchmarks_say_so_in_one_line(monkeypatch, capsys):
    import benchmarks.echo as echo
    import benchmarks.echo_hints as echo_hints
    import benchmarks.echo_room as room

    monkeypatch.setattr(room, "wearer_pieces", lambda *a, **k: [])
    assert echo.main([]) == 2 and echo_hints.main([]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all("../shared/media" in line for line in lines)

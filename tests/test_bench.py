"""The latency benchmark: its scenario generator, its report arithmetic, and a smoke run.

The smoke run plays a two-question scenario at 1x into the real session with tiny random
models (a few seconds) and checks that the report has every field the issue asks for.
"""
import json

import numpy as np
import pytest

from benchmarks import report as bench_report
from benchmarks.scenario import QUESTIONS, PacedSource, make_scenario, speech_bounds
from core.messages import SAMPLE_RATE, AudioChunk, VideoFrame


def fake_speak(text: str) -> np.ndarray:
    """0.1 s of silence, a tone as long as the text has words (0.2 s each), 0.15 s of silence."""
    n = int(0.2 * len(text.split()) * SAMPLE_RATE)
    tone = 0.3 * np.sin(np.arange(n) * 2 * np.pi * 220 / SAMPLE_RATE)
    return np.concatenate([np.zeros(1600), tone, np.zeros(2400)]).astype(np.float32)


# --- scenario ----------------------------------------------------------------------------
def test_speech_bounds_find_the_voice_within_10_ms():
    audio = np.zeros(SAMPLE_RATE, np.float32)
    audio[4000:12000] = 0.2
    a, b = speech_bounds(audio, SAMPLE_RATE)
    assert abs(a - 4000) <= 160 and abs(b - 12000) <= 160
    assert speech_bounds(np.zeros(800, np.float32), SAMPLE_RATE) == (0, 0)


def test_scenario_places_each_question_at_known_times_with_pauses():
    sc = make_scenario(3, pause=2.0, lead=1.0, tail=0.5, speak=fake_speak)
    assert [q.text for q in sc.questions] == list(QUESTIONS[:3])
    first = sc.questions[0]
    assert first.start == pytest.approx(1.0) and first.end - first.start == pytest.approx(0.2 * 3, abs=0.011)
    for q, nxt in zip(sc.questions, sc.questions[1:]):
        assert nxt.start - q.end == pytest.approx(2.0, abs=1e-3)  # the pause, exactly
    assert sc.duration == pytest.approx(sc.questions[-1].end + 0.5, abs=1e-3)
    # loud inside each question, faint noise outside
    for q in sc.questions:
        inside = sc.audio[int(q.start * SAMPLE_RATE) + 10 : int(q.end * SAMPLE_RATE) - 10]
        assert np.sqrt(np.mean(inside ** 2)) > 0.1
    gap = sc.audio[int(sc.questions[0].end * SAMPLE_RATE) + 10 : int(sc.questions[1].start * SAMPLE_RATE) - 10]
    assert np.abs(gap).max() < 0.01


def test_scenario_is_deterministic_and_cycles_questions():
    a = make_scenario(14, pause=0.5, speak=fake_speak)
    b = make_scenario(14, pause=0.5, speak=fake_speak)
    assert np.array_equal(a.audio, b.audio) and a.questions == b.questions
    assert a.questions[12].text == QUESTIONS[0] and len(a.questions) == 14
    with pytest.raises(ValueError):
        make_scenario(0, speak=fake_speak)


def test_scenario_frames_and_question_lookup():
    sc = make_scenario(2, pause=1.0, speak=fake_speak)
    f = sc.frame(0.0)
    assert f.shape == (360, 640, 3) and f.dtype == np.uint8
    assert not np.array_equal(sc.frame(0.0), sc.frame(0.3))  # the ball moves
    q0, q1 = sc.questions
    assert sc.question_at(q0.start - 0.2, q0.end + 0.3) == 0 and sc.question_at(q1.start, q1.end) == 1
    assert sc.question_at(q0.end + 0.1, q1.start - 0.1) is None
    assert sc.index_at(q1.end + 0.5) == 1


def test_scenario_with_espeak_has_its_true_ends_at_the_voice(espeak):
    sc = make_scenario(2, pause=0.5)
    assert all(q.end - q.start > 0.4 for q in sc.questions)
    a, b = speech_bounds(sc.audio, SAMPLE_RATE)  # of the whole track: its first and last voice
    assert a / SAMPLE_RATE == pytest.approx(sc.questions[0].start, abs=0.011)
    assert b / SAMPLE_RATE == pytest.approx(sc.questions[-1].end, abs=0.011)


def test_paced_source_delivers_each_audio_block_once_it_is_recorded():
    class Clock:
        def __init__(self):
            self.waits = []

        def wait_until(self, t, stop=None):
            self.waits.append(t)

    sc = make_scenario(1, pause=0.1, lead=0.1, speak=fake_speak)
    clock = Clock()
    events = list(PacedSource(sc, clock).events())
    blocks = [e for e in events if isinstance(e, AudioChunk)]
    assert clock.waits == pytest.approx([b.t + 512 / SAMPLE_RATE for b in blocks])
    assert sum(isinstance(e, VideoFrame) for e in events) == int(sc.duration * sc.fps)


def test_first_chunk_waits_for_the_token_after_the_clause():
    from benchmarks.latency import first_chunk_tokens

    class Tok:  # ids are the text pieces themselves
        def decode(self, ids, skip_special_tokens=True):
            return "".join(ids)

    pieces = ["It", " looks", " like", ",", " a", " mug", "."]
    # the streamer releases "It looks like, " only when " a" arrives: 5 tokens
    assert first_chunk_tokens(Tok(), pieces, 3) == (5, "It looks like,")
    assert first_chunk_tokens(Tok(), pieces, 0) == (7, "It looks like, a mug.")  # sentences only


# --- report ------------------------------------------------------------------------------
def timeline(shift=0.0, vision_inside=False):
    """A turn whose every time is known: speech ends at 2.0 (+shift)."""
    s = shift
    fwd = [[3.10 + s, 3.40 + s]] + [[3.40 + s + 0.05 * i, 3.44 + s + 0.05 * i] for i in range(1, 6)]
    vision = [3.12 + s, 3.30 + s] if vision_inside else [2.95 + s, 3.09 + s]
    return {
        "question": "What is this?", "speech": [1.0 + s, 2.0 + s], "vad_speech": [1.0 + s, 2.03 + s],
        "detected": 2.60 + s, "asr": [2.601 + s, 2.90 + s], "vlm_call": 2.905 + s, "vision": vision,
        "forwards": fwd, "first_piece": 3.46 + s, "need_tokens": 4,
        "tts": [["It looks like a red mug,", 3.592 + s, 3.605 + s], ["rest.", 3.7 + s, 3.71 + s]],
        "plays": [["It looks like a red mug,", 3.6051 + s, 3.6051 + s, 5.0 + s]],
        "session_latency": {"voice_to_voice": 1.5751},
    }


def test_turn_figures_add_up_to_voice_to_voice():
    f = bench_report.turn_figures(timeline())
    assert f["endpoint_wait"] == pytest.approx(0.60)
    assert f["asr"] == pytest.approx(0.299)
    assert f["preprocess"] == pytest.approx(2.95 - 2.905)  # the vision tower ran before the first forward
    assert f["vision"] == pytest.approx(0.14) and f["prefill"] == pytest.approx(0.30)
    assert f["first_token"] == pytest.approx(3.46 - 2.905)
    # the chunk needed 4 tokens: it was ready when the 4th forward ended, at 3.59
    assert f["vlm_to_chunk"] == pytest.approx(3.59 - 2.905) and f["to_tts"] == pytest.approx(0.002)
    assert f["tts"] == pytest.approx(0.013) and f["voice_to_voice"] == pytest.approx(1.6051)
    assert f["asr_wait"] == pytest.approx(f["asr"])  # no early ASR: all of it after the decision
    parts = f["endpoint_wait"] + f["asr_wait"] + f["vlm_to_chunk"] + f["tts"] + f["overhead"]
    assert parts == pytest.approx(f["voice_to_voice"])
    handoffs = f["to_asr"] + f["to_vlm"] + f["to_tts"] + f["to_speaker"]
    assert handoffs == pytest.approx(f["overhead"])


def test_early_asr_and_speculative_vision_leave_only_what_is_after_the_decision():
    tl = timeline()
    detected = tl["detected"]
    tl["asr"] = [detected - 0.45, detected - 0.05]  # transcribed during the silence: done before the decision
    tl["prepares"] = [[tl["speech"][0] + 0.4, tl["speech"][1] - 0.2]]
    f = bench_report.turn_figures(tl)
    assert f["asr_wait"] == 0.0 and f["to_asr"] == 0.0 and f["asr"] == pytest.approx(0.40)
    assert f["spec_vision"] == pytest.approx(tl["speech"][1] - 0.2 - tl["speech"][0] - 0.4)
    assert f["spec_ready"] == pytest.approx(-0.2)  # ready 0.2 s before the question ended
    parts = f["endpoint_wait"] + f["asr_wait"] + f["vlm_to_chunk"] + f["tts"] + f["overhead"]
    assert parts == pytest.approx(f["voice_to_voice"])
    assert f["to_asr"] + f["to_vlm"] + f["to_tts"] + f["to_speaker"] == pytest.approx(f["overhead"])
    tl["asr"] = [detected - 0.2, detected + 0.1]  # started in the silence, finished after the decision
    assert bench_report.turn_figures(tl)["asr_wait"] == pytest.approx(0.1)
    # the prepared frame was still being encoded when the question was known: the turn waited for it
    tl["asr"] = [detected - 0.45, detected - 0.05]
    tl["prepares"] = [[tl["speech"][0] + 0.4, detected + 0.2]]
    tl["speculation"] = {"vision": "reused"}
    f = bench_report.turn_figures(tl)
    assert f["spec_wait"] == pytest.approx(0.2) and f["to_vlm"] == pytest.approx(tl["vlm_call"] - detected - 0.2)
    parts = f["endpoint_wait"] + f["asr_wait"] + f["spec_wait"] + f["vlm_to_chunk"] + f["tts"] + f["overhead"]
    assert parts == pytest.approx(f["voice_to_voice"])


def test_an_answer_begun_before_the_decision_is_timed_on_its_critical_path():
    tl = timeline()  # speech ends at 2.0, the endpointer decides at 2.60
    shift = -0.5  # ASR, the VLM call and every forward half a second earlier: begun on the early transcript
    tl["asr"] = [2.10, 2.40]
    tl["vlm_call"] += shift
    tl["forwards"] = [[a + shift, b + shift] for a, b in tl["forwards"]]
    tl["vision"] = None
    f = bench_report.turn_figures(tl)  # the chunk (ready 3.09) came after the decision: the answer's chain
    assert f["path"] == "early answer" and f["wait"] == pytest.approx(0.10) and f["asr_wait"] == pytest.approx(0.30)
    assert f["to_vlm"] == pytest.approx(0.005)  # transcript -> VLM call
    parts = f["wait"] + f["asr_wait"] + f["spec_wait"] + f["vlm_on_path"] + f["tts"] + f["overhead"]
    assert parts == pytest.approx(f["voice_to_voice"])
    assert f["to_asr"] + f["to_vlm"] + f["to_tts"] + f["to_speaker"] == pytest.approx(f["overhead"])
    shift = -1.2  # so early that the chunk waited for the decision: the endpointer's chain
    tl["asr"] = [1.3, 1.6]
    tl["vlm_call"] = 2.905 + shift
    tl["forwards"] = [[a + shift, b + shift] for a, b in timeline()["forwards"]]
    f = bench_report.turn_figures(tl)
    assert f["path"] == "endpointer" and f["wait"] == pytest.approx(0.60) and f["vlm_on_path"] == 0.0
    assert f["to_tts"] == pytest.approx(3.592 - 2.60)
    parts = f["wait"] + f["asr_wait"] + f["spec_wait"] + f["vlm_on_path"] + f["tts"] + f["overhead"]
    assert parts == pytest.approx(f["voice_to_voice"])


def test_vision_inside_the_first_forward_is_taken_out_of_prefill():
    f = bench_report.turn_figures(timeline(vision_inside=True))
    assert f["vision"] == pytest.approx(0.18) and f["prefill"] == pytest.approx(0.30 - 0.18)
    assert f["preprocess"] == pytest.approx(3.10 - 2.905)


def test_summarize_uses_linear_percentiles_and_skips_missing():
    s = bench_report.summarize([*range(1, 11), None])
    assert s["p50"] == pytest.approx(5.5) and s["p95"] == pytest.approx(9.55) and s["n"] == 10
    assert bench_report.summarize([None])["p50"] is None


def test_targets_say_whether_met_and_by_how_much():
    t = bench_report.check_targets({"voice_to_voice": {"p50": 1.4}, "naive_ratio": 4.5, "overhead": {"p95": 0.01},
                                    "idle_cpu_pct": 6.0})
    assert t["voice_to_voice.p50"]["met"] is False and t["voice_to_voice.p50"]["miss_by"] == pytest.approx(0.7)
    assert t["naive_ratio"]["met"] is True and t["naive_ratio"]["miss_by"] is None
    assert t["overhead.p95"]["met"] is True
    assert t["idle_cpu_pct"]["met"] is False and t["idle_cpu_pct"]["miss_by"] == pytest.approx(1.0)
    # the realistic scenario has its own goals, p95 among them
    r = bench_report.check_targets({"voice_to_voice": {"p50": 0.8, "p95": 1.5}, "naive_ratio": 2.5},
                                   bench_report.REALISTIC_TARGETS)
    assert r["voice_to_voice.p50"]["met"] is True
    assert r["voice_to_voice.p95"]["met"] is False and r["voice_to_voice.p95"]["miss_by"] == pytest.approx(0.1)
    assert r["naive_ratio"]["met"] is False and r["naive_ratio"]["miss_by"] == pytest.approx(0.5)


def raw_result(dtype="float32"):
    turns = [timeline(10.0 * i) for i in range(3)]
    naive = [{"question": "What is this?", "endpoint_wait": 0.6, "asr": 0.3, "vision": 1.0, "prefill": 0.2,
              "vlm": 2.0, "tts": 0.05, "voice_to_voice": 2.95 + 0.1 * i} for i in range(3)]
    return {"dtype": dtype, "vlm_dir": "v", "asr_dir": "a", "load_s": 1.0, "warmup_s": 1.0, "prompt_tokens": 150,
            "answer_tokens": 33, "first_chunk_tokens": 4, "first_chunk_text": "It looks like a red mug,",
            "silence": 0.6, "scenario": {"duration": 30.0, "questions": [{}] * 3},
            "idle": {"cpu_pct_of_one_core": 2.0}, "session": {"wall_s": 30.0, "cpu_s": 9.0, "records": {}},
            "naive_run": {"wall_s": 9.0, "cpu_s": 8.0}, "peak_rss_mb": 900.0, "turns": turns, "naive": naive}


def test_report_has_every_field_a_table_and_a_chart(tmp_path):
    report = bench_report.build([raw_result("float32"), raw_result("bfloat16")],
                                {"command": "x", "machine": "m", "date": "2026-11-21"})
    assert report["primary"] == "bfloat16"
    assert bench_report.missing_keys(report) == []
    assert report["naive_ratio"] == pytest.approx(3.05 / 1.6051, rel=1e-3)
    assert report["configs"]["float32"]["typical_turn"] in (0, 1, 2)
    text = bench_report.table(report)
    assert "voice to voice" in text and "bfloat16 p95" in text and "naive / ours" in text
    pytest.importorskip("matplotlib")
    chart = bench_report.waterfall(report, tmp_path / "w.png")
    assert chart.stat().st_size > 10_000
    json.dumps(report)  # plain JSON all the way down


# --- smoke -------------------------------------------------------------------------------
@pytest.mark.slow  # about 25 s: each scenario's two questions played at 1x, then the naive cascade
def test_smoke_run_on_tiny_models_writes_a_complete_report(espeak, tmp_path, capsys):
    from benchmarks import latency as bench

    assert bench.main(["--tiny", "--questions", "2", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    real = report["realistic"]  # the realistic scenario: the same layout, under its own key
    for part, log in ((report, "session-float32.jsonl"), (real, "session-realistic-float32.jsonl")):
        assert bench_report.missing_keys(part) == []
        cfg = part["configs"]["float32"]
        assert cfg["questions"] == 2 and cfg["turns_answered"] >= 1
        for turn in cfg["turns"]:  # the figures add up, on the real session
            parts = (turn["wait"] + turn["asr_wait"] + turn["spec_wait"] + turn["vlm_on_path"] + turn["tts"]
                     + turn["overhead"])
            assert parts == pytest.approx(turn["voice_to_voice"])
            assert 0 < turn["endpoint_wait"] < 2.0 and turn["overhead"] >= 0
            assert 0 <= turn["to_device"] < 0.1  # voice to voice runs to the device callback
        assert cfg["output_device"]["latency_s"] == 0.0 and (tmp_path / log).exists()
        assert part["chart"] is None or (tmp_path / part["chart"]).exists()
    assert report["configs"]["float32"]["turns_answered"] == 2
    assert real["configs"]["float32"]["others_heard"] and real["configs"]["float32"]["others_answered"] == 0
    assert real["configs"]["float32"]["session_config"]["history_turns"] == 3
    out = capsys.readouterr().out
    assert "voice to voice" in out and "## realistic" in out

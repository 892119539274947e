import numpy as np

from pipelines.asr import ASRConfig, guard
from pipelines.vad import EndpointConfig, Endpointer

W = 0.032


def run(probs, config=EndpointConfig()):
    ep = Endpointer(config, window=W)
    events = []
    for i, p in enumerate(probs):
        events += ep.update(p, i * W)
    return ep, events


def test_start_and_end_of_one_utterance():
    probs = [0.0] * 10 + [0.9] * 40 + [0.0] * 30
    _, events = run(probs)
    kinds = [e.kind for e in events]
    assert kinds == ["start", "pause", "end"]
    end = events[-1]
    assert abs(end.start - 10 * W) < 1e-9 and abs(end.end - 50 * W) < 1e-9
    assert end.detected_at - end.end >= EndpointConfig().silence - 1e-9  # the configured silence


def test_short_click_is_not_speech():
    _, events = run([0.0] * 5 + [0.95] * 3 + [0.0] * 40)
    assert events == []


def test_short_pause_does_not_end_the_turn():
    probs = [0.9] * 20 + [0.1] * 10 + [0.9] * 20 + [0.0] * 30  # 0.32 s pause < 0.6 s
    _, events = run(probs)
    assert [e.kind for e in events] == ["start", "pause", "resume", "pause", "end"]


def test_silence_threshold_is_configurable():
    probs = [0.9] * 20 + [0.1] * 10 + [0.9] * 20 + [0.0] * 30
    _, events = run(probs, EndpointConfig(silence=0.25))
    assert sum(e.kind == "end" for e in events) == 2


def test_hysteresis_keeps_speech_through_mid_probabilities():
    _, events = run([0.9] * 20 + [0.4] * 30 + [0.0] * 30)
    ends = [e for e in events if e.kind == "end"]
    assert len(ends) == 1 and abs(ends[0].end - 50 * W) < 1e-9


def test_max_utterance_forces_an_end_and_flush_closes_an_open_one():
    _, events = run([0.9] * 100, EndpointConfig(max_utterance=2.0))
    assert any(e.kind == "end" for e in events)
    ep, events = run([0.9] * 20)
    assert [e.kind for e in ep.flush(1.0)] == ["end"]


def test_hallucination_guard():
    cfg = ASRConfig()
    loud = np.full(16000, 0.1, np.float32)
    assert guard("what is this", 0.1, loud, cfg) == ""
    assert "noise floor" in guard("what is this", 0.1, loud * 1e-4, cfg)
    assert "no-speech" in guard("what is this", 0.9, loud, cfg)
    assert "phantom" in guard("Thanks for watching!", 0.1, loud, cfg)
    assert guard("  ", 0.1, loud, cfg) == "empty"


def test_audio_history_cuts_across_chunks_and_forgets_old_audio():
    from core.audio import AudioHistory

    h = AudioHistory(keep=1.0, rate=10)
    for i in range(30):  # 3 s at 10 Hz, one sample a chunk, each sample its own index
        h.append(i / 10, np.array([i], np.float32))
    assert h.between(2.5, 2.8).tolist() == [25.0, 26.0, 27.0]
    assert h.between(0.0, 0.5).size == 0  # older than `keep`: gone
    assert h.between(2.9, 9.0).tolist() == [29.0]

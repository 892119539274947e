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


def pause_of(probs, config=EndpointConfig()):
    """An endpointer fed speech then silence until its first pause: (endpointer, events, next window index)."""
    ep, events = Endpointer(config, window=W), []
    for i, p in enumerate(probs):
        events += ep.update(p, i * W)
        if events and events[-1].kind == "pause":
            return ep, events, i + 1
    raise AssertionError("no pause")


def test_a_verdict_sets_the_silence_the_pause_needs_and_ends_it_at_once_when_it_has_lasted():
    ep, _, i = pause_of([0.9] * 30 + [0.0] * 100)
    assert ep.wait_for(1.2) == []  # held open: the configured 0.5 s no longer ends it
    for k in range(i, i + 20):  # 0.64 s of silence
        assert ep.update(0.0, k * W) == []
    (end,) = ep.wait_for(0.1)  # "finished": the pause is already longer than that
    assert end.kind == "end" and abs(end.end - 30 * W) < 1e-9 and abs(end.detected_at - (i + 20) * W) < 1e-9
    assert not ep.in_speech and ep.wait_for(0.1) == []


def test_an_unfinished_verdict_waits_longer_and_speech_that_resumes_restores_the_silence():
    ep, events, i = pause_of([0.9] * 30 + [0.0] * 100)
    assert ep.wait_for(1.0) == []
    k = i
    while not any(e.kind == "end" for e in events):
        events += ep.update(0.0, k * W)
        k += 1
    assert abs(events[-1].detected_at - events[-1].end - 1.0) < W + 1e-9  # the verdict's silence, not 0.5 s
    # a pause told to wait long, then speech again: the next pause needs the configured silence
    ep, events, i = pause_of([0.9] * 30 + [0.0] * 5)
    ep.wait_for(2.0)
    probs = [0.9] * 10 + [0.0] * 30
    for k, p in enumerate(probs, start=i):
        events += ep.update(p, k * W)
    end = [e for e in events if e.kind == "end"][-1]
    assert abs(end.detected_at - end.end - EndpointConfig().silence) < W + 1e-9


def test_a_verdict_outside_a_pause_changes_nothing():
    ep = Endpointer(EndpointConfig(), window=W)
    assert ep.wait_for(0.0) == []  # no speech yet
    for k in range(20):
        ep.update(0.9, k * W)
    assert ep.wait_for(0.0) == [] and ep.in_speech  # speaking, not pausing
    _, events = run([0.9] * 20 + [0.0] * 30)
    assert [e.kind for e in events] == ["start", "pause", "end"]


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

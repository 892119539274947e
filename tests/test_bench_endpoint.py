"""The endpointing curve: label parsing, sentence references, false-end counting, the choice."""
import numpy as np
import pytest

from benchmarks import endpoint as be

TRAIN = {  # sb_vad_train.labels.json, verbatim
    "example_1": {"length": 32000, "wav": {"file": "{data_folder}/train.wav", "start": 0, "stop": 32000},
                  "speech": "0.52 0.85 1.32 1.83"},
    "example_2": {"length": 32000, "wav": {"file": "{data_folder}/train.wav", "start": 32000, "stop": 64000},
                  "speech": "0.35 1.70"},
}
VALID = {  # sb_vad_valid.labels.json: speech runs across the first chunk boundary; the last chunk is silent
    "example_1": {"wav": {"start": 0, "stop": 32000}, "speech": "0.38 2"},
    "example_2": {"wav": {"start": 32000, "stop": 64000}, "speech": "0 0.7"},
    "example_3": {"wav": {"start": 64000, "stop": 96000}, "speech": "0.1 1.88"},
    "example_4": {"wav": {"start": 96000, "stop": 128000}, "speech": ""},
}


def flat(pairs):
    return [x for pair in pairs for x in pair]


def test_labels_become_clip_times_and_join_across_chunk_edges():
    segments, span = be.parse_labels(TRAIN)
    assert flat(segments) == pytest.approx([0.52, 0.85, 1.32, 1.83, 2.35, 3.70])
    assert span == (0.0, 4.0)
    segments, span = be.parse_labels(VALID)
    assert flat(segments) == pytest.approx([0.38, 2.70, 4.10, 5.88]) and span == (0.0, 8.0)
    with pytest.raises(ValueError):
        be.parse_labels({"x": {"wav": {"start": 0, "stop": 10}, "speech": "0.1 0.2 0.3"}})


def test_sentences_are_split_at_the_longest_pauses():
    regions = [(0.0, 1.0), (1.2, 2.0), (3.0, 4.0), (4.3, 5.0)]  # pauses 0.2, 1.0, 0.3
    assert be.split_sentences(regions, 1) == [(0.0, 5.0)]
    assert be.split_sentences(regions, 2) == [(0.0, 2.0), (3.0, 5.0)]
    assert be.split_sentences(regions, 3) == [(0.0, 2.0), (3.0, 4.0), (4.3, 5.0)]
    assert be.split_sentences([], 2) == []


def test_an_end_inside_an_utterance_is_false_and_true_ends_have_waits():
    utterances = [(1.0, 3.0), (5.0, 6.0)]
    ends = [(2.0, 2.5),  # inside the first: the speaker was cut off
            (2.9, 3.5),  # within the tolerance of its end: true, waits 0.5
            (6.0, 6.6),  # true, waits 0.6
            (9.5, 9.9)]  # outside the labelled span: ignored
    r = be.score_ends(ends, utterances, span=(0.0, 8.0))
    assert r["false_ends"] == 1 and r["cut_utterances"] == 1 and r["utterances"] == 2
    assert r["waits"] == pytest.approx([0.5, 0.6])


def test_the_endpointer_ends_at_long_pauses_only_and_is_not_capped():
    w = 0.032
    probs = [0.9] * 30 + [0.0] * 15 + [0.9] * 30 + [0.0] * 40  # a 0.48 s pause, then a long silence
    assert len(be.endpoint(probs, 0.3)) == 2 and len(be.endpoint(probs, 0.6)) == 1
    assert be.endpoint(probs, 0.6)[0].end == pytest.approx(75 * w)
    assert be.endpoint([0.9] * 1000, 0.5) == []  # 32 s of speech: no forced end, no end-of-file end


def rows(rates):
    return [{"silence": round(0.2 + 0.1 * i, 1), "false_end_rate": r} for i, r in enumerate(rates)]


def test_knee_ignores_a_lucky_dip_and_the_choice_adds_a_margin():
    r = rows([0.3, 0.05, 0.2, 0.07, 0.07, 0.0])
    assert be.knee(r)["silence"] == 0.5  # 0.3 s dips under 10 % but 0.4 s does not
    assert be.choose(r)["silence"] == 0.6
    assert be.choose(rows([0.3, 0.2, 0.2])) is None
    assert be.choose(rows([0.3, 0.05]))["silence"] == 0.3  # no longer silence to add the margin to


def test_main_skips_cleanly_without_shared_media(tmp_path, capsys):
    assert be.main(["--media", str(tmp_path / "none"), "--out", str(tmp_path / "out")]) == 0
    assert "skipped" in capsys.readouterr().out and not (tmp_path / "out").exists()


def test_the_curve_on_the_shared_speech(shared_media, tmp_path):
    data = be.clips(shared_media)
    assert {c.reference for c, _ in data} >= {"labels"}
    curve = be.sweep(data)
    assert [r["silence"] for r in curve] == list(be.THRESHOLDS)
    waits = [r["mean_wait"] for r in curve]
    assert waits == sorted(waits)  # a longer silence always waits longer ...
    assert curve[0]["false_end_rate"] >= curve[-1]["false_end_rate"]  # ... and cuts no more often
    chosen = be.choose(curve)
    assert chosen is not None and 0.2 <= chosen["silence"] <= 1.2


# --- the reference for clips with given sentence ends, the hesitant copies, the smart policy ------------
def test_sentences_with_given_ends_are_split_at_the_pause_nearest_each():
    regions = [(0.0, 1.0), (1.2, 2.0), (3.0, 4.0), (4.3, 5.0)]  # pauses 0.2, 1.0, 0.3
    assert be.split_near(regions, (1.05,)) == [(0.0, 1.0), (1.2, 5.0)]  # not at the longest pause
    assert be.split_near(regions, (2.4, 4.1)) == [(0.0, 2.0), (3.0, 4.0), (4.3, 5.0)]
    assert be.split_near([], (1.0,)) == [] and be.split_near(regions[:1], (0.5,)) == [(0.0, 1.0)]


def test_word_gaps_are_dips_of_the_speech_probability_well_inside_the_utterance():
    from benchmarks import endpoint_hesitation as eh

    probs = [0.0] * 10 + [0.99] * 40 + [0.0] * 10
    probs[15], probs[30], probs[33], probs[48] = 0.6, 0.8, 0.3, 0.2  # 15 and 48: too near the edges
    utterance = (10 * eh.W, 50 * eh.W)
    assert [round(t / eh.W - 0.5) for t in eh.word_gaps(probs, utterance)] == [33, 30]  # deepest first
    assert eh.spaced([1.0, 1.2, 2.0, 0.4], 2) == [1.0, 2.0]


def test_a_pause_put_in_makes_one_longer_utterance_of_the_same_audio():
    from benchmarks import endpoint_hesitation as eh

    rate = 16000
    audio = np.zeros(3 * rate, np.float32)
    audio[rate:2 * rate] = 0.5  # "speech" from 1 to 2 s, background of zeros around it
    probs = [0.0] * 31 + [0.99] * 31 + [0.0] * 31
    new, (a, b) = eh.hesitant(audio, probs, (1.0, 2.0), 1.5, 0.7)
    assert a == pytest.approx(eh.LEAD + 0.25) and b - a == pytest.approx(1.0 + 0.7)
    assert len(new) / rate == pytest.approx(eh.LEAD + 1.5 + 0.7 + eh.TRAIL, abs=1e-3)
    loud = np.flatnonzero(new)
    assert loud[0] / rate == pytest.approx(a, abs=1e-3) and loud[-1] / rate == pytest.approx(b, abs=1e-3)
    assert np.count_nonzero(new) == rate  # the same samples of speech, none lost or repeated


def point(threshold, short, long, cut, wait):
    return {"threshold": threshold, "short": short, "long": long, "cut_utterances": cut, "mean_wait": wait}


def test_the_smart_choice_is_the_knee_one_threshold_step_stricter():
    from benchmarks import endpoint_smart as es

    baseline = {"silence": 0.5, "cut_utterances": 20, "mean_wait": 0.6}
    rows = [point(0.5, 0.1, 1.2, 25, 0.20), point(0.7, 0.1, 1.2, 18, 0.25), point(0.8, 0.1, 1.2, 21, 0.30),
            point(0.9, 0.1, 1.2, 15, 0.40), point(0.99, 0.1, 1.2, 2, 1.2),
            point(0.7, 0.2, 1.2, 19, 0.35), point(0.9, 0.2, 1.2, 14, 0.50), point(0.99, 0.2, 1.2, 2, 1.25)]
    knee = es.knee(rows, baseline)
    assert (knee["threshold"], knee["short"]) == (0.7, 0.2)  # 0.7/0.1 dips under the baseline but 0.8/0.1 does not
    chosen = es.choose(rows, baseline)
    assert (chosen["threshold"], chosen["short"]) == (0.9, 0.2) and es.better(chosen, baseline)
    assert es.choose([point(0.9, 0.1, 1.2, 25, 0.2)], baseline) is None
    assert not es.better(point(0.9, 0.1, 1.2, 15, 0.7), baseline)  # fewer cuts, but a longer wait
    assert [(r["cut_utterances"], r["mean_wait"]) for r in es.front(rows)] == [(25, 0.2), (18, 0.25), (15, 0.4),
                                                                               (14, 0.5), (2, 1.2)]


def test_smart_ends_run_through_hearing_with_the_verdicts():
    from benchmarks import endpoint_smart as es
    from pipelines.turn_model import SmartTurnConfig

    w = 512 / 16000
    probs = [0.0] * 10 + [0.95] * 30 + [0.0] * 20 + [0.95] * 30 + [0.0] * 60  # a 0.64 s pause, then the end
    clip = be.Clip("x", np.zeros(len(probs) * 512, np.float32), ((10 * w, 90 * w),), (0.0, len(probs) * w), "test")
    verdicts = iter([0.1, 0.95])  # unfinished at the pause, finished at the end
    ends = es.smart_ends(clip, probs, lambda audio: next(verdicts), SmartTurnConfig(0.9, 0.1, 1.2))
    assert ends == [(pytest.approx(90 * w), pytest.approx(94 * w))]  # one end, 4 windows (0.128 s) after speech
    r = be.score(([clip, probs],), lambda c, p: es.smart_ends(c, p, lambda audio: 0.95, SmartTurnConfig(0.9, 0.1, 1.2)))
    assert r["cut_utterances"] == 1 and r["fluent"]["cut_utterances"] == 1 and r["hesitant"]["utterances"] == 0


def test_the_hesitant_copies_of_the_shared_speech(shared_media):
    from benchmarks import endpoint_hesitation as eh

    fluent = be.clips(shared_media)
    hesitant = eh.clips(fluent)
    assert len(hesitant) >= 6 * len(eh.PAUSES) and all(c.hesitant and len(c.utterances) == 1 for c, _ in hesitant)
    for clip, probs in hesitant:
        (a, b), seconds = clip.utterances[0], len(clip.audio) / 16000
        assert a == pytest.approx(eh.LEAD + 0.25, abs=1e-3) and b < seconds - eh.TRAIL + 0.3
        assert len(probs) == len(clip.audio) // 512


def test_smart_turn_on_jfk_waits_through_his_pauses_and_ends_the_sentence_soon(shared_media):
    from benchmarks import endpoint_smart as es
    from pipelines.turn_model import SmartTurnConfig, load_smart_turn

    model = load_smart_turn()
    if model is None:
        pytest.skip("the Smart Turn model is unavailable (pipecat-ai's wheel is not installed)")
    (clip, probs), = [(c, p) for c, p in be.clips(shared_media) if c.name == "jfk.flac"]
    ends = es.smart_ends(clip, probs, model, SmartTurnConfig())
    # "ask not | what your country can do for you, | ask what you can do for your country": kept whole;
    # only "And so my fellow Americans," sounds finished to the model
    assert [round(e, 1) for e, _ in ends] == [2.2, 10.5]
    assert ends[-1][1] - ends[-1][0] < SmartTurnConfig().short + 0.04


def test_main_without_the_model_reports_the_silence_alone(shared_media, tmp_path, monkeypatch, capsys):
    import json

    from pipelines import turn_model

    monkeypatch.setattr(turn_model, "load_smart_turn", lambda path=None: None)
    assert be.main(["--media", str(shared_media), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "smart policy skipped" in out and "chosen silence (knee + 0.1 s): 0.5 s" in out
    report = json.loads((tmp_path / "endpoint.json").read_text())
    assert report["smart"] is None and report["chosen"] == 0.5 and len(report["silence"]) == len(be.THRESHOLDS)
    assert any(c["hesitant"] for c in report["clips"]) and (tmp_path / "endpoint_curve.png").exists()

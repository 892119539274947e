"""The endpointing curve: label parsing, sentence references, false-end counting, the choice."""
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

"""The load benchmark's pure parts: the question schedule, the figures, the table, the options.

The full run (a server and N real client sessions) is the lead's to run alone: too long for a
test on two shared cores. What it hands to the wearers is checked against demo.py's own parser.
"""
import json

import pytest

from benchmarks import serve_load
from benchmarks.serve_load_report import (QUESTIONS, batching_used, bend, history_of, markdown, percentile,
                                          schedule, server_args, summarize, table, turn_figures)


# --- the schedule -------------------------------------------------------------------------
def test_every_wearer_asks_once_a_period_staggered_and_none_too_late():
    plans = schedule(4, duration=75, period=12, first=3, tail=12, jitter=2, seed=0)
    assert len(plans) == 4
    for i, asks in enumerate(plans):
        times = [t for t, _ in asks]
        assert times == sorted(times)
        assert all(3 <= t <= 75 - 12 for t in times)
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert all(12 - 4 <= g <= 12 + 4 for g in gaps)  # the period, +- twice the jitter
        # wearer i starts i * period / N later: the wearers' questions interleave
        assert times[0] == pytest.approx(3 + 2 + i * 3, abs=2.0)
    firsts = [p[0][0] for p in plans]
    assert firsts == sorted(firsts) and len(set(firsts)) == 4


def test_the_schedule_is_seeded_and_questions_vary():
    a, b = schedule(2, 60, seed=1), schedule(2, 60, seed=1)
    assert a == b and schedule(2, 60, seed=2) != a
    texts = [q for asks in a for _, q in asks]
    assert len(set(texts)) == len(texts)  # consecutive questions differ across all wearers


def test_more_wearers_ask_proportionally_more():
    asked = {n: sum(len(p) for p in schedule(n, 75)) for n in (1, 2, 4, 8)}
    assert asked[1] >= 4 and asked[8] >= 7 * asked[1]


@pytest.mark.parametrize("kwargs, words", [
    (dict(wearers=0, duration=60), "at least 1"),
    (dict(wearers=1, duration=10), "no time for a question"),
    (dict(wearers=1, duration=60, period=3, jitter=2), "twice the jitter"),
])
def test_a_schedule_that_cannot_be_is_one_line(kwargs, words):
    with pytest.raises(ValueError, match=words) as err:
        schedule(**kwargs)
    assert "\n" not in str(err.value)


# --- the figures --------------------------------------------------------------------------
def turn(answer="It is a mug.", cancelled=False, v2v=1.0, ttft=0.5, total=3.0, route="vlm"):
    return {"type": "turn", "question": "What is this?", "answer": answer, "cancelled": cancelled, "route": route,
            "latency": {"voice_to_voice": v2v, "vlm_first_token": ttft, "vlm_total": total}}


def test_every_question_goes_to_the_vlm_through_the_apps_own_skills(tmp_path):
    """A question a skill takes (reading, a price, a timer) would put no load on the server."""
    from pipelines.app.common import AssistantOptions
    from pipelines.app.skills import build_skills, open_catalog
    from pipelines.router import route

    skills = build_skills(AssistantOptions(), tmp_path, open_catalog(None), None, blur=False, realtime=True)  # as replay does
    try:
        taken = {q: route(q, "instant", skills.skills).name for q in QUESTIONS
                 if route(q, "instant", skills.skills).target != "vlm"}
    finally:
        skills.close()
    assert taken == {}


def test_percentile_interpolates_and_ignores_missing():
    assert percentile([1, 2, 3, 4, 5], 0.5) == 3
    assert percentile([1, 2, 3, 4, 5], 0.95) == pytest.approx(4.8)
    assert percentile([None, 2.0], 0.5) == 2.0 and percentile([], 0.5) is None


def test_turns_are_sorted_into_heard_cut_and_failed():
    records = [{"type": "session"}, turn(v2v=1.0), turn(cancelled=True, v2v=2.0),  # heard, then cut: heard
               turn(cancelled=True, answer="It is", v2v=None),  # cut in the queue: nothing reached the ear
               turn(answer="", v2v=0.2, ttft=None),  # failed: the apology was spoken, it is no answer
               turn(answer="frame 88", v2v=0.3, route="skill"),  # a skill's: no load on the server
               {"type": "error", "stage": "answer", "message": "the VLM server at 127.0.0.1:1 sent nothing"}]
    f = turn_figures(records)
    assert (f["turns"], f["skill"], f["heard"], f["whole"], f["cut"], f["failed"]) == (5, 1, 2, 1, 1, 1)
    assert f["v2v"] == [1.0, 2.0]  # not the apology's 0.2, not the skill's 0.3
    assert f["errors"] == ["the VLM server at 127.0.0.1:1 sent nothing"]


def test_summarize_pools_the_wearers_and_counts_answers_per_minute():
    sessions = [[turn(v2v=1.0), turn(v2v=3.0)], [turn(v2v=2.0), turn(cancelled=True, v2v=None)]]
    row = summarize(2, sessions, asked=5, window=30.0, cpu={"server_cores": 1.5, "server_pct": 75.0},
                    tokens={"completion_tokens": 60, "prompt_tokens": 158})
    assert row["heard"] == 3 and row["cut"] == 1 and row["asked"] == 5
    assert row["v2v_p50"] == 2.0 and row["v2v_p95"] == pytest.approx(2.9)
    assert row["answers_per_min"] == 6.0  # 3 answers heard in 30 s
    assert row["gen_tokens"] == 60 and row["server_cores"] == 1.5


def rows():
    cpu = {"server_cores": 1.0, "server_pct": 50.0, "clients_cores": 0.2, "others_cores": 0.0}
    one = summarize(1, [[turn(v2v=1.0)] * 5], 5, 60.0, cpu, {"completion_tokens": 60})
    two = summarize(2, [[turn(v2v=1.1)] * 5] * 2, 10, 60.0, cpu, {"completion_tokens": 60})
    four = summarize(4, [[turn(v2v=6.0)] * 3 + [turn(cancelled=True, v2v=None)] * 2] * 4, 20, 60.0, cpu, None)
    return [one, two, four]


def test_the_table_has_a_cell_for_every_column_and_dashes_for_unknowns():
    text = table(rows())
    lines = text.splitlines()
    assert len(lines) == 2 + 3
    widths = {line.count("|") for line in lines}
    assert len(widths) == 1  # every row as wide as the header
    assert lines[2].startswith("| 1 | 5 / 5 | 0 / 0 | 1.00 | 1.00 |")
    assert lines[4].endswith("| - |")  # no token figure for that row


def test_the_bend_is_where_answers_stop_growing_or_latency_doubles():
    r = rows()
    assert "between 2 and 4 wearers" in bend(r)
    assert bend(r[:2]).startswith("No bend")


def test_the_report_says_what_ran():
    meta = {"date": "2026-11-29T10:00:00", "command": "python -m benchmarks.serve_load --quick",
            "machine": "x86_64 AMD EPYC, 2 cores", "versions": "torch 2.13.0", "server": "transformers serve",
            "wearers_note": "replay --pace realtime", "notes": ["a note"]}
    text = markdown(meta, rows())
    for part in ("--quick", "AMD EPYC", "torch 2.13.0", "| wearers |", "bends", "a note"):
        assert part in text


def test_batching_is_read_from_the_servers_log():
    assert "not used" in batching_used("Idefics3ForConditionalGeneration does not support continuous batching.")
    assert batching_used("[Request received] Model: m, CB: True") == "used"
    assert batching_used("[Request received] Model: m, CB: False") == "not asked for"
    assert batching_used("").startswith("unknown")


def test_history_comes_from_answered_turns_of_one_wearer():
    sessions = [[turn()], [turn(answer="a"), turn(answer=""), turn(answer="b"), turn(answer="c")]]
    assert history_of(sessions) == (("What is this?", "a"), ("What is this?", "b"), ("What is this?", "c"))
    assert history_of([[turn()]]) == ()


# --- what the wearers and the server are given --------------------------------------------
def test_each_wearer_runs_the_apps_own_command_line(tmp_path):
    import demo

    cmd = serve_load.client_command(tmp_path / "ready", tmp_path / "clip.mp4", tmp_path / "w0",
                                    "http://127.0.0.1:8000/v1", "/models/x", [(3.5, "What is this?"), (15.0, "Is it red?")])
    assert cmd[1:4] == ["-m", "benchmarks.serve_load", "client"]
    args = demo.build_parser().parse_args(cmd[5:])  # the real parser: a renamed flag fails here
    assert args.command == "replay" and args.pace == "realtime" and args.no_video
    assert args.vlm_url == "http://127.0.0.1:8000/v1" and args.vlm == "/models/x" and args.models == "tiny-random"
    assert args.ask == [(3.5, "What is this?"), (15.0, "Is it red?")]


def test_the_server_processes_images_as_the_app_does_unless_told(tmp_path):
    (tmp_path / "processor_config.json").write_text(json.dumps({"image_processor": {"max_image_size": {"longest_edge": 384}}}))
    args = server_args(tmp_path, "bfloat16", batching=True, splitting=False)
    assert args[:3] == ["--dtype", "bfloat16", "--continuous-batching"]
    kwargs = json.loads(args[args.index("--chat-template-kwargs") + 1])
    assert kwargs == {"processor_kwargs": {"do_image_splitting": False, "size": {"longest_edge": 384}}}
    plain = server_args(tmp_path, "float32", batching=False, splitting=True)
    assert plain == ["--dtype", "float32", "--no-continuous-batching"]


@pytest.mark.parametrize("argv, words", [
    (["--duration", "5"], "no time for a question"),
    (["--wearers", "0,2"], "--wearers wants numbers"),
    (["--period", "x"], "--period"),
])
def test_bad_options_are_one_line_and_exit_2_without_starting_anything(argv, words, capsys, tmp_path):
    try:
        code = serve_load.main([*argv, "--out", str(tmp_path / "out")])
    except SystemExit as leave:  # argparse's own exit
        code = leave.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_used_out_folder_is_refused(tmp_path, capsys):
    (tmp_path / "serve_load.md").write_text("earlier run")
    assert serve_load.main(["--quick", "--out", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err


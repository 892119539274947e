"""`demo.py memory DIR ...` as a user runs it: list, search, show, forget, and one line (exit 2)
for every bad input."""
import math
import subprocess
import sys
import time

import pytest

from pipelines.memory.cli import ago_words, when_words
from pipelines.memory.store import MemoryStore
from tests.cli_helpers import BASE_ENV, ROOT, one_line_error, run_demo

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 20 + b"\xff\xd9"


def demo(*args, cwd=None):
    """demo.py with stdin that is not a terminal (as in a script), so nothing can wait for a key."""
    return subprocess.run([sys.executable, str(ROOT / "demo.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=60, stdin=subprocess.DEVNULL, env={**BASE_ENV, "HF_HUB_OFFLINE": "1"})


@pytest.fixture
def memory(tmp_path):
    """A memory folder with two entries (one with a thumbnail) and one fact; (folder, ids)."""
    folder = tmp_path / "mem"
    now = time.time()
    with MemoryStore(folder, session="abc", days=math.inf) as s:
        keys = s.add(wall=now - 240, media=None, caption="red keys on the kitchen counter next to the kettle",
                     text="", objects=["keys", "kettle"], thumbnail=JPEG)
        board = s.add(wall=now - 60, media=42.0, caption="a whiteboard in the meeting room", text="Q3 launch: Friday",
                      objects=["whiteboard"])
        fact = s.add_fact("my parking spot is B12", now - 30)
    return folder, {"keys": keys, "board": board, "fact": fact}


def test_list_shows_entries_newest_first_and_facts(memory):
    folder, ids = memory
    proc = demo("memory", folder, "list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"memory in {folder}: 2 entries, 1 fact,")
    assert lines[1].startswith(f"#{ids['board']}  today ") and "(1 min ago)" in lines[1] and '"Q3 launch: Friday"' in lines[1]
    assert lines[2].startswith(f"#{ids['keys']}  today ") and "(4 min ago)" in lines[2] and "[thumbnail]" in lines[2]
    assert lines[3].startswith(f"fact {ids['fact']}  today ") and lines[3].endswith("my parking spot is B12")
    one = demo("memory", folder, "list", "--limit", "1").stdout
    assert f"#{ids['keys']}" not in one and "... and 1 older (--limit 0 lists them all)" in one


def test_search_ranks_what_a_question_would_recall(memory):
    folder, ids = memory
    proc = demo("memory", folder, "search", "where", "did", "I", "leave", "my", "keys?")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("score ") and f"#{ids['keys']}" in proc.stdout.splitlines()[0]
    assert f"#{ids['board']}" not in proc.stdout
    assert "nothing kept matches" in demo("memory", folder, "search", "passport").stdout
    assert "nothing to search for" in one_line_error(demo("memory", folder, "search", "where", "is", "it"))


def test_show_writes_the_thumbnail_and_never_replaces_a_file(memory, tmp_path):
    folder, ids = memory
    out = tmp_path / "keys.jpg"
    proc = demo("memory", folder, "show", ids["keys"], "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == JPEG and (out.stat().st_mode & 0o077) == 0
    assert "red keys on the kitchen counter" in proc.stdout and f"written to {out}" in proc.stdout
    assert "already exists and is kept" in one_line_error(demo("memory", folder, "show", ids["keys"], "--out", out))
    assert out.read_bytes() == JPEG
    here = demo("memory", folder, "show", ids["keys"], cwd=tmp_path)
    assert here.returncode == 0 and (tmp_path / f"memory-{ids['keys']}.jpg").read_bytes() == JPEG
    board = demo("memory", folder, "show", ids["board"], cwd=tmp_path)
    assert "thumbnail: none kept" in board.stdout and "0:42 into a replay" in board.stdout
    assert "Q3 launch: Friday" in board.stdout and "session abc" in board.stdout
    assert "no entry 999" in one_line_error(demo("memory", folder, "show", 999))
    assert "cannot write" in one_line_error(demo("memory", folder, "show", ids["keys"], "--out", tmp_path / "no" / "x.jpg"))


def test_forget_an_entry_a_fact_and_everything(memory):
    folder, ids = memory
    proc = demo("memory", folder, "forget", ids["keys"])
    assert proc.returncode == 0 and f"forgot entry {ids['keys']}" in proc.stdout, proc.stderr
    assert "no entry" in one_line_error(demo("memory", folder, "forget", ids["keys"]))
    assert f"forgot fact {ids['fact']}" in demo("memory", folder, "forget", "--fact", ids["fact"]).stdout
    assert "no fact" in one_line_error(demo("memory", folder, "forget", "--fact", ids["fact"]))
    line = one_line_error(demo("memory", folder, "forget", "--all"))
    assert "add --yes" in line and "1 entry and 0 facts" in line
    assert "1 entry," in demo("memory", folder, "list").stdout  # nothing was deleted
    proc = demo("memory", folder, "forget", "--all", "--yes")
    assert proc.returncode == 0 and "forgot everything" in proc.stdout, proc.stderr
    assert demo("memory", folder, "list").stdout.startswith(f"memory in {folder}: 0 entries, 0 facts")
    assert b"whiteboard" not in (folder / "memory.db").read_bytes()


def test_bad_inputs_get_one_line_and_exit_2(memory, tmp_path):
    folder, ids = memory
    assert "no memory folder" in one_line_error(demo("memory", tmp_path / "missing", "list"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no memory" in one_line_error(demo("memory", empty, "list"))
    assert list(empty.iterdir()) == []  # looking creates nothing
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    (other / "memory.db").write_text("not a database\n" * 20)
    assert "not SQLite" in one_line_error(demo("memory", other, "list"))
    assert (other / "memory.db").read_text() == "not a database\n" * 20
    assert "forget wants one of" in one_line_error(demo("memory", folder, "forget"))
    assert "forget wants one of" in one_line_error(demo("memory", folder, "forget", ids["keys"], "--all", "--yes"))
    assert "whole number" in one_line_error(demo("memory", folder, "show", "abc"))
    assert "whole number" in one_line_error(demo("memory", folder, "forget", "0"))
    assert "required" in one_line_error(demo("memory", folder))
    assert "invalid choice" in one_line_error(demo("memory", folder, "remember", "x"))
    assert "required" in one_line_error(run_demo("memory"))
    assert demo("memory", folder, "list").stdout.startswith(f"memory in {folder}: 2 entries")  # all still there


def test_time_words():
    assert [ago_words(s) for s in (-3600, 5, 90, 4000, 90000, 300000)] == \
        ["in the future", "just now", "1 min ago", "1 h ago", "1 day ago", "3 days ago"]
    now = time.mktime((2026, 11, 28, 15, 30, 0, 0, 0, -1))  # local time
    assert when_words(now - 240, now) == "today 15:26 (4 min ago)"
    assert when_words(time.mktime((2026, 11, 27, 9, 12, 0, 0, 0, -1)), now).startswith("yesterday 09:12 (")
    assert when_words(time.mktime((2026, 11, 24, 9, 12, 0, 0, 0, -1)), now).startswith("Tue 09:12 (4 days ago")
    assert when_words(time.mktime((2026, 10, 3, 9, 12, 0, 0, 0, -1)), now).startswith("3 Oct 2026 09:12 (")


class Terminal:
    """stdin as a terminal that answers one line (or is interrupted)."""

    def __init__(self, answer):
        self.answer = answer

    def isatty(self):
        return True

    def readline(self):
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def test_forget_all_asks_in_a_terminal(memory, capsys):
    from pipelines.memory.cli import MemoryOptions, run_memory

    folder, _ = memory
    opts = MemoryOptions(folder=folder, action="forget", all=True)
    assert run_memory(opts, stdin=Terminal("\n")) == 0
    assert "[y/N]" in capsys.readouterr().out
    assert run_memory(opts, stdin=Terminal(KeyboardInterrupt())) == 130
    assert run_memory(opts, stdin=Terminal("nope\n")) == 0
    assert "nothing was forgotten" in capsys.readouterr().out
    with MemoryStore(folder, days=math.inf) as s:
        assert s.counts()["entries"] == 2 and s.counts()["facts"] == 1
    assert run_memory(opts, stdin=Terminal("y\n")) == 0
    assert "forgot everything: 2 entries and 1 fact" in capsys.readouterr().out
    with MemoryStore(folder, days=math.inf) as s:
        assert s.counts()["entries"] == 0 and s.counts()["facts"] == 0

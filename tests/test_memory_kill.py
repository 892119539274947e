"""Kill safety: a process writing to the memory is killed (SIGKILL) at random moments, 20 times.
Every time the database opens and holds every entry the writer reported as committed."""
import math
import random
import signal
import subprocess
import sys
import time

from pipelines.memory.store import MemoryStore
from tests.cli_helpers import ROOT

# The writer prints an entry's id only after `add` returned, i.e. after the commit.
WRITER = """
import os, sys, time
sys.path.insert(0, sys.argv[3])
from pipelines.memory.store import MemoryStore
store = MemoryStore(sys.argv[1], session=sys.argv[2], days=float("inf"))
i = 0
while True:
    i += 1
    entry = store.add(wall=time.time(), media=None, caption=f"{sys.argv[2]} entry {i}: a red mug on the counter",
                      text=f"label {i}", objects=["mug", "counter"], thumbnail=os.urandom(3000))
    print(entry, flush=True)
    if i % 25 == 0:
        print("fact", store.add_fact(f"{sys.argv[2]} fact {i}", time.time()), flush=True)
"""


def reported(stdout: str) -> tuple[list[int], list[int]]:
    """The entry and fact ids on complete lines (a kill can cut the last line short)."""
    entries, facts = [], []
    for line in stdout.splitlines(keepends=True):
        if not line.endswith("\n"):
            continue
        words = line.split()
        if len(words) == 1 and words[0].isdigit():
            entries.append(int(words[0]))
        elif len(words) == 2 and words[0] == "fact" and words[1].isdigit():
            facts.append(int(words[1]))
    return entries, facts


def test_killed_writers_lose_nothing_committed(tmp_path):
    seed = time.time_ns()
    rng = random.Random(seed)
    folder = tmp_path / "mem"
    committed: dict[int, str] = {}
    facts_committed: set[int] = set()
    started = time.monotonic()
    for round_ in range(20):
        tag = f"round{round_}"
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(folder), tag, str(ROOT)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.0, 0.6))  # sometimes while it opens, mostly while it writes
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL, f"seed {seed} round {round_}: the writer ended early: {err}"
        entries, facts = reported(out)
        with MemoryStore(folder, days=math.inf) as store:  # opens: not damaged, not refused
            for i, entry_id in enumerate(entries, start=1):
                committed[entry_id] = f"{tag} entry {i}: a red mug on the counter"
            for entry_id, caption in committed.items():
                entry = store.get(entry_id)
                assert entry is not None and entry.caption == caption, f"seed {seed} round {round_}: lost {entry_id}"
            assert store.counts()["entries"] >= len(committed)
            facts_committed.update(facts)
            kept = {f.id for f in store.facts()}
            assert facts_committed <= kept, f"seed {seed} round {round_}: lost facts {facts_committed - kept}"
            if entries:
                assert store.thumbnail(entries[-1]) is not None
    assert len(committed) > 20, f"seed {seed}: the writers hardly wrote: the kills proved little"
    assert time.monotonic() - started < 60

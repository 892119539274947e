"""The latency benchmark's timing hooks: wrappers that note when the real ASR, TTS and speaker
did what, and a monitor of the CPU that other processes take (see benchmarks/latency.py)."""
from __future__ import annotations

import functools
import os
import resource
import threading
from collections import deque
from dataclasses import replace
from pathlib import Path

from benchmarks.scenario import Scenario
from glasses.fakes import FakeOutputStream
from glasses.speaker import SoundDeviceSpeaker
from glasses.speaker import MixSpeaker


WAKE = "hey glasses"  # said before every scenario question, so each is one (an empty phrase no longer does that)


# --- stage and port wrappers that time what they do -------------------------------------
class ScenarioASR:
    """Runs the real ASR stage on every utterance (its cost is real) and passes on what was said:
    random-weight transcripts do not matter. A scenario that lists its stretches of voice (the
    realistic one) gives the words said inside the cut, whoever said them; otherwise the text is
    the wake phrase and the question the cut overlaps."""

    def __init__(self, stage, scenario: Scenario, clock):
        self.stage, self.scenario, self.clock = stage, scenario, clock
        self.log: list[dict] = []

    def process(self, utt):
        t0 = self.clock.now()
        tr = self.stage.process(utt)
        t1 = self.clock.now()
        k = self.scenario.question_at(utt.start, utt.end)
        words = self.scenario.words_between(utt.start, utt.end)
        self.log.append({"start": utt.start, "end": utt.end, "detected": utt.detected_at, "t0": t0, "t1": t1,
                         "question": k, "early": utt.early, "words": words})
        if words is not None:
            return replace(tr, text=words, dropped="" if words else "empty")
        if k is None:
            return tr
        return replace(tr, text=f"{WAKE}, {self.scenario.questions[k].text}", dropped="")


class TimedTTS:
    """The real TTS; records when each piece was submitted and when its audio was ready."""

    def __init__(self, inner, clock):
        self.inner, self.clock = inner, clock
        self.log: list[dict] = []

    def submit(self, text: str):
        rec = {"text": text, "submit": self.clock.now(), "done": None}
        self.log.append(rec)
        future = self.inner.submit(text)
        # Added before the session's own callback, so it runs first: "done" is when audio exists.
        future.add_done_callback(lambda f: rec.__setitem__("done", self.clock.now()))
        return future


class TimingSpeaker(MixSpeaker):
    """The replay speaker, noting the moment each clip is handed over (voice-to-voice ends there)."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock
        self.log: list[dict] = []

    def play(self, audio, at):
        hand = self.clock.now()
        start, end = super().play(audio, at)
        self.log.append({"text": audio.text, "hand": hand, "start": start, "end": end})
        return start, end



class QuietFakeOutput(FakeOutputStream):
    """glasses.fakes.FakeOutputStream keeping only its last second of blocks: flat memory."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.blocks = deque(maxlen=int(self.rate / self.block))


class DeviceSpeaker(SoundDeviceSpeaker):
    """The live speaker (glasses.speaker.SoundDeviceSpeaker) over a fake output device whose callback
    runs every 10 ms in real time. It notes when each clip is handed over (`hand`) and when the
    callback sends its first sample to the device (`device`): voice to voice ends there. What the
    device adds after that is its output latency (`latency`, reported apart)."""

    def __init__(self, clock, rate: int = 48000):
        self.clock = clock
        self.log: list[dict] = []
        self._waiting: dict[int, tuple] = {}  # id(samples) -> (samples, record): clips not yet sent
        super().__init__(None, clock.now, rate=rate, block_s=0.01,
                         stream_factory=functools.partial(QuietFakeOutput, now=clock.now))

    def play(self, audio, at):
        hand = self.clock.now()
        start, end = super().play(audio, at)
        rec = {"text": audio.text, "hand": hand, "start": start, "end": end, "device": None}
        with self._lock:
            if self._pending:  # the clip just queued (resampled to the device rate) is the last
                self._waiting[id(self._pending[-1])] = (self._pending[-1], rec)
        self.log.append(rec)
        return start, end

    def clear(self, at: float) -> None:
        super().clear(at)
        with self._lock:
            self._waiting.clear()  # cleared before a sample went out: never sent

    def _callback(self, outdata, frames, time_info, status) -> None:
        t = self._now()
        super()._callback(outdata, frames, time_info, status)
        with self._lock:
            queued = {id(p) for p in self._pending}
            head = id(self._pending[0]) if self._pending else None
            for key, (_, rec) in list(self._waiting.items()):
                # sent from this block on: now partly out (the head), or all of it out already
                if (key == head and self._offset > 0) or key not in queued:
                    rec["device"] = t
                    del self._waiting[key]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime



def _thread_cpu() -> dict[str, float]:
    """CPU seconds of each named Python thread (Linux /proc; empty elsewhere)."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for th in threading.enumerate():
        try:
            fields = Path(f"/proc/self/task/{th.native_id}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        out[th.name] = out.get(th.name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def _machine_busy() -> float | None:
    """Busy CPU seconds of the whole machine since boot (Linux /proc/stat; None elsewhere)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class LoadMonitor:
    """Every `period` s, the machine's busy CPU and our own: the difference is other processes'
    work on the same cores. On a shared machine a run must say whether it was disturbed."""

    def __init__(self, clock, period: float = 0.25):
        self.clock, self.period = clock, period
        self.samples: list[tuple[float, float, float]] = []  # (session time, machine busy s, own CPU s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-monitor", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            busy = _machine_busy()
            if busy is not None:
                self.samples.append((self.clock.now(), busy, _cpu()))
            if self._stop.wait(self.period):
                if busy is not None:
                    self.samples.append((self.clock.now(), _machine_busy(), _cpu()))
                return

    def others(self, t0: float = float("-inf"), t1: float = float("inf")) -> float | None:
        """Mean cores that other processes used between session times t0 and t1."""
        inside = [s for s in self.samples if t0 - self.period <= s[0] <= t1 + self.period]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        (a, busy0, own0), (b, busy1, own1) = inside[0], inside[-1]
        return max(0.0, (busy1 - busy0) - (own1 - own0)) / (b - a)

"""Benchmark: voice-to-voice latency, per stage, against a naive cascade (issue 5).

    python -m benchmarks.latency [--out DIR] [--asr tiny|base] [--dtype float32|bfloat16|both]
                              [--questions N] [--first-chunk-words N] [--silence S] [--pause S] [--tiny]
                              [--no-speculative-vision] [--no-early-asr] [--no-speculative-answer]

A generated scenario (benchmarks/scenario.py: espeak-ng questions with pauses, OpenCV
frames) is played into the real `Session` at 1x on a `WallClock`. Real time, not the fast
replay's `MediaClock`: a fast replay runs hearing and answering in lock-step and charges the
answer's compute to the media timeline afterwards, so it can neither show the overlap of
hearing with answering nor the CPU they take from each other on two cores. Audio reaches the
session as a microphone delivers it: each 32 ms block when its last sample is recorded.

Models are random-weight at the real sizes, loaded by the real loaders: Whisper tiny or base
size (int8, faster-whisper) and a SmolVLM-256M-sized Idefics3 in fp32 and bf16. Random
weights say nothing useful, so:
- every utterance is a question (empty wake phrase: push-to-talk semantics), and the ASR
  stage runs Whisper on the utterance for its real cost but passes on the scenario's text;
- the VLM's tokens are forced to a fixed English answer (bench_scenario.ANSWER): the same
  compute per token, the same number of tokens every run, and text that sentence splitting
  and TTS treat as they would a real answer. Its tokenizer is trained with the system prompt
  and the scenario's words in its corpus, so prompts have about the real token count.

Each dtype runs in a fresh process (its own peak RSS and CPU time), after one warm-up
question, and ends with a naive cascade on the same questions and models: wait for the
utterance, transcribe, encode the last frame, generate the whole answer, synthesize it, play.
A load monitor reads /proc/stat throughout: a configuration that other processes disturbed
(they took more than DISTURBED cores) is run again, and every turn reports what they took.
Output in --out: bench.json, waterfall.png (one typical turn), session-<dtype>.jsonl, and a
table on stdout. Timings come from hooks on the real objects; see bench_report for what each
figure means.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import platform
import resource
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from glasses.speaker import MixSpeaker
from benchmarks.scenario import ANSWER, QUESTIONS, PacedSource, Scenario, make_scenario
from core.messages import SAMPLE_RATE, VLMRequest
from pipelines.text import clean_for_speech, first_piece
from pipelines.vlm import cpu_has_bf16

CACHE_VERSION = "bench-v1"  # bump when the model recipe changes, so stale folders are not reused
ASR_TOKENS = 12  # Whisper's decode is capped here: about the tokens of a short spoken question
IDLE_CHECK = 5.0  # seconds of an idle session (silence and camera frames) to measure its CPU
DISTURBED = 0.25  # cores of other processes' work during a run above which it is run again ...
RETRIES = 2  # ... at most this many times (the report keeps the attempt and the disturbance)


@dataclass(frozen=True)
class BenchOptions:
    out: Path = Path("runs/bench")
    asr: str = "tiny"
    dtypes: tuple[str, ...] = ("float32", "bfloat16")
    questions: int = 10
    first_chunk_words: int | None = None  # None: the session's default first-piece policy
    silence: float | None = None  # None: the session's default endpointing silence
    pause: float = 7.0  # silence after each question: its answer is generated before the next one
    tiny: bool = False
    threads: int = 2
    speculative_vision: bool = True
    early_asr: bool = True
    speculative_answer: bool = True


# --- models ----------------------------------------------------------------------------
def bench_corpus() -> str:
    """Text the bench tokenizer learns its merges from: the words the prompts and answer use."""
    from pipelines.vlm import SYSTEM_PROMPT

    return "\n".join([SYSTEM_PROMPT, *QUESTIONS, ANSWER]) + "\n"


@contextlib.contextmanager
def _corpus(extra: str):
    """pipelines.tiny trains its BPE on a few lines; most words of the real system prompt would
    fall apart into bytes and the prompt would be ~1.6x the real length. Adding our words to
    its corpus for one build gives one token per word, as SmolLM2's 49k vocabulary does."""
    from pipelines import tiny

    saved = tiny._CORPUS
    tiny._CORPUS = (extra * 3) + saved
    try:
        yield
    finally:
        tiny._CORPUS = saved


def bench_models(opts: BenchOptions) -> tuple[Path, Path]:
    """(vlm_dir, whisper_dir), built once under ~/.cache/glasses-assistant/bench-v1/."""
    from pipelines.tiny import _default_cache, _ensure, build_vlm, build_whisper, ensure_tiny_models

    if opts.tiny:
        return ensure_tiny_models()
    root = _default_cache() / "glasses-assistant" / CACHE_VERSION
    root.mkdir(parents=True, exist_ok=True)
    corpus = bench_corpus()
    tag = hashlib.sha1(corpus.encode()).hexdigest()[:8]

    def vlm(d):
        with _corpus(corpus):
            build_vlm(d, "smolvlm-256m")

    return (_ensure(root / f"smolvlm-256m-{tag}", vlm),
            _ensure(root / f"whisper-{opts.asr}", lambda d: build_whisper(d, opts.asr)))


class ForceTokens:
    """A logits processor that makes generation emit `ids` in order: same compute, fixed text."""

    def __init__(self, ids: list[int], prompt_len: int):
        self.ids, self.prompt_len = ids, prompt_len

    def __call__(self, input_ids, scores):
        import torch

        step = min(input_ids.shape[1] - self.prompt_len, len(self.ids) - 1)
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.ids[step]] = 0.0
        return forced


def make_bench_vlm(config, clock):
    """The real HFVLM, plus forced answer tokens and timing hooks (defined here so that
    importing this module does not import torch)."""
    from pipelines.vlm import HFVLM

    class BenchVLM(HFVLM):
        def setup(self) -> None:
            super().setup()
            self.clock = clock
            self.events: list[tuple[str, float]] = []  # (what, session time), appended by hooks
            tok = self.processor.tokenizer
            self.answer_ids = tok(ANSWER, add_special_tokens=False).input_ids
            real_generate = self.model.generate

            def generate(*args, **kwargs):
                from transformers import LogitsProcessorList

                prompt_len = kwargs["input_ids"].shape[1]
                kwargs["logits_processor"] = LogitsProcessorList([ForceTokens(self.answer_ids, prompt_len)])
                return real_generate(*args, **kwargs)

            self.model.generate = generate  # this instance only; vlm.py's stream() is unchanged
            mark = self.events.append
            self.model.register_forward_pre_hook(lambda m, a: mark(("fwd0", self.clock.now())))
            self.model.register_forward_hook(lambda m, a, o: mark(("fwd1", self.clock.now())))
            self.model.model.vision_model.register_forward_pre_hook(lambda m, a: mark(("vis0", self.clock.now())))
            self.model.model.connector.register_forward_hook(lambda m, a, o: mark(("vis1", self.clock.now())))

        def prepare(self, request):
            self.events.append(("prep0", self.clock.now()))
            try:
                return super().prepare(request)
            finally:
                self.events.append(("prep1", self.clock.now()))

        def stream(self, request, cancel):
            self.events.append(("call", self.clock.now()))
            for piece in super().stream(request, cancel):
                self.events.append(("piece", self.clock.now()))
                yield piece

    return BenchVLM(config)


def first_chunk_tokens(tokenizer, ids: list[int], first_words: int) -> tuple[int, str]:
    """How many generated tokens it takes before the first speech chunk can go to TTS.

    Replays TextIteratorStreamer's rule (text is released up to the last space, so a word
    waits for the next token) and the session's first-piece policy on the forced answer.
    """
    text = ""
    for n in range(1, len(ids) + 1):
        text = tokenizer.decode(ids[:n], skip_special_tokens=True)
        released = text if n == len(ids) else text[: text.rfind(" ") + 1]
        ready, _ = first_piece(released, first_words)
        if ready:
            return n, ready[0]
    return len(ids), text.strip()


# --- stage and port wrappers that time what they do -------------------------------------
class ScenarioASR:
    """Runs the real ASR stage on every utterance (its cost is real) and passes on the text of
    the scenario question it overlaps: random-weight transcripts do not matter."""

    def __init__(self, stage, scenario: Scenario, clock):
        self.stage, self.scenario, self.clock = stage, scenario, clock
        self.log: list[dict] = []

    def process(self, utt):
        t0 = self.clock.now()
        tr = self.stage.process(utt)
        t1 = self.clock.now()
        k = self.scenario.question_at(utt.start, utt.end)
        self.log.append({"start": utt.start, "end": utt.end, "detected": utt.detected_at, "t0": t0, "t1": t1,
                         "question": k, "early": utt.early})
        if k is None:
            return tr
        return replace(tr, text=self.scenario.questions[k].text, dropped="")


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


# --- one configuration -------------------------------------------------------------------
def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _quiet() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING, format="%(threadName)s %(name)s: %(message)s")
    for noisy in ("transformers", "huggingface_hub", "faster_whisper"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def build_scenario(opts: BenchOptions) -> Scenario:
    if opts.tiny:
        return make_scenario(opts.questions, pause=opts.pause, lead=0.5)
    return make_scenario(opts.questions, pause=opts.pause)


def run_config(opts: BenchOptions, dtype: str) -> dict:
    """Load, warm up, measure an idle session, run the scenario session, run the naive cascade."""
    _quiet()
    import torch

    from pipelines.asr import ASRConfig, ASRStage, FasterWhisper
    from core.clock import WallClock
    from pipelines.log import SessionLog
    from pipelines.session import Session, SessionConfig
    from pipelines.tts import Pyttsx3TTS
    from pipelines.vad import EndpointConfig, SileroVAD
    from pipelines.vision import fit_for_model
    from pipelines.vlm import SYSTEM_PROMPT, VLMConfig

    torch.set_num_threads(opts.threads)
    scenario = build_scenario(opts)
    vlm_dir, asr_dir = bench_models(opts)
    clock = WallClock()
    t_load = time.perf_counter()
    asr_config = ASRConfig(model=str(asr_dir), language="en", cpu_threads=opts.threads, max_new_tokens=ASR_TOKENS,
                           no_speech_threshold=1.0, min_level_db=-100.0)  # random weights: never drop
    whisper = FasterWhisper(asr_config)
    whisper.setup()
    vlm = make_bench_vlm(VLMConfig(model=str(vlm_dir), dtype=dtype, threads=opts.threads), clock)
    vlm.setup()
    tts = Pyttsx3TTS()
    tts.setup()
    load_s = time.perf_counter() - t_load
    ids = vlm.answer_ids
    first_words = SessionConfig.first_chunk_words if opts.first_chunk_words is None else opts.first_chunk_words
    need, first_text = first_chunk_tokens(vlm.processor.tokenizer, ids, first_words)

    # Warm-up: one question end to end, as an app does once at start (first calls allocate and JIT).
    t_warm = time.perf_counter()
    q0 = scenario.questions[0]
    whisper.transcribe(scenario.audio[int(q0.start * SAMPLE_RATE) : int(q0.end * SAMPLE_RATE)])
    warm = VLMRequest(q0.text, fit_for_model(scenario.frame(q0.end), 512), (), SYSTEM_PROMPT, len(ids))
    prompt_tokens = int(vlm.inputs(warm)["input_ids"].shape[1])
    answer = "".join(vlm.stream(warm, threading.Event()))
    "".join(vlm.stream(replace(warm, prefix=vlm.prepare(warm)), threading.Event()))  # and the speculative path
    tts.submit(clean_for_speech(answer)).result()
    warmup_s = time.perf_counter() - t_warm

    endpoint = EndpointConfig() if opts.silence is None else EndpointConfig(silence=opts.silence)
    config = SessionConfig(wake_phrase="", max_new_tokens=len(ids), first_chunk_words=first_words,
                           history_turns=0, endpoint=endpoint, speculative_vision=opts.speculative_vision,
                           early_asr=opts.early_asr, speculative_answer=opts.speculative_answer,
                           models={"vlm": str(vlm_dir), "asr": str(asr_dir), "dtype": dtype, "random_weights": True})
    asr = ScenarioASR(ASRStage(whisper, asr_config), scenario, clock)
    idle = measure_idle(opts, config, asr.stage, vlm, tts)

    clock = WallClock()  # t = 0 is the scenario's first sample
    speaker, timed_tts = TimingSpeaker(clock), TimedTTS(tts, clock)
    asr.clock = vlm.clock = clock
    vlm.events.clear()
    (opts.out / f"session-{dtype}.jsonl").unlink(missing_ok=True)  # SessionLog appends: one run per file
    log = SessionLog(opts.out / f"session-{dtype}.jsonl")
    source = PacedSource(scenario, clock)
    session = Session(config, source=source, vad=SileroVAD(), asr=asr, vlm=vlm, tts=timed_tts,
                      speaker=speaker, clock=clock, log_=log)
    cpu0, wall0 = _cpu(), time.perf_counter()
    with LoadMonitor(clock) as load:
        session.run()
    session_cpu, session_wall = _cpu() - cpu0, time.perf_counter() - wall0
    log.close()
    turns = timelines(scenario, asr.log, vlm.events, timed_tts.log, speaker.log, need, log.turns())
    for tl in turns:  # did something else on the machine take CPU while this turn was answered?
        tl["others_cores"] = load.others(tl["speech"][1], tl["plays"][0][1])

    cpu0, wall0 = _cpu(), time.perf_counter()
    with LoadMonitor(clock) as naive_load:
        naive = naive_cascade(scenario, endpoint, whisper, vlm, tts, len(ids))
    naive_cpu, naive_wall = _cpu() - cpu0, time.perf_counter() - wall0
    tts.close()
    kinds = [r["type"] for r in log.records]
    return {
        "dtype": dtype, "vlm_dir": str(vlm_dir), "asr_dir": str(asr_dir), "load_s": load_s, "warmup_s": warmup_s,
        "prompt_tokens": prompt_tokens, "answer_tokens": len(ids), "first_chunk_tokens": need,
        "first_chunk_text": first_text, "silence": endpoint.silence, "first_chunk_words": first_words,
        "speculative_vision": opts.speculative_vision, "early_asr": opts.early_asr,
        "speculative_answer": opts.speculative_answer,
        "scenario": {"duration": scenario.duration, "questions": [asdict(q) for q in scenario.questions]},
        "idle": idle,
        "session": {"wall_s": session_wall, "cpu_s": session_cpu, "device_cpu_s": source.device_cpu_s,
                    "other_processes_cores": load.others(), "records": {k: kinds.count(k) for k in sorted(set(kinds))}},
        "naive_run": {"wall_s": naive_wall, "cpu_s": naive_cpu, "other_processes_cores": naive_load.others()},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "turns": turns, "naive": naive,
    }


def measure_idle(opts: BenchOptions, config, asr, vlm, tts) -> dict:
    """CPU of a session with nobody talking: VAD on every block, frames scored, threads waiting.

    Measured in the steady middle of the run (not its start and end), per thread where the OS
    says, and without the CPU spent simulating the microphone and camera.
    """
    from core.clock import WallClock
    from pipelines.log import SessionLog
    from pipelines.session import Session
    from pipelines.vad import SileroVAD

    seconds = 1.0 if opts.tiny else IDLE_CHECK
    settle, span = seconds * 0.2, seconds * 0.7
    noise = np.random.default_rng(1).standard_normal(int(seconds * SAMPLE_RATE)).astype(np.float32) * np.float32(1e-3)
    clock = WallClock()
    source = PacedSource(Scenario(noise, ()), clock)
    session = Session(config, source=source, vad=SileroVAD(), asr=asr, vlm=vlm, tts=tts,
                      speaker=TimingSpeaker(clock), clock=clock, log_=SessionLog(None))
    snaps = []

    def snapshot() -> None:
        snaps.append((_cpu(), time.perf_counter(), source.device_cpu_s, _thread_cpu()))

    sampler = threading.Timer(settle, lambda: (snapshot(), time.sleep(span), snapshot()))
    sampler.start()
    session.run()
    sampler.join()
    (c0, w0, d0, t0), (c1, w1, d1, t1) = snaps
    wall, own = w1 - w0, (c1 - c0) - (d1 - d0)  # the simulated microphone and camera are not the session
    threads = {name: 100.0 * (t1[name] - t0.get(name, 0.0)) / wall for name in t1}
    if "source" in threads:
        threads["source"] -= 100.0 * (d1 - d0) / wall
    threads["native pools and the rest"] = 100.0 * own / wall - sum(threads.values())
    return {"seconds": wall, "cpu_pct_of_one_core": 100.0 * own / wall,
            "with_devices_pct": 100.0 * (c1 - c0) / wall, "threads_pct": threads}


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


def timelines(scenario: Scenario, asr_log, vlm_events, tts_log, plays, need: int, turn_records) -> list[dict]:
    """One plain dict of session times per answered turn (see bench_report.turn_figures).

    A turn runs from its VLM call to the next call or the next speculative `prepare`, whichever
    comes first; the prepares between the previous turn and its call are its speculative vision.
    Its utterance is the last one transcribed before the call (an early cut when early ASR was
    reused); the endpointer's decision comes from the session's turn record.
    """
    calls = [t for what, t in vlm_events if what == "call"]
    out = []
    prev_stop = float("-inf")
    for j, call in enumerate(calls):
        nxt = calls[j + 1] if j + 1 < len(calls) else float("inf")
        stop = min([nxt] + [t for w, t in vlm_events if w == "prep0" and call < t < nxt])
        inside = [(w, t) for w, t in vlm_events if call <= t < stop]
        preps = [(w, t) for w, t in vlm_events if w in ("prep0", "prep1") and prev_stop <= t < call]
        prev_stop = stop
        heard = [a for a in asr_log if a["t1"] <= call and a["question"] is not None]
        tts = [r for r in tts_log if call <= r["submit"] < stop and r["done"] is not None]
        played = [p for p in plays if call <= p["hand"] < stop]
        if not heard or not tts or not played:
            continue  # cancelled before it spoke: nothing to time
        a = heard[-1]
        q = scenario.questions[a["question"]]
        starts = [t for w, t in inside if w == "fwd0"]
        ends = [t for w, t in inside if w == "fwd1"]
        vision = ([t for w, t in inside if w == "vis0"][:1] + [t for w, t in inside if w == "vis1"][:1])
        pieces = [t for w, t in inside if w == "piece"]
        record = next((r for r in turn_records if abs(r["heard_at"] - a["end"]) < 1e-3), {})
        latency = record.get("latency", {})
        detected = record["heard_at"] + latency["vad"] if latency.get("vad") is not None else a["detected"]
        out.append({
            "question": q.text, "speech": [q.start, q.end], "vad_speech": [a["start"], a["end"]],
            "detected": detected, "asr": [a["t0"], a["t1"]], "asr_early": a.get("early", False), "vlm_call": call,
            "vision": vision if len(vision) == 2 else None, "forwards": [list(p) for p in zip(starts, ends)],
            "prepares": [[t0, t1] for (w0, t0), (w1, t1) in zip(preps[::2], preps[1::2])],
            "first_piece": pieces[0] if pieces else None, "need_tokens": need,
            "tts": [[r["text"], r["submit"], r["done"]] for r in tts],
            "plays": [[p["text"], p["hand"], p["start"], p["end"]] for p in played],
            "session_latency": latency, "speculation": record.get("speculation", {}),
        })
    return out


# --- the naive cascade -------------------------------------------------------------------
def naive_cascade(scenario: Scenario, endpoint, whisper, vlm, tts, max_new_tokens: int) -> list[dict]:
    """The cascade as first written: each step waits for the one before it to finish.

    The endpointing wait is the same VAD and silence as the session's, on the same audio, so
    the comparison is of everything after it. Nothing overlaps, so the latency is the sum.
    """
    import torch

    from pipelines.vad import SileroVAD
    from pipelines.vision import fit_for_model
    from pipelines.vlm import SYSTEM_PROMPT

    ends = endpoint_events(scenario.audio, endpoint, SileroVAD())
    rows = []
    for q in scenario.questions:
        ev = next((e for e in ends if e.start < q.end and e.end > q.start), None)
        if ev is None:
            continue
        audio = scenario.audio[max(0, int((ev.start - 0.3) * SAMPLE_RATE)) : int((ev.end + 0.2) * SAMPLE_RATE)]
        t0 = time.perf_counter()
        whisper.transcribe(audio)  # its (random) text is not used: push-to-talk, the question is known
        t1 = time.perf_counter()
        image = fit_for_model(scenario.frame(ev.detected_at), 512)  # the last frame, not the best one
        inputs = vlm.inputs(VLMRequest(q.text, image, (), SYSTEM_PROMPT, max_new_tokens))
        first = len(vlm.events)  # the timing hooks fire here too: the same stages, alone on the machine
        with torch.inference_mode():
            out = vlm.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        answer = vlm.processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        t2 = time.perf_counter()
        tts.submit(clean_for_speech(answer)).result()  # the whole answer, then play
        t3 = time.perf_counter()
        wait = ev.detected_at - q.end
        rows.append({"question": q.text, "endpoint_wait": wait, "asr": t1 - t0, "vlm": t2 - t1, "tts": t3 - t2,
                     "voice_to_voice": wait + (t3 - t0), **_vision_prefill(vlm.events[first:])})
    return rows


def _vision_prefill(events: list[tuple[str, float]]) -> dict:
    """Vision and prefill seconds from one generate call's hook events (as turn_figures does)."""
    t = {}
    for what, at in events:
        t.setdefault(what, at)  # the first of each: vision once, then the first forward
    if not {"vis0", "vis1", "fwd0", "fwd1"} <= t.keys():
        return {}
    vision = t["vis1"] - t["vis0"]
    inside = t["vis0"] >= t["fwd0"]
    return {"vision": vision, "prefill": t["fwd1"] - t["fwd0"] - (vision if inside else 0.0)}


def endpoint_events(audio: np.ndarray, endpoint, vad, chunk: int = 512) -> list:
    """The session's endpointing run offline over a whole track: its "end" events."""
    from pipelines.vad import WINDOW, Endpointer

    ep, events, consumed = Endpointer(endpoint), [], 0
    for at in range(0, len(audio), chunk):
        for prob in vad(audio[at : at + chunk]):
            events += [e for e in ep.update(prob, consumed / SAMPLE_RATE) if e.kind == "end"]
            consumed += WINDOW
    return events + ep.flush(len(audio) / SAMPLE_RATE)


# --- entry point -----------------------------------------------------------------------
def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo().splitlines() if line.startswith("model name")),
                 platform.processor() or "unknown CPU")
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()} {model}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def disturbance(result: dict) -> float:
    """Cores other processes used while this configuration ran: the median over its turns,
    or over the naive cascade if that was worse."""
    turns = sorted(t["others_cores"] for t in result["turns"] if t.get("others_cores") is not None)
    median = turns[len(turns) // 2] if turns else 0.0
    return max(median, result["naive_run"].get("other_processes_cores") or 0.0)


def _isolated(opts: BenchOptions, dtype: str) -> dict:
    """run_config in a fresh process: its peak RSS and CPU time are its own."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(run_config, opts, dtype).result()


def parse(argv) -> BenchOptions:
    p = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="folder for bench.json, waterfall.png")
    p.add_argument("--asr", choices=("tiny", "base"), default="tiny", help="Whisper size (default tiny)")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "both"), default="both",
                   help="VLM dtype (default both; bf16 is skipped on CPUs without AVX512-BF16/AMX)")
    p.add_argument("--questions", type=int, default=None, help="questions in the scenario (default 10; 2 with --tiny)")
    p.add_argument("--first-chunk-words", type=int, default=None,
                   help="the first piece is spoken at a clause end or after this many words "
                        "(default: the session's; 0: sentences only)")
    p.add_argument("--silence", type=float, default=None, help="endpointing silence, s (default: the session's)")
    p.add_argument("--pause", type=float, default=None,
                   help="silence after each question, s (default 7; 1 with --tiny)")
    p.add_argument("--tiny", action="store_true", help="tiny random models, float32: a smoke run in seconds")
    p.add_argument("--no-speculative-vision", action="store_true",
                   help="encode the frame after the question, not while it is spoken (before/after figures)")
    p.add_argument("--no-early-asr", action="store_true",
                   help="transcribe when the endpointer decides, not when the silence begins")
    p.add_argument("--no-speculative-answer", action="store_true",
                   help="start the answer when the endpointer decides, not on the early transcript")
    a = p.parse_args(argv)
    questions = a.questions if a.questions is not None else (2 if a.tiny else 10)
    if questions < 1 or (a.first_chunk_words or 0) < 0 or (a.silence is not None and a.silence <= 0):
        p.error("--questions must be >= 1, --first-chunk-words >= 0, --silence > 0")
    dtypes = ("float32",) if a.tiny else (("float32", "bfloat16") if a.dtype == "both" else (a.dtype,))
    pause = a.pause if a.pause is not None else (1.0 if a.tiny else 7.0)
    return BenchOptions(a.out, a.asr, dtypes, questions, a.first_chunk_words, a.silence, pause, a.tiny,
                        speculative_vision=not a.no_speculative_vision, early_asr=not a.no_early_asr,
                        speculative_answer=not a.no_speculative_answer)


def main(argv=None) -> int:
    from benchmarks import report as bench_report

    argv = sys.argv[1:] if argv is None else list(argv)
    opts = parse(argv)
    opts.out.mkdir(parents=True, exist_ok=True)
    from core.clock import WallClock

    with LoadMonitor(WallClock()) as load:
        time.sleep(1.0)
    busy = load.others()
    if busy and busy > 0.2:
        print(f"warning: other processes are using {busy:.1f} of {os.cpu_count()} cores: the figures will be "
              "disturbed (each configuration reports how much)", file=sys.stderr)
    results, skipped = [], {}
    for dtype in opts.dtypes:
        if dtype == "bfloat16" and not cpu_has_bf16():
            skipped[dtype] = "this CPU has neither AVX512-BF16 nor AMX: bf16 would be emulated"
            print(f"skipping bfloat16: {skipped[dtype]}", file=sys.stderr)
            continue
        for attempt in range(1, RETRIES + 2):
            print(f"running {dtype}: {opts.questions} questions at 1x, then the naive cascade ...", file=sys.stderr,
                  flush=True)
            result = run_config(opts, dtype) if opts.tiny else _isolated(opts, dtype)
            result["attempt"], others = attempt, disturbance(result)
            if others <= DISTURBED or attempt > RETRIES:
                break
            print(f"  other processes took {others:.2f} cores while it ran: running {dtype} again", file=sys.stderr)
        results.append(result)
    report = bench_report.build(results, {
        "command": "python -m benchmarks.latency " + " ".join(argv), "machine": machine(),
        "gpu": "none", "date": dt.date.today().isoformat(), "asr": opts.asr, "tiny": opts.tiny,
        "first_chunk_words": opts.first_chunk_words, "pause": opts.pause, "questions": opts.questions,
        "speculative_vision": opts.speculative_vision, "early_asr": opts.early_asr,
        "speculative_answer": opts.speculative_answer,
        "clock": "WallClock (1x, real time)", "skipped": skipped, "others_before_cores": busy,
    })
    chart = bench_report.waterfall(report, opts.out / "waterfall.png")
    report["chart"] = chart.name if chart else None
    (opts.out / "bench.json").write_text(json.dumps(report, indent=2))
    print(bench_report.table(report))
    print(f"report: {opts.out / 'bench.json'}" + (f"\nchart:  {chart}" if chart else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

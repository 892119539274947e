"""One configuration of the latency benchmark: load the models, warm up, measure an idle
session, play the scenario into the real Session at 1x, run the naive cascade, and turn the
hooks' events into one timeline per turn (see benchmarks/latency.py).

`run_config` is what each configuration's fresh process runs, so it lives in an importable
module, not in __main__. The session speaks through the live speaker over a fake output
device (latency_hooks.DeviceSpeaker): voice to voice ends when the device callback sends the
answer's first sample."""
from __future__ import annotations

import logging
import os
import resource
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from benchmarks.latency_hooks import (WAKE, DeviceSpeaker, LoadMonitor, ScenarioASR, TimedTTS, TimingSpeaker, _cpu,
                                      _thread_cpu)
from benchmarks.latency_models import bench_models, first_chunk_tokens, make_bench_vlm
from benchmarks.latency_naive import naive_cascade
from benchmarks.latency_real import background_check, realistic_setup
from benchmarks.scenario import ANSWER, PacedSource, Scenario, make_scenario
from benchmarks.scenario_real import answer_seconds
from core.messages import SAMPLE_RATE, VLMRequest
from pipelines.text import clean_for_speech

ASR_TOKENS = 12  # Whisper's decode is capped here: about the tokens of a short spoken question
TINY_ANSWER = "It looks like a red mug, on a table."  # --tiny: a short answer keeps the smoke run short
IDLE_CHECK = 5.0  # seconds of an idle session (silence and camera frames) to measure its CPU


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
    scenarios: tuple[str, ...] = ("best", "realistic")
    voice: str = "auto"  # the realistic scenario's wearer: "piper", "espeak", or "auto" (Piper when installed)
    speculative_vision: bool = True
    early_asr: bool = True
    speculative_answer: bool = True
    look_every: float | None = None  # None: the session's (speculative vision looks again while speech goes on)


# --- one configuration -------------------------------------------------------------------
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


def run_config(opts: BenchOptions, dtype: str, kind: str = "best") -> dict:
    """Load, warm up, measure an idle session, run the scenario session, run the naive cascade.
    `kind`: "best" (benchmarks/scenario.py) or "realistic" (benchmarks/scenario_real.py)."""
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
    answer_text = TINY_ANSWER if opts.tiny else ANSWER
    vlm_dir, asr_dir = bench_models(opts)
    clock = WallClock()
    t_load = time.perf_counter()
    asr_config = ASRConfig(model=str(asr_dir), language="en", cpu_threads=opts.threads, max_new_tokens=ASR_TOKENS,
                           no_speech_threshold=1.0, min_level_db=-100.0)  # random weights: never drop
    whisper = FasterWhisper(asr_config)
    whisper.setup()
    vlm = make_bench_vlm(VLMConfig(model=str(vlm_dir), dtype=dtype, threads=opts.threads), clock, answer_text)
    vlm.setup()
    tts = Pyttsx3TTS()
    tts.setup()
    load_s = time.perf_counter() - t_load
    ids = vlm.answer_ids
    first_words = SessionConfig.first_chunk_words if opts.first_chunk_words is None else opts.first_chunk_words
    need, first_text = first_chunk_tokens(vlm.processor.tokenizer, ids, first_words)
    endpoint = EndpointConfig() if opts.silence is None else EndpointConfig(silence=opts.silence)
    common = dict(max_new_tokens=len(ids), first_chunk_words=first_words, endpoint=endpoint,
                  speculative_vision=opts.speculative_vision, early_asr=opts.early_asr,
                  speculative_answer=opts.speculative_answer,
                  look_every=SessionConfig.look_every if opts.look_every is None else opts.look_every,
                  models={"vlm": str(vlm_dir), "asr": str(asr_dir), "dtype": dtype, "random_weights": True})
    if kind == "realistic":
        setup = realistic_setup(opts, answer_seconds(answer_text), answer_text, endpoint.silence)
        scenario = setup.scenario
        config = SessionConfig(turn=setup.turn, **common)  # the app's wake phrase, follow-ups and history
    else:
        scenario, setup = build_scenario(opts), None
        config = SessionConfig(wake_phrase=WAKE, history_turns=0, **common)

    # Warm-up: one question end to end, as an app does once at start (first calls allocate and JIT).
    t_warm = time.perf_counter()
    q0 = scenario.questions[0]
    whisper.transcribe(scenario.audio[int(q0.start * SAMPLE_RATE) : int(q0.end * SAMPLE_RATE)])
    warm = VLMRequest(q0.text, fit_for_model(scenario.frame(q0.end), 512), (), SYSTEM_PROMPT, len(ids))
    prompt_tokens = int(vlm.inputs(warm)["input_ids"].shape[1])
    if config.history_turns:  # what the realistic scenario's prompts hold once three turns are in them
        full = replace(warm, history=((q0.text, answer_text),) * config.history_turns)
        prompt_tokens = {"no_history": prompt_tokens, "with_history": int(vlm.inputs(full)["input_ids"].shape[1])}
    answer = "".join(vlm.stream(warm, threading.Event()))
    "".join(vlm.stream(replace(warm, prefix=vlm.prepare(warm)), threading.Event()))  # and the speculative path
    tts.submit(clean_for_speech(answer)).result()
    warmup_s = time.perf_counter() - t_warm

    asr = ScenarioASR(ASRStage(whisper, asr_config), scenario, clock)
    idle = measure_idle(opts, config, asr.stage, vlm, tts)

    clock = WallClock()  # t = 0 is the scenario's first sample
    speaker, timed_tts = DeviceSpeaker(clock), TimedTTS(tts, clock)
    asr.clock = vlm.clock = clock
    vlm.events.clear()
    name = f"session-{dtype}.jsonl" if kind == "best" else f"session-{kind}-{dtype}.jsonl"
    (opts.out / name).unlink(missing_ok=True)  # SessionLog appends: one run per file
    log = SessionLog(opts.out / name)
    source = PacedSource(scenario, clock)
    session = Session(config, source=source, vad=SileroVAD(), asr=asr, vlm=vlm, tts=timed_tts,
                      speaker=speaker, clock=clock, log_=log)
    cpu0, wall0 = _cpu(), time.perf_counter()
    with LoadMonitor(clock) as load:
        session.run()
    session_cpu, session_wall = _cpu() - cpu0, time.perf_counter() - wall0
    speaker.close()
    log.close()
    turns = timelines(scenario, asr.log, vlm.events, timed_tts.log, speaker.log, need, log.turns())
    for tl in turns:  # did something else on the machine take CPU while this turn was answered?
        tl["others_cores"] = load.others(tl["speech"][1], tl["plays"][0][1])

    cpu0, wall0 = _cpu(), time.perf_counter()
    with LoadMonitor(clock) as naive_load:
        naive = naive_cascade(scenario, endpoint, whisper, vlm, tts, len(ids),
                              **(setup.naive(config) if setup else {}))
    naive_cpu, naive_wall = _cpu() - cpu0, time.perf_counter() - wall0
    tts.close()
    kinds = [r["type"] for r in log.records]
    return {
        "dtype": dtype, "scenario_kind": kind, "vlm_dir": str(vlm_dir), "asr_dir": str(asr_dir), "load_s": load_s,
        "warmup_s": warmup_s, "prompt_tokens": prompt_tokens, "answer_tokens": len(ids), "first_chunk_tokens": need,
        "first_chunk_text": first_text, "silence": endpoint.silence, "first_chunk_words": first_words,
        "speculative_vision": opts.speculative_vision, "early_asr": opts.early_asr,
        "speculative_answer": opts.speculative_answer,
        "session_config": {"wake_phrase": config.wake_phrase, "follow_up": config.follow_up,
                           "history_turns": config.history_turns, "turn": config.turn},
        "output_device": {"stream": "glasses.fakes.FakeOutputStream (real-time callback thread)",
                          "rate": speaker.rate, "block_s": speaker.block / speaker.rate,
                          "latency_s": speaker.latency},
        "scenario": {"duration": scenario.duration, "questions": [asdict(q) for q in scenario.questions],
                     **(setup.describe() if setup else {})},
        "others_heard": background_check(scenario, log.records) if setup else [],
        "ended_early": ended_early(scenario, log.turns()),
        "unanswered": unanswered(scenario, log.records),
        "idle": idle,
        "session": {"wall_s": session_wall, "cpu_s": session_cpu, "device_cpu_s": source.device_cpu_s,
                    "other_processes_cores": load.others(), "records": {k: kinds.count(k) for k in sorted(set(kinds))}},
        "naive_run": {"wall_s": naive_wall, "cpu_s": naive_cpu, "other_processes_cores": naive_load.others()},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "turns": turns, "naive": naive,
    }


def ended_early(scenario: Scenario, turn_records) -> list[dict]:
    """Answers begun on part of a question: the turn ended at a pause inside it (a hesitation that
    the endpointer took for the end), whether or not the answer was heard before the rest came."""
    out = []
    for r in turn_records:
        k = scenario.question_at(r["speech_start"], r["heard_at"])
        if k is not None and r["heard_at"] < scenario.questions[k].end - 0.25:
            out.append({"question": scenario.questions[k].text, "heard": r["question"], "heard_at": r["heard_at"],
                        "true_end": scenario.questions[k].end, "spoke": bool(r.get("spoken"))})
    return out


def unanswered(scenario: Scenario, records) -> list[dict]:
    """The questions no answer was begun for, with what the session made of what it heard of them
    (a layout that let a follow-up end after its window closed would show here)."""
    turns = [r for r in records if r["type"] == "turn"]
    heard = [r for r in records if r["type"] == "heard"]
    out = []
    for q in scenario.questions:
        if not any(r["speech_start"] < q.end and r["heard_at"] > q.start for r in turns):
            out.append({"question": q.text, "start": q.start, "end": q.end,
                        "heard": [[r["text"], r["action"], r["reason"]] for r in heard
                                  if r["start"] < q.end and r["end"] > q.start]})
    return out


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




def timelines(scenario: Scenario, asr_log, vlm_events, tts_log, plays, need: int, turn_records) -> list[dict]:
    """One plain dict of session times per answered turn (see bench_report.turn_figures).

    A turn runs from its VLM call to the next call or the next speculative `prepare`, whichever
    comes first; the prepares between the previous answer that spoke and its call are its
    speculative vision (an answer begun on an early transcript and discarded in between, at a
    hesitation, speaks nothing and ends no one's window). Its utterance is the last one
    transcribed before the call (an early cut when early ASR was reused); the endpointer's
    decision comes from the session's turn record. A turn that ended before its question did
    (the endpointer took a pause inside the question for its end) is marked `cut_short`.
    """
    calls = [t for what, t in vlm_events if what == "call"]
    out = []
    prev_stop = float("-inf")
    for j, call in enumerate(calls):
        nxt = calls[j + 1] if j + 1 < len(calls) else float("inf")
        stop = min([nxt] + [t for w, t in vlm_events if w == "prep0" and call < t < nxt])
        heard = [a for a in asr_log if a["t1"] <= call and a["question"] is not None]
        tts = [r for r in tts_log if call <= r["submit"] < stop and r["done"] is not None]
        played = [p for p in plays if call <= p["hand"] < stop]
        if not heard or not tts or not played:
            continue  # cancelled or discarded before it spoke: nothing to time
        inside = [(w, t) for w, t in vlm_events if call <= t < stop]
        preps = [(w, t) for w, t in vlm_events if w in ("prep0", "prep1") and prev_stop <= t < call]
        prev_stop = stop
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
            "device": played[0].get("device"),  # the first sample sent by the output callback
            "session_latency": latency, "speculation": record.get("speculation", {}),
            "cut_short": a["end"] < q.end - 0.25,  # heard up to a pause inside the question
        })
    return out

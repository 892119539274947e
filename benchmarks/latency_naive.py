"""The latency benchmark's baseline: the naive cascade on the same models, and the session's
endpointing run offline over the scenario's track (see benchmarks/latency.py)."""
from __future__ import annotations

import time

import numpy as np

from benchmarks.scenario import Scenario
from core.messages import SAMPLE_RATE, VLMRequest
from pipelines.text import clean_for_speech


# --- the naive cascade -------------------------------------------------------------------
def naive_cascade(scenario: Scenario, endpoint, whisper, vlm, tts, max_new_tokens: int, *, hearing=None,
                  turn_model=None, history_turns: int = 0, answer: str = "") -> list[dict]:
    """The cascade as first written: each step waits for the one before it to finish.

    The endpointing wait is the same VAD and silence as the session's, on the same audio, so
    the comparison is of everything after it. Nothing overlaps, so the latency is the sum.
    With `hearing` (a HearingConfig), the session's own Hearing ends the turns, Smart Turn
    included. The prompt carries the last `history_turns` questions, each with `answer`, as
    the session's does.
    """
    import torch

    from pipelines.vad import SileroVAD
    from pipelines.vision import fit_for_model
    from pipelines.vlm import SYSTEM_PROMPT

    if hearing is None:
        ends = endpoint_events(scenario.audio, endpoint, SileroVAD())
    else:
        ends = hearing_ends(scenario.audio, hearing, turn_model, SileroVAD())
    rows = []
    for k, q in enumerate(scenario.questions):
        # the last end inside the question: a pause that ended it too early is followed by the real end
        ev = ([e for e in ends if e.start < q.end and e.end > q.start] or [None])[-1]
        if ev is None:
            continue
        history = tuple((p.text, answer) for p in scenario.questions[max(0, k - history_turns) : k])
        audio = scenario.audio[max(0, int((ev.start - 0.3) * SAMPLE_RATE)) : int((ev.end + 0.2) * SAMPLE_RATE)]
        t0 = time.perf_counter()
        whisper.transcribe(audio)  # its (random) text is not used: push-to-talk, the question is known
        t1 = time.perf_counter()
        image = fit_for_model(scenario.frame(ev.detected_at), 512)  # the last frame, not the best one
        inputs = vlm.inputs(VLMRequest(q.text, image, history if history_turns else (), SYSTEM_PROMPT,
                                       max_new_tokens))
        first = len(vlm.events)  # the timing hooks fire here too: the same stages, alone on the machine
        with torch.inference_mode():
            out = vlm.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        text = vlm.processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        t2 = time.perf_counter()
        tts.submit(clean_for_speech(text)).result()  # the whole answer, then play
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


def hearing_ends(audio: np.ndarray, config, turn_model, vad, chunk: int = 512) -> list:
    """The session's Hearing run offline over a whole track: its final utterances (start, end,
    detected_at), decided as the live session decides them (the same windows, the same model)."""
    from core.clock import MediaClock
    from core.messages import AudioChunk, Utterance
    from pipelines.hearing import Hearing

    hearing = Hearing(config, vad, MediaClock(), turn_model)
    out = []
    for at in range(0, len(audio), chunk):
        out += [m for m in hearing.feed(AudioChunk(at / SAMPLE_RATE, audio[at : at + chunk]))
                if isinstance(m, Utterance) and not m.early]
    return out + [m for m in hearing.finish(len(audio) / SAMPLE_RATE) if isinstance(m, Utterance)]

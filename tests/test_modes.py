"""Answer modes with fake models: what each mode asks, what it speaks, when it cues, how it is chosen."""
import threading
import time

import numpy as np
import pytest

from glasses.fakes import ScriptedSource, tone_track
from glasses.speaker import MixSpeaker
from pipelines import modes
from core.clock import MediaClock
from tests.fakes import EnergyVAD, FakeTTS, ScriptedASR
from pipelines.log import SessionLog
from core.messages import FrameSnapshot, VLMRequest
from pipelines.modes import ModeContext, choose_mode
from pipelines.session import Session, SessionConfig
from pipelines.vision import exposure, fit_for_model, sharpness
from tests.fakes import FakeVLM

FAST = dict(expect_first_token=0.01, expect_token_s=0.001)  # a machine fast enough that no cue is needed


def scene(t: float) -> np.ndarray:
    """A grey wall with a red square; a fine checkerboard (the detail) in the bottom-right corner."""
    img = np.full((240, 320, 3), 128, np.uint8)
    img[80:160, 120:200] = (0, 0, 255)
    img[180:236, 250:316] = (np.indices((56, 66)).sum(axis=0) % 2 * 255)[..., None]
    img[5:10, int(t * 50) % 300: int(t * 50) % 300 + 10] = 255  # something moves
    return img


def snapshots(times) -> list[FrameSnapshot]:
    return [FrameSnapshot(t, scene(t), sharpness(scene(t)), exposure(scene(t))) for t in times]


def context(vlm, *, question="what colour is the square?", agents=4, image=True, **kw):
    frames = snapshots(np.arange(0.0, 3.01, 0.1))
    best = frames[25]  # t = 2.5
    said, shown, cues = [], [], []
    request = VLMRequest(question, fit_for_model(best.image) if image else None, (), "SYSTEM", 60)
    ctx = ModeContext(vlm, request, threading.Event(), said.append, shown.append, cues.append, frames,
                      best if image else None, 1.0, 2.6, 512, agents, **kw)
    return ctx, said, shown, cues


# --- instant ---------------------------------------------------------------------------
def test_instant_sends_the_request_as_is_and_speaks_every_piece():
    vlm = FakeVLM("It is red. On a grey wall.")
    ctx, said, _, cues = context(vlm)
    result = modes.answer("instant", ctx)
    assert vlm.requests == [ctx.request] and vlm.batches == []
    assert "".join(said).strip() == result.answer == "It is red. On a grey wall."
    assert cues == [] and result.first_token is not None


# --- thinking --------------------------------------------------------------------------
def test_thinking_sends_the_scratchpad_and_speaks_only_the_answer():
    vlm = FakeVLM("Reasoning: the square fills the middle and its pixels are red. Answer: It is red.")
    ctx, said, shown, cues = context(vlm, **FAST)
    result = modes.answer("thinking", ctx)
    (request,) = vlm.requests
    assert request.question == modes.THINK_PROMPT.format(question="what colour is the square?")
    assert request.max_new_tokens == modes.THINK_BUDGET and request.image is ctx.request.image
    assert "".join(said).strip() == result.answer == "It is red."
    assert result.extra["reasoning"] == "the square fills the middle and its pixels are red."
    assert shown[-1] == "Thinking: the square fills the middle and its pixels are red."  # streamed to the display
    assert not result.extra["answer_forced"] and cues == [] and result.extra["cue"] is None


def test_thinking_without_the_marker_forces_a_short_final_answer():
    def reply(request):
        return "It is red." if request.question.startswith("The wearer asked") else "hmm the square looks red"

    vlm = FakeVLM(reply=reply)
    ctx, said, _, _ = context(vlm, **FAST)
    result = modes.answer("thinking", ctx)
    first, final = vlm.requests
    assert final.question == modes.FINAL_ANSWER_PROMPT.format(question="what colour is the square?",
                                                              reasoning="hmm the square looks red")
    assert final.max_new_tokens == ctx.request.max_new_tokens and final.image is None
    assert "".join(said).strip() == result.answer == "It is red."  # the reasoning is never spoken
    assert result.extra["answer_forced"] and result.extra["reasoning"] == "hmm the square looks red"


def test_thinking_cues_at_once_when_the_first_sound_would_be_late():
    order = []
    vlm = FakeVLM("Reasoning: red pixels. Answer: It is red.")
    original = vlm.stream
    vlm.stream = lambda request, cancel: (order.append("generate"), original(request, cancel))[1]
    ctx, said, _, cues = context(vlm)  # the default priors: a 2-core CPU, ~1.2 s before the first token
    ctx.cue = lambda text: (order.append("cue"), cues.append(text))
    result = modes.answer("thinking", ctx)
    assert cues == [modes.CUE_TEXT] and order == ["cue", "generate"]  # at once, before generation starts
    assert result.extra["cue"]["t"] == 0.0 and result.extra["cue"]["predicted_first_sound"] > modes.CUE_AFTER
    assert "".join(said).strip() == "It is red."


def test_thinking_cues_when_the_observed_reasoning_is_slow():
    vlm = FakeVLM("Reasoning: " + "step " * 40 + "Answer: It is red.", delay=0.03)  # ~1.2 s of reasoning
    t0 = time.perf_counter()
    ctx, _, _, cues = context(vlm, **FAST)  # the priors say fast: no cue at the start
    ctx.elapsed = lambda: time.perf_counter() - t0 + 0.5  # the question ended 0.5 s ago (endpointing, ASR)
    result = modes.answer("thinking", ctx)
    assert cues == [modes.CUE_TEXT] and result.extra["cue"]["t"] < 0.8  # predicted from the rate, not waited for


def test_no_cue_when_the_answer_comes_soon():
    vlm = FakeVLM("Reasoning: red. Answer: It is red.")
    ctx, _, _, cues = context(vlm, **FAST)
    modes.answer("thinking", ctx)
    assert cues == []


# --- contemplating ---------------------------------------------------------------------
def test_contemplating_is_one_batch_of_k_views_then_one_aggregation():
    vlm = FakeVLM("It is red.")
    ctx, said, _, _ = context(vlm, agents=4, **FAST)
    result = modes.answer("contemplating", ctx)
    (batch,) = vlm.batches
    assert len(batch) == 4 and all(r.max_new_tokens == modes.DRAFT_TOKENS for r in batch)
    views = [d["view"] for d in result.extra["drafts"]]
    # a static scene (only a small bar moves): no other moment, the best frame serves three drafts
    assert views == ["best frame", "zoomed detail", "best frame; describe first", "best frame; list uncertainties"]
    assert batch[0].question == "what colour is the square?" and batch[0].image is ctx.request.image
    assert batch[1].question.startswith("This picture is a close-up")
    assert not np.array_equal(batch[1].image, batch[0].image)
    assert batch[2].question.startswith("First say in one sentence what you see")
    assert batch[3].question.startswith("First say in one sentence what you cannot tell")
    assert batch[2].image is batch[3].image is ctx.request.image
    (aggregate,) = vlm.requests  # then exactly one aggregation, streamed to speech
    assert aggregate.question == result.extra["aggregation_prompt"] and aggregate.image is None
    assert aggregate.question.count("It is red.") == 4 and modes.AGREE_NOTE in aggregate.question
    assert "".join(said).strip() == result.answer == "It is red."
    assert [d["text"] for d in result.extra["drafts"]] == ["It is red."] * 4
    # measured on the perf counter around real calls: positive, and small with a model that answers at once
    assert 0 < result.extra["draft_latency"] < 1.0 and 0 < result.extra["aggregate_latency"] < 1.0


def test_drafts_that_disagree_make_the_aggregator_say_it_is_unsure():
    vlm = FakeVLM(reply=lambda r: "There are 3 cups." if "close-up" in r.question else "There are four cups.")
    ctx, _, _, _ = context(vlm, question="how many cups are there?")
    result = modes.answer("contemplating", ctx)
    prompt = result.extra["aggregation_prompt"]
    assert result.extra["disagreement"] == "numbers: 3 vs 4"
    assert modes.DISAGREE_NOTE.format(why="numbers: 3 vs 4") in prompt and "not sure" in prompt


@pytest.mark.parametrize("texts, why", [
    (["It is red.", "A red mug on a white table."], ""),
    (["It is red.", "It is blue."], "colours: blue vs red"),
    (["Yes, it is safe.", "No, a car is coming."], "yes vs no"),
    (["Three cups.", "I count 3 cups and 1 plate."], ""),
])
def test_disagreement_rule(texts, why):
    assert modes.disagreement(texts) == why


def test_one_agent_speaks_its_draft_without_aggregation():
    vlm = FakeVLM("It is red.")
    ctx, said, _, _ = context(vlm, agents=1, **FAST)
    result = modes.answer("contemplating", ctx)
    assert [len(b) for b in vlm.batches] == [1] and vlm.requests == []
    assert result.answer == "It is red." and "".join(said) == "It is red."


def test_cancel_stops_a_batch_in_flight_and_skips_aggregation():
    vlm = FakeVLM("word " * 200, delay=0.01)
    ctx, said, _, _ = context(vlm, **FAST)
    threading.Timer(0.1, ctx.cancel.set).start()
    t0 = time.perf_counter()
    result = modes.answer("contemplating", ctx)
    assert time.perf_counter() - t0 < 1.0  # 200 steps would take 2 s
    assert vlm.requests == [] and said == [] and result.answer == ""
    assert 0 < len(result.extra["drafts"][0]["text"].split()) < 200


# --- choosing the mode -----------------------------------------------------------------
@pytest.mark.parametrize("heard, current, expected", [
    ("Think about it: why is the door open?", "instant", ("thinking", "why is the door open?")),
    ("Think about that, why is the door open?", "instant", ("thinking", "why is the door open?")),  # tolerant
    ("Why is the sky red? Take your time.", "instant", ("contemplating", "Why is the sky red?")),
    ("Take you're time, how many cups are there?", "instant", ("contemplating", "how many cups are there?")),
    ("Please think harder.", "instant", ("contemplating", "")),  # alone: switch the standing mode
    ("Contemplating.", "instant", ("contemplating", "")),
    ("Quick answer: what is this?", "contemplating", ("instant", "what is this?")),
    ("Just tell me what this is.", "thinking", ("instant", "Just tell me what this is.")),  # runs into the question
    ("What do you think about it?", "thinking", ("thinking", "What do you think about it?")),  # not a switch
])
def test_voice_switching(heard, current, expected):
    mode, question, reason = choose_mode(heard, current)
    assert (mode, question) == expected
    assert reason.startswith("voice: ") == (expected[0] != current or heard.startswith("Please"))


@pytest.mark.parametrize("question, mode, why", [
    ("Why is the door locked?", "thinking", "'why'"),
    ("How does this machine work?", "thinking", "'how does'"),
    ("Should I buy this one?", "contemplating", "'should i'"),
    ("Compare these two labels.", "contemplating", "'compare'"),
    ("How many people are here?", "contemplating", "'how many'"),
    ("What is this?", "instant", "'what is this'"),
    ("Read the sign.", "instant", "no cue"),
])
def test_auto_rule(question, mode, why):
    chosen, asked, reason = choose_mode(question, "auto")
    assert (chosen, asked) == (mode, question) and reason.startswith("auto: ") and why in reason
    assert choose_mode(question, "instant") == ("instant", question, "standing mode")  # auto only when chosen


def test_voice_beats_auto():
    assert choose_mode("Quick answer, why is it red?", "auto")[:2] == ("instant", "why is it red?")


def test_bad_mode_or_agents_is_one_clear_line():
    assert modes.config_error("thinking", 4) is None and modes.config_error("auto", 16) is None
    assert modes.config_error("ponder", 4) == "unknown mode 'ponder': choose one of instant, thinking, contemplating, auto"
    assert modes.config_error("contemplating", 0) == "--agents must be between 1 and 16, got 0"
    assert modes.config_error("contemplating", 17).startswith("--agents must be between 1 and 16")
    with pytest.raises(ValueError):
        modes.answer("ponder", context(FakeVLM())[0])
    assert modes.MODES == ("instant", "thinking", "contemplating") and modes.MODE_CHOICES[-1] == "auto"


# --- through the session ---------------------------------------------------------------
def run(mode, vlm, asks=((1.0, "what colour is the square?"),), **config):
    log = SessionLog(None)
    session = Session(SessionConfig(mode=mode, asks=tuple(asks), **config),
                      source=ScriptedSource(tone_track(4.0, []), lambda t: scene(t)), vad=EnergyVAD(),
                      asr=ScriptedASR([]), vlm=vlm, tts=FakeTTS(), speaker=MixSpeaker(), clock=MediaClock(), log_=log)
    session.run()
    return log.turns()


def test_session_thinking_turn_record():
    (turn,) = run("thinking", FakeVLM("Reasoning: the square is red. Answer: It is a red square, on grey."))
    assert turn["mode"] == "thinking" and turn["reasoning"] == "the square is red."
    assert turn["answer"] == "It is a red square, on grey."
    spoken = [s["text"] for s in turn["spoken"]]
    assert spoken == [modes.CUE_TEXT, "It is a red square, on grey."]  # CPU priors: the cue, then only the answer
    assert turn["cue"]["text"] == modes.CUE_TEXT


def test_session_contemplating_turn_record():
    (turn,) = run("contemplating", FakeVLM("It is a red square."), agents=3)
    assert turn["mode"] == "contemplating" and len(turn["drafts"]) == 3
    assert {"view", "text"} <= set(turn["drafts"][0]) and 0 < turn["aggregate_latency"] < 1.0
    assert turn["speculation"]["vision"] != "reused"  # contemplating encodes its own views: nothing prepared is used
    assert "helpers looked at the scene" in turn["aggregation_prompt"] and turn["answer"] == "It is a red square."


def test_session_voice_and_auto_choose_the_mode_that_runs():
    vlm = FakeVLM("Reasoning: red. Answer: It is red.")
    turns = run("auto", vlm, asks=((1.0, "why is the square red?"), (2.5, "Quick answer, what is this?")))
    assert [(t["mode"], t["question"]) for t in turns] == [("thinking", "why is the square red?"),
                                                            ("instant", "what is this?")]
    assert turns[0]["mode_reason"] == "auto: 'why' leans thinking" and turns[1]["mode_reason"].startswith("voice:")

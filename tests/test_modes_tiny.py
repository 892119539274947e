"""The answer modes on the real HFVLM code with a tiny random-weight Idefics3 (built offline).

What is checked is the shape of the compute, not the text (random weights write garbage):
Contemplating's drafts are ONE generate call with batch size K at every forward step, then
one aggregation; a prompt's greedy draft is the same alone or in a left-padded batch; a
cancel stops a batch in flight.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from pipelines import modes
from core.messages import FrameSnapshot, VLMRequest
from pipelines.modes import ModeContext
from pipelines.tiny import build_vlm
from pipelines.views import build_views
from pipelines.vision import exposure, fit_for_model, sharpness
from pipelines.vlm import HFVLM, VLMConfig

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_vlm(tmp_path_factory.mktemp("vlm"), "tiny")


@pytest.fixture(scope="module")
def vlm(model_dir):
    vlm = HFVLM(VLMConfig(model=str(model_dir), fixed_length=True))  # fixed lengths: every draft is non-trivial
    vlm.setup()
    return vlm


def frames(turned_before: float | None = 1.5) -> list[FrameSnapshot]:
    """Noise frames (one view: their thumbnails are all mid-grey), darker before `turned_before`
    (another view: the wearer was looking elsewhere while asking)."""
    rng = np.random.default_rng(0)
    out = []
    for t in np.arange(0.0, 3.01, 0.25):
        img = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        if turned_before is not None and t < turned_before:
            img //= 4
        out.append(FrameSnapshot(float(t), img, sharpness(img), exposure(img)))
    return out


def context(vlm, agents=4, turned_before: float | None = 1.5) -> ModeContext:
    ring = frames(turned_before)
    best = ring[10]
    request = VLMRequest("what is this?", fit_for_model(best.image), (), "Answer briefly.", 8)
    return ModeContext(vlm, request, threading.Event(), lambda text: None, frames=ring, best=best, start=1.0,
                       end=2.6, agents=agents, expect_first_token=0.0, expect_token_s=0.0)


class Recorder:
    """Wraps model.generate and hooks model.forward: the batch size of each call and each step."""

    def __init__(self, model):
        self.generates: list[int] = []
        self.forwards: list[list[int]] = []  # per generate call, the batch size at each forward
        real = model.generate

        def generate(*args, **kwargs):
            self.generates.append(kwargs["input_ids"].shape[0])
            self.forwards.append([])
            return real(*args, **kwargs)

        def hook(module, args, kwargs):
            x = kwargs.get("input_ids") if kwargs.get("input_ids") is not None else kwargs.get("inputs_embeds")
            self.forwards[-1].append(x.shape[0])

        self.model = model
        model.generate = generate
        self.handle = model.register_forward_pre_hook(hook, with_kwargs=True)

    def close(self) -> None:
        del self.model.generate  # back to the class's method
        self.handle.remove()


@pytest.mark.parametrize("turned_before, encoded", [
    (1.5, 3),  # best frame (for two views), zoomed detail, another moment
    (None, 2),  # a static scene: best frame (for three views), zoomed detail
])
def test_contemplating_is_one_batched_generation_of_k_then_one_aggregation(vlm, turned_before, encoded):
    rec = Recorder(vlm.model)
    images = []
    vision = vlm.model.model.vision_model.register_forward_pre_hook(
        lambda module, args, kwargs: images.append(kwargs["pixel_values"].shape[0]), with_kwargs=True)
    try:
        result = modes.answer("contemplating", context(vlm, agents=4, turned_before=turned_before))
    finally:
        rec.close()
        vision.remove()
    assert rec.generates == [4, 1]  # no sequential per-draft generate
    assert images == [encoded]  # one vision call for the batch; each distinct image encoded once
    assert ("another moment" in [d["view"] for d in result.extra["drafts"]]) == (turned_before is not None)
    drafts, aggregation = rec.forwards
    assert len(drafts) == modes.DRAFT_TOKENS and set(drafts) == {4}  # every draft step carries all K rows
    assert set(aggregation) == {1}
    assert len(result.extra["drafts"]) == 4 and all(d["text"] for d in result.extra["drafts"])
    assert result.extra["aggregation_prompt"].count("\n") >= 5


def test_a_draft_is_the_same_alone_or_in_a_batch(vlm):
    ctx = context(vlm)
    views = build_views(4, image=ctx.request.image, best=ctx.best, frames=ctx.frames, start=ctx.start, end=ctx.end)
    requests = modes.draft_requests(ctx, views, max_new_tokens=12)
    inputs = vlm.batch_inputs(requests)
    mask = inputs["attention_mask"]
    assert len(set(mask.sum(dim=1).tolist())) > 1  # prompts of different lengths: there is padding
    assert (mask[:, -1] == 1).all() and (mask[:, 0] == 0).any()  # on the left
    batched = vlm.generate_batch(requests, threading.Event())
    alone = [vlm.generate_batch([r], threading.Event())[0] for r in requests]
    assert batched == alone and all(batched)


def test_cancel_stops_a_batch_in_flight(vlm):
    ctx = context(vlm)
    rec = Recorder(vlm.model)
    steps = [0]

    def cancel_after_three(module, args, kwargs):
        steps[0] += 1
        if steps[0] == 3:
            ctx.cancel.set()  # as a barge-in would, from another thread, mid-batch

    handle = vlm.model.register_forward_pre_hook(cancel_after_three, with_kwargs=True)
    try:
        result = modes.answer("contemplating", ctx)
    finally:
        handle.remove()
        rec.close()
    assert rec.generates == [4] and len(rec.forwards[0]) == 3  # stopped at the step it was set; no aggregation
    assert result.answer == "" and len(result.extra["drafts"]) == 4


def test_thinking_on_a_model_that_never_writes_the_marker(vlm):
    said = []
    ctx = context(vlm)
    ctx.speak = said.append
    rec = Recorder(vlm.model)
    try:
        result = modes.answer("thinking", ctx)
    finally:
        rec.close()
    assert rec.generates == [1, 1] and len(rec.forwards[0]) == modes.THINK_BUDGET  # reasoning, then the forced answer
    assert result.extra["answer_forced"] and result.extra["reasoning"]
    assert "".join(said).strip() == result.answer


def test_drafts_patch_nothing_on_the_shared_model_so_a_prepare_alongside_is_unaffected(vlm):
    # Speculative vision may prepare a frame on the same model while Contemplating's batch runs.
    ctx = context(vlm, turned_before=None)  # a static scene: the best frame serves three drafts
    other = VLMRequest("", fit_for_model(frames()[2].image), (), "Answer briefly.", 8)
    alone = vlm.prepare(other)
    during, entered = [], []

    def prepare_mid_batch(module, args, kwargs):
        if not entered:  # once: prepare's own forward comes through here too
            entered.append(True)
            assert "get_image_features" not in vars(vlm.model.model)  # nothing patched on the instance
            during.append(vlm.prepare(other))

    handle = vlm.model.model.text_model.register_forward_pre_hook(prepare_mid_batch, with_kwargs=True)
    try:
        modes.answer("contemplating", ctx)
    finally:
        handle.remove()
    (mid,) = during
    assert torch.equal(mid.input_ids, alone.input_ids)
    assert torch.allclose(mid.cache.layers[0].keys, alone.cache.layers[0].keys)

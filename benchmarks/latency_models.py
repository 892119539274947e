"""The latency benchmark's models: random weights at the real sizes, built once and cached, and
the real HFVLM made to emit a fixed answer with timing hooks (see benchmarks/latency.py)."""
from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.scenario import ANSWER, QUESTIONS
from pipelines.text import first_piece

if TYPE_CHECKING:
    from benchmarks.latency_run import BenchOptions

CACHE_VERSION = "bench-v1"  # bump when the model recipe changes, so stale folders are not reused


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


def make_bench_vlm(config, clock, answer: str = ANSWER):
    """The real HFVLM, plus forced answer tokens (those of `answer`) and timing hooks (defined
    here so that importing this module does not import torch)."""
    from pipelines.vlm import HFVLM

    class BenchVLM(HFVLM):
        def setup(self) -> None:
            super().setup()
            self.clock = clock
            self.events: list[tuple[str, float]] = []  # (what, session time), appended by hooks
            tok = self.processor.tokenizer
            self.answer_ids = tok(answer, add_special_tokens=False).input_ids
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

        def prepare(self, request, stop=None):
            self.events.append(("prep0", self.clock.now()))
            try:
                return super().prepare(request, stop)
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

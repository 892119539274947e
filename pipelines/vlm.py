"""Answering: a vision-language model from Hugging Face transformers, streamed.

`HFVLM` loads any image-text-to-text model with `AutoProcessor` and
`AutoModelForImageTextToText` (the default, SmolVLM-256M-Instruct, is Idefics3 and needs
no torchvision). Tokens stream through `TextIteratorStreamer` so speech can start on the
first sentence, and a cancel event stops generation between tokens (barge-in, "stop").
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Iterator, Protocol

import numpy as np

from pipelines.messages import VLMRequest
from pipelines.models import unavailable

SYSTEM_PROMPT = (
    "You are the assistant inside a pair of smart glasses. You see what the wearer sees "
    "through the glasses' camera and you answer in their ear. Answer in one or two short, "
    "plain spoken sentences: no lists, no markdown, no preamble. If the image does not show "
    "what is needed to answer, say so honestly instead of guessing."
)


class VisionLanguageModel(Protocol):
    def stream(self, request: VLMRequest, cancel: threading.Event) -> Iterator[str]:
        """Yield pieces of answer text as they are generated; stop early when `cancel` is set."""
        ...


@dataclass(frozen=True)
class VLMConfig:
    model: str = "HuggingFaceTB/SmolVLM-256M-Instruct"
    device: str = "cpu"
    dtype: str = "float32"  # "bfloat16" halves prefill on CPUs with AMX
    image_splitting: bool = False  # splitting multiplies vision cost by up to ~13: off for latency
    threads: int = 0  # 0: torch's default


def build_messages(request: VLMRequest) -> list[dict]:
    """Chat messages in the processor's format: system, recent turns, then image + question."""
    messages = []
    if request.system:
        messages.append({"role": "system", "content": [{"type": "text", "text": request.system}]})
    for question, answer in request.history:
        messages.append({"role": "user", "content": [{"type": "text", "text": question}]})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    content = [{"type": "image"}] if request.image is not None else []
    content.append({"type": "text", "text": request.question})
    messages.append({"role": "user", "content": content})
    return messages


class HFVLM:
    def __init__(self, config: VLMConfig):
        self.config = config
        self.processor = None
        self.model = None

    def setup(self) -> None:
        try:
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor
            from transformers.utils import logging as hf_logging

            # transformers' own "Loading weights" bar on every start is noise; the hub's download
            # bars (first run only) are separate and stay on.
            hf_logging.set_tqdm_hook(lambda factory, args, kwargs: factory(*args, **{**kwargs, "disable": True}))

            if self.config.threads:
                torch.set_num_threads(self.config.threads)
            self.processor = AutoProcessor.from_pretrained(self.config.model)
            self.model = AutoModelForImageTextToText.from_pretrained(
                self.config.model, dtype=getattr(torch, self.config.dtype)
            ).to(self.config.device)
            self.model.eval()
        except Exception as err:
            raise unavailable("vision-language", self.config.model, err) from err

    def inputs(self, request: VLMRequest):
        from PIL import Image

        prompt = self.processor.apply_chat_template(build_messages(request), add_generation_prompt=True)
        kwargs = {"text": [prompt], "return_tensors": "pt"}
        if request.image is not None:
            kwargs["images"] = [[Image.fromarray(np.ascontiguousarray(request.image))]]
            kwargs["do_image_splitting"] = self.config.image_splitting
        return self.processor(**kwargs).to(self.config.device)

    def stream(self, request: VLMRequest, cancel: threading.Event) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

        inputs = self.inputs(request)
        streamer = TextIteratorStreamer(self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []

        def generate() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(
                        **inputs, streamer=streamer, max_new_tokens=request.max_new_tokens, do_sample=False,
                        stopping_criteria=StoppingCriteriaList([_Cancelled()]),
                    )
            except BaseException as err:  # re-raised in the caller's thread below
                failure.append(err)
                streamer.end()  # otherwise the consumer would wait forever

        worker = threading.Thread(target=generate, name="vlm-generate", daemon=True)
        worker.start()
        for piece in streamer:
            if piece:
                yield piece
        worker.join()
        if failure:
            raise failure[0]


class FakeVLM:
    """Scripted answers for tests and benchmarks: yields words with an optional delay."""

    def __init__(self, answer: str = "It is a red square.", delay: float = 0.0, first_delay: float = 0.0):
        self.answer = answer
        self.delay = delay
        self.first_delay = first_delay
        self.requests: list[VLMRequest] = []

    def stream(self, request: VLMRequest, cancel: threading.Event) -> Iterator[str]:
        self.requests.append(request)
        time.sleep(self.first_delay)
        for word in self.answer.split(" "):
            if cancel.is_set():
                return
            time.sleep(self.delay)
            yield word + " "

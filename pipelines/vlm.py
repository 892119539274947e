"""Answering: a vision-language model from Hugging Face transformers, streamed.

`HFVLM` loads any image-text-to-text model with `AutoProcessor` and
`AutoModelForImageTextToText` (the default, SmolVLM-256M-Instruct, is Idefics3 and needs
no torchvision). Tokens stream through `TextIteratorStreamer` so speech can start on the
first sentence, and a cancel event stops generation between tokens (barge-in, "stop").

`generate_batch` answers several prompts with one `generate` call (Contemplating's drafts):
left padding with an attention mask, one image per prompt, and each distinct image encoded
once. That is what makes K drafts affordable on one machine: a decoding step reads all the
weights once for every row, and views that share a frame share its vision encoding.

`prepare` is speculative vision: while the wearer is still speaking, it runs the vision
tower on the chosen frame and pre-fills the prompt up to the question (system prompt,
recent turns, image tokens) into a KV cache. `stream` given that `Prefix` (in
`VLMRequest.prefix`) has only the question's few tokens left to pre-fill.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Iterator, Protocol

import numpy as np

from core.messages import VLMRequest
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

    def generate_batch(self, requests: list[VLMRequest], cancel: threading.Event,
                       max_new_tokens: int | None = None, min_new_tokens: int | None = None) -> list[str]:
        """One text per request, generated together; partial texts when `cancel` is set."""
        ...


@dataclass(frozen=True)
class VLMConfig:
    model: str = "HuggingFaceTB/SmolVLM-256M-Instruct"
    device: str = "cpu"
    dtype: str = "float32"  # "bfloat16" halves prefill on CPUs with AMX
    image_splitting: bool = False  # splitting multiplies vision cost by up to ~13: off for latency
    threads: int = 0  # 0: torch's default
    fixed_length: bool = False  # benchmarks: ignore end-of-answer, every generation runs to its cap


STREAM_JOIN_S = 2.0  # a consumer that stops reading without cancelling waits this long for the generator
_MARK = "\u2063QUESTION\u2063"  # stands in for the question when the prompt is cut before it


@dataclass
class Prefix:
    """Speculative vision's product: a prompt up to its question, encoded, in a KV cache.

    Valid for a request with the same system prompt, history and image (the same array
    object: the session hands over the frame it prepared). Each generation runs on a copy of
    the cache, so an answer begun early and discarded (the wearer went on speaking) leaves it
    as prepared for the answer to the whole question. `used`: an answer ran on it.
    """

    system: str
    history: tuple
    image: np.ndarray
    input_ids: Any  # (1, P) token ids of the prefix, image tokens expanded
    cache: Any  # the model's KV cache after those P tokens
    text: str  # the prompt's text up to the question
    suffix: str  # the template's text after the question ("<end_of_utterance>\nAssistant:")
    seconds: float = 0.0
    used: bool = False

    def fits(self, request: VLMRequest) -> bool:
        return (request.image is self.image and request.system == self.system
                and tuple(request.history) == self.history)


def cpu_has_bf16() -> bool:
    """bf16 matmuls are only fast with AVX512-BF16 or AMX; elsewhere they are emulated and slow."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def default_dtype(device: str = "cpu") -> str:
    """The app's dtype: bfloat16 where it is fast (a GPU, or a CPU with AMX / AVX512-BF16: vision
    and prefill take half the time, see BENCHMARKS.md), float32 elsewhere (emulated bf16 is slow)."""
    if device.startswith("cuda"):
        return "bfloat16"
    return "bfloat16" if cpu_has_bf16() else "float32"


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


class Superseded(Exception):
    """A speculative prepare() was stopped between two layers: the view it was for has changed."""


class HFVLM:
    def __init__(self, config: VLMConfig):
        self.config = config
        self.processor = None
        self.model = None
        self._stop = threading.local()  # .event: the prepare() running in this thread stops when it is set

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
            self.processor.tokenizer.padding_side = "left"  # batches: see batch_inputs
            self.model = AutoModelForImageTextToText.from_pretrained(
                self.config.model, dtype=getattr(torch, self.config.dtype)
            ).to(self.config.device)
            self.model.eval()
            self._stop_between_layers()
        except Exception as err:
            raise unavailable("vision-language", self.config.model, err) from err

    def _stop_between_layers(self) -> None:
        """A forward pass cannot be cancelled, but it can be left between two layers. A hook before
        every transformer layer (vision and text) raises Superseded in a thread whose prepare() was
        told to stop; other threads (an answer generating) never see it. About a microsecond a layer."""
        import re

        def check(module, args):
            event = getattr(self._stop, "event", None)
            if event is not None and event.is_set():
                raise Superseded

        for name, module in self.model.named_modules():
            if re.search(r"\.layers\.\d+$", name):
                module.register_forward_pre_hook(check)

    def inputs(self, request: VLMRequest):
        return self.batch_inputs([request])

    def batch_inputs(self, requests: list[VLMRequest]):
        """Processor tensors for one or more prompts, left-padded, with an attention mask.

        Left padding puts every row's last prompt token at the end, where generation goes on;
        generate() derives each row's positions from the mask, so a prompt gets the same greedy
        answer alone or in a batch. A prompt without an image gets an empty image list (the
        processor pads it with a blank image that the model skips).
        """
        prompts = [self.processor.apply_chat_template(build_messages(r), add_generation_prompt=True) for r in requests]
        return self._processed(prompts, requests)

    def _processed(self, prompts: list[str], requests: list[VLMRequest]):
        from PIL import Image

        kwargs = {"text": prompts, "return_tensors": "pt", "padding": True}
        if any(r.image is not None for r in requests):
            kwargs["images"] = [[Image.fromarray(np.ascontiguousarray(r.image))] if r.image is not None else []
                                for r in requests]
            kwargs["do_image_splitting"] = self.config.image_splitting
            if not self.config.image_splitting:
                # Resize straight to the tile size: the default path scales a 512 px frame up to
                # the 2048 px split size and back down, 85 ms of the first token on 2 cores.
                tile = getattr(self.processor.image_processor, "max_image_size", None)
                if isinstance(tile, dict) and tile.get("longest_edge"):
                    kwargs["size"] = {"longest_edge": tile["longest_edge"]}
        return self.processor(**kwargs).to(self.config.device)

    def prepare(self, request: VLMRequest, stop: threading.Event | None = None) -> Prefix | None:
        """Speculative vision for `request` (its question is ignored): encode the image and
        pre-fill everything before the question. None where it does not apply: no image, or
        an architecture whose prompt this has not been checked on (Idefics3/SmolVLM only), and
        when `stop` is set before it is done (the next layer leaves the forward pass: a head
        turn's new frame need not wait ~0.8 s for the old one's encoding to finish)."""
        import torch

        if request.image is None or getattr(self.model.config, "model_type", "") not in ("idefics3", "smolvlm"):
            return None
        t0 = time.perf_counter()
        marked = self.processor.apply_chat_template(build_messages(replace(request, question=_MARK)),
                                                    add_generation_prompt=True)
        if marked.count(_MARK) != 1:
            return None
        cut = marked.index(_MARK)
        inputs = self._processed([marked[:cut]], [request])
        self._stop.event = stop
        try:
            with torch.inference_mode():
                out = self.model(**inputs, use_cache=True, logits_to_keep=1)
        except Superseded:
            return None
        finally:
            self._stop.event = None
        return Prefix(request.system, tuple(request.history), request.image, inputs["input_ids"],
                      out.past_key_values, marked[:cut], marked[cut + len(_MARK):], time.perf_counter() - t0)

    def _inputs_for(self, request: VLMRequest) -> dict:
        """generate() inputs for one request: after its prepared prefix when that fits, else whole."""
        prefix = request.prefix
        if isinstance(prefix, Prefix) and prefix.fits(request):
            prompt = self.processor.apply_chat_template(build_messages(request), add_generation_prompt=True)
            if prompt == prefix.text + request.question + prefix.suffix:  # the template put nothing else between
                return self._after_prefix(prefix, request)
        return self.inputs(request)

    def _after_prefix(self, prefix: Prefix, request: VLMRequest) -> dict:
        """generate() inputs that continue from a prepared prefix: the whole prompt's ids (generate
        pre-fills only what the cache lacks) and no pixels (the image is already in the cache).
        generate() appends to the cache it is given: it gets a copy (a few MB, milliseconds)."""
        import copy

        import torch

        prefix.used = True
        rest = self.processor.tokenizer(request.question + prefix.suffix, add_special_tokens=False,
                                        return_tensors="pt")["input_ids"].to(prefix.input_ids.device)
        ids = torch.cat([prefix.input_ids, rest], dim=1)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "past_key_values": copy.deepcopy(prefix.cache)}

    def _generate_kwargs(self, cancel: threading.Event, max_new_tokens: int, min_new_tokens: int | None) -> dict:
        from transformers import StoppingCriteriaList

        if self.config.fixed_length:
            min_new_tokens = max_new_tokens
        kwargs = dict(max_new_tokens=max_new_tokens, do_sample=False,
                      stopping_criteria=StoppingCriteriaList([_cancelled(cancel)]))
        if min_new_tokens:
            kwargs["min_new_tokens"] = min(min_new_tokens, max_new_tokens)
        return kwargs

    def stream(self, request: VLMRequest, cancel: threading.Event) -> Iterator[str]:
        import torch
        from transformers import TextIteratorStreamer

        inputs = self._inputs_for(request)
        streamer = TextIteratorStreamer(self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []

        def generate() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(**inputs, streamer=streamer,
                                        **self._generate_kwargs(cancel, request.max_new_tokens, None))
            except BaseException as err:  # re-raised in the caller's thread below
                failure.append(err)
                streamer.end()  # otherwise the consumer would wait forever

        worker = threading.Thread(target=generate, name="vlm-generate", daemon=True)
        worker.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            # Also when the consumer stops early (cancelled): generation ends at the next token, and a
            # thread still inside torch when the interpreter exits aborts the process.
            worker.join(timeout=None if cancel.is_set() or not worker.is_alive() else STREAM_JOIN_S)
        if failure:
            raise failure[0]

    def generate_batch(self, requests: list[VLMRequest], cancel: threading.Event,
                       max_new_tokens: int | None = None, min_new_tokens: int | None = None) -> list[str]:
        """Greedy answers to all `requests` from one `generate` call of batch size len(requests).

        The cap is `max_new_tokens`, else the largest of the requests' own caps, each row then
        cut to its own. Setting `cancel` stops the whole batch at the next step; the partial
        texts are returned.
        """
        import torch

        if not requests:
            return []
        cap = max_new_tokens or max(r.max_new_tokens for r in requests)
        inputs = dict(self.batch_inputs(requests))
        with torch.inference_mode():
            encoded = self._encode_once(inputs, requests)
            if encoded is not None:  # the images go in encoded: generate() must not encode them again
                inputs.pop("pixel_values")
                inputs.pop("pixel_attention_mask", None)
                inputs["mm_encoder_outputs"] = {"image": encoded}
            out = self.model.generate(**inputs, **self._generate_kwargs(cancel, cap, min_new_tokens))
        new = out[:, inputs["input_ids"].shape[1]:]  # (B, T_new): rows that ended early are padded
        limits = [cap if max_new_tokens else r.max_new_tokens for r in requests]
        return [self.processor.decode(row[:n], skip_special_tokens=True).strip() for row, n in zip(new, limits)]

    def _encode_once(self, inputs: dict, requests: list[VLMRequest]):
        """Each distinct image encoded once for the whole batch (views that share the best frame), as
        the `mm_encoder_outputs` that transformers' generate() accepts in place of pixels; None when
        that does not apply (another architecture, image splitting, a prompt without an image, or no
        image repeated): generate() then encodes as usual.

        On a CPU the vision tower is most of a prompt's prefill and, unlike decoding, gets no cheaper
        in a batch; identical images need it only once. Nothing on the shared model is patched, so a
        speculative `prepare` running at the same time is unaffected.
        """
        keys = [(r.image.shape, r.image.tobytes()) if r.image is not None else None for r in requests]
        firsts = {k: keys.index(k) for k in keys}
        if (None in keys or len(firsts) == len(keys) or self.config.image_splitting
                or getattr(self.model.config, "model_type", "") not in ("idefics3", "smolvlm")):
            return None
        order = list(firsts.values())  # rows whose image is encoded
        inverse = [order.index(firsts[k]) for k in keys]  # the encoded image each row uses
        pixels, mask = inputs["pixel_values"], inputs.get("pixel_attention_mask")  # (B, 1, 3, H, W), (B, 1, H, W)
        out = self.model.model.get_image_features(pixels[order], None if mask is None else mask[order],
                                                  return_dict=True)
        features = out.pooler_output  # one (image tokens, hidden) per encoded prompt
        out.pooler_output = [features[i] for i in inverse]  # one per prompt again
        return out


def _cancelled(cancel: threading.Event):
    """A stopping criterion that ends every row at once when `cancel` is set (barge-in, "stop")."""
    import torch
    from transformers import StoppingCriteria

    class Cancelled(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

    return Cancelled()

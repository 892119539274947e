"""Answering on a model server: any OpenAI-compatible chat API with images (vLLM, `transformers
serve`, llama.cpp's llama-server, Ollama), behind the same interface as `HFVLM`.

Only the answer goes remote; camera, microphone, VAD, ASR, TTS, display and log stay on the
glasses' side. Each answer is one streamed chat completion (`stream=true`, server-sent
events): the same system prompt and recent turns as local answering, then the frame as a
base64 JPEG `image_url` and the question, greedy (`temperature` 0), capped by `max_tokens`.

Cancelling (barge-in, "stop", a newer question) hangs up the stream's connection at once:
a small watcher shuts the socket down (`shutdown`, not only `close`: a close from another
thread does not wake a reader blocked on a silent server, and the server would not see the
hang-up until its next token). Servers stop generating when their client goes (transformers
serve cancels the request's generation, vLLM aborts it); benchmarks/remote_cancel.py measures
how soon. A cancel that comes before the server has sent its response headers takes effect
when they arrive (transformers serve sends them at once; a server that sends them with its
first token makes that the end of the prefill).

Contemplating's K drafts go as K parallel requests: each draft has its own view (image and
instruction), so one request with `n=K` (K samples of ONE prompt) does not fit them, and
`transformers serve` ignores `n` anyway. A server that batches (vLLM always; transformers
serve with --continuous-batching, for text-only models) batches the K requests itself.

There is no KV cache to fill from here: `can_prepare` is False and `prepare` returns None, so
speculative vision and memory's pre-fill skip that work (see README on vLLM's prefix caching).

Every failure (timeout, connection refused, a 4xx or 5xx, a model the server lacks, a server
that stops mid-answer) raises `RemoteError` with one line that names the server; the answer
runner apologises aloud and logs it, and the next question simply tries again.
The API key, when the server wants one, is read from an environment variable, never a flag.
"""
from __future__ import annotations

import base64
import io
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from core.messages import VLMRequest

API_KEY_ENV = "GLASSES_VLM_API_KEY"
NO_KEY = "EMPTY"  # what vLLM's docs send when the server has no --api-key; servers without one ignore it
CANCEL_POLL = 0.01  # seconds between the watcher's looks at the cancel event


@dataclass(frozen=True)
class RemoteConfig:
    url: str  # the API's base, e.g. http://gpu-box:8000/v1 (a bare http://host:port gets /v1)
    model: str  # the served model's name, as the server's /v1/models lists it
    api_key_env: str = API_KEY_ENV  # the environment variable holding the key (unset: no key)
    timeout: float = 30.0  # seconds the server may stay silent: to answer, and between two pieces
    connect_timeout: float = 5.0
    jpeg_quality: int = 90


class RemoteError(Exception):
    """The server could not give an answer; str() is one line that names it and says why."""


# --- pure functions ------------------------------------------------------------------------
def base_url(url: str) -> str:
    """The API's base URL for a --vlm-url (ValueError with one line when it cannot be one).

    http://host:port and http://host:port/ become http://host:port/v1; a path is kept as given
    (…/v1, or a proxy's own prefix), less a trailing /chat/completions pasted from a curl line."""
    text = (url or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--vlm-url wants http://HOST:PORT/v1 (an OpenAI-compatible server), got {url!r}")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError(f"--vlm-url has a bad port: {url!r}") from None
    path = parts.path.rstrip("/")
    for tail in ("/chat/completions", "/models"):
        if path.endswith(tail):
            path = path[: -len(tail)]
    return urlunsplit((parts.scheme, parts.netloc, path or "/v1", "", ""))


def host_of(url: str) -> str:
    """host:port of a URL, for messages, the badge and the session record (never a path or a key)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def jpeg_data_url(image_rgb: np.ndarray, quality: int = 90) -> str:
    """An RGB uint8 frame as a data: URL holding a JPEG (what `image_url` takes)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image_rgb)).save(buffer, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def chat_messages(request: VLMRequest, quality: int = 90) -> list[dict]:
    """OpenAI chat messages for a request, in the order local answering builds its prompt
    (pipelines.vlm.build_messages): system, recent turns, then the image and the question."""
    def text(value: str):
        # Plain strings suit every server; an empty one (a turn that failed has no answer) goes as an empty
        # text part, which transformers serve would otherwise drop, leaving its chat template a message with
        # no content (a 500).
        return value if value else [{"type": "text", "text": ""}]

    messages: list[dict] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for question, answer in request.history:
        messages.append({"role": "user", "content": text(question)})
        messages.append({"role": "assistant", "content": text(answer)})
    content: list[dict] = []
    if request.image is not None:
        content.append({"type": "image_url", "image_url": {"url": jpeg_data_url(request.image, quality)}})
    content.append({"type": "text", "text": request.question})
    messages.append({"role": "user", "content": content})
    return messages


def _first_line(text: object, limit: int = 160) -> str:
    lines = str(text).strip().splitlines()
    return lines[0][:limit] if lines else ""


def server_detail(body: object) -> str:
    """The reason inside an error response's body, in the shapes servers use: OpenAI's and vLLM's
    {"error": {"message"}}, FastAPI's {"detail"} (transformers serve), llama.cpp's {"error": "..."}."""
    if isinstance(body, dict):
        for key in ("error", "detail", "message"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("msg")
            if isinstance(value, list) and value and isinstance(value[0], dict):  # FastAPI's validation errors
                value = value[0].get("msg")
            if value:
                return _first_line(value)
    return _first_line(body) if body else ""


def _root_cause(err: BaseException) -> BaseException:
    seen = set()
    while (err.__cause__ or err.__context__) is not None and id(err) not in seen:
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return err


def explain(err: BaseException, host: str, timeout: float, mid_answer: bool = False) -> str:
    """One line for a failed request (the openai client's exceptions); pure but for the class checks."""
    import openai

    if isinstance(err, openai.APITimeoutError):
        where = "in the middle of an answer" if mid_answer else "to a request"
        return f"the VLM server at {host} sent nothing for {timeout:g} s {where} (timed out)"
    if isinstance(err, openai.APIStatusError):
        detail = server_detail(err.body) or _first_line(err.response.reason_phrase)
        hint = " (set the key in $" + API_KEY_ENV + ")" if err.status_code in (401, 403) else ""
        return f"the VLM server at {host} answered {err.status_code}: {detail}{hint}"
    if isinstance(err, openai.APIConnectionError):
        cause = _root_cause(err)
        why = "connection refused" if isinstance(cause, ConnectionRefusedError) else (
            _first_line(cause) or type(cause).__name__)
        if mid_answer:
            return f"the VLM server at {host} stopped in the middle of an answer ({why})"
        return f"cannot reach the VLM server at {host}: {why}"
    if isinstance(err, openai.APIError):  # an error event inside the stream
        return f"the VLM server at {host} failed in the middle of an answer: {_first_line(err.message)}"
    return f"the VLM server at {host} failed: {type(err).__name__}: {_first_line(err)}"


def hang_up(response) -> None:
    """End a streaming response's connection now, from any thread: shutdown wakes the reader
    (its next read sees the end) and tells the server the client has gone."""
    stream = getattr(response, "extensions", {}).get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already closed
            pass


class _Watcher:
    """Hangs up a response the moment `cancel` is set; ends with the stream (`done`)."""

    def __init__(self, response, cancel: threading.Event):
        self._done = threading.Event()
        self.fired = False
        self._thread = threading.Thread(target=self._watch, args=(response, cancel), name="remote-cancel", daemon=True)
        self._thread.start()

    def _watch(self, response, cancel: threading.Event) -> None:
        while not self._done.wait(CANCEL_POLL):
            if cancel.is_set():
                self.fired = True
                hang_up(response)
                return

    def done(self) -> None:
        self._done.set()
        self._thread.join()


# --- the backend ------------------------------------------------------------------------------
class RemoteVLM:
    """A VisionLanguageModel (pipelines.vlm) answered by a server; see the module doc."""

    can_prepare = False  # no KV cache here to fill early: speculative vision and memory skip that work

    def __init__(self, config: RemoteConfig):
        self.config = config
        self.url = base_url(config.url)
        self.host = host_of(self.url)
        self.model = config.model  # setup() takes the server's only model when this is empty
        self.client = None
        self._lock = threading.Lock()  # the drafts' threads open the client once

    def setup(self) -> None:
        """Check the server (its model list, or a one-token probe) and open the client.
        pipelines.models.ModelUnavailable with one line when it cannot answer with the model."""
        from pipelines.models import ModelUnavailable
        from pipelines.remote_check import resolve_model

        self.model, problem = resolve_model(self.url, self.config.model, self.config.api_key_env, self.config.timeout)
        if problem:
            raise ModelUnavailable(problem)
        self._client()

    def _client(self):
        with self._lock:
            if self.client is None:
                self.client = make_client(self.url, self.config.api_key_env, self.config.timeout,
                                          self.config.connect_timeout)
            return self.client

    def describe(self) -> dict:
        """What the session record says about the model: its name and the server's host (no key)."""
        return {"vlm": self.model, "remote": self.host}

    def prepare(self, request: VLMRequest, stop: threading.Event | None = None) -> None:
        """Nothing to prepare remotely (see `can_prepare`)."""
        return None

    def stream(self, request: VLMRequest, cancel: threading.Event) -> Iterator[str]:
        body = dict(model=self.model, messages=chat_messages(request, self.config.jpeg_quality),
                    max_tokens=request.max_new_tokens, temperature=0)
        yield from self.stream_body(body, cancel)

    def generate_batch(self, requests: list[VLMRequest], cancel: threading.Event,
                       max_new_tokens: int | None = None, min_new_tokens: int | None = None) -> list[str]:
        """One text per request, as parallel streamed requests (the server batches them); partial
        texts when `cancel` is set. `min_new_tokens` has no place in the chat API and is ignored.
        The first failure fails the batch: the other requests are hung up, and it is raised."""
        if not requests:
            return []
        failed = threading.Event()
        stop = _Either(cancel, failed)

        def one(request: VLMRequest) -> str:
            capped = request if max_new_tokens is None else _with_cap(request, max_new_tokens)
            try:
                return "".join(self.stream(capped, stop)).strip()
            except BaseException:
                failed.set()
                raise

        with ThreadPoolExecutor(max_workers=len(requests), thread_name_prefix="remote-draft") as pool:
            futures = [pool.submit(one, r) for r in requests]
        texts, error = [], None
        for future in futures:  # the one that failed first set `failed`; the others stopped quietly
            try:
                texts.append(future.result())
            except RemoteError as err:
                error = error or err
                texts.append("")
        if error is not None and not cancel.is_set():
            raise error
        return texts

    def stream_body(self, body: dict, cancel: threading.Event) -> Iterator[str]:
        """The streamed text of one chat completion with this request body (the chat API's fields but
        `stream`); stops quietly when `cancel` is set."""
        import openai

        if cancel.is_set():
            return
        client = self._client()
        try:
            response = client.chat.completions.create(stream=True, **body)
        except openai.OpenAIError as err:
            raise RemoteError(explain(err, self.host, self.config.timeout)) from None
        watcher = _Watcher(response.response, cancel)
        try:
            for chunk in response:
                piece = chunk.choices[0].delta.content if chunk.choices else None
                if piece:
                    yield piece
                if cancel.is_set():
                    return
        except openai.OpenAIError as err:
            if watcher.fired or cancel.is_set():
                return  # our own hang-up, not the server's failure
            raise RemoteError(explain(err, self.host, self.config.timeout, mid_answer=True)) from None
        finally:
            watcher.done()
            response.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


class _Either:
    """An Event-like view of two events: set when either is (for the drafts' shared stop)."""

    def __init__(self, a: threading.Event, b: threading.Event):
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return self.a.is_set() or self.b.is_set()


def _with_cap(request: VLMRequest, cap: int) -> VLMRequest:
    from dataclasses import replace

    return replace(request, max_new_tokens=cap)


def make_client(url: str, api_key_env: str = API_KEY_ENV, timeout: float = 30.0, connect_timeout: float = 5.0):
    """The openai client for a server: no retries (a failed answer is reported, and the wearer's
    next question is the retry), the key from `api_key_env`, timeouts for the connection and for
    silence. ModelUnavailable with one line when the openai package is missing."""
    try:
        import httpx2
        import openai
    except ImportError as err:
        from pipelines.models import ModelUnavailable

        raise ModelUnavailable(f"the remote VLM backend needs the openai package ({err.name} is missing): "
                               "pip install 'glasses-assistant[remote]'") from err
    return openai.OpenAI(base_url=url, api_key=os.environ.get(api_key_env) or NO_KEY, max_retries=0,
                         timeout=httpx2.Timeout(timeout, connect=connect_timeout))

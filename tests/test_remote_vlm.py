"""The remote VLM backend against a real server: `transformers serve` with the tiny random Idefics3.

One server for the module (starting it costs seconds), on a free port of 127.0.0.1, offline.
It is started with image splitting off, as local answering runs, so that a remote answer can
be checked token for token against HFVLM on the same model. Tests that kill or pause it leave
it running again. Nothing here goes beyond 127.0.0.1.
"""
import importlib
import io
import json
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from core.messages import VLMRequest
from pipelines.models import ModelUnavailable
from pipelines.remote_check import check_server, resolve_model
from pipelines.remote_server import LocalServer, free_port, serving_available
from pipelines.remote_vlm import RemoteConfig, RemoteError, RemoteVLM, base_url, chat_messages, host_of
from tests.cli_helpers import one_line_error, run_demo

NO_SPLITTING = ["--chat-template-kwargs", '{"do_image_splitting": false}']


def one_line(text: str) -> str:
    assert "\n" not in str(text) and "Traceback" not in str(text), text
    return str(text)


def plain(text: str) -> str:
    """Text without U+FFFD: random weights write bytes that are not UTF-8, and where a decoder
    marks them depends on how the stream was cut."""
    return text.replace("\ufffd", "").strip()


def picture(seed=0, shape=(240, 320, 3)):
    return np.random.default_rng(seed).integers(0, 255, shape).astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_vlm_dir():
    from pipelines.tiny import ensure_tiny_models

    return ensure_tiny_models()[0]


@pytest.fixture(scope="module")
def server(tiny_vlm_dir, tmp_path_factory):
    problem = serving_available()
    if problem:
        pytest.skip(problem)
    srv = LocalServer(tiny_vlm_dir, extra_args=NO_SPLITTING, log=tmp_path_factory.mktemp("serve") / "server.log",
                      threads=1)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def vlm(server):
    backend = RemoteVLM(RemoteConfig(server.url, server.model, timeout=20.0))
    backend.setup()
    yield backend
    backend.close()


def server_cpu(server) -> float:
    import psutil

    times = psutil.Process(server.proc.pid).cpu_times()
    return times.user + times.system


# --- pure parts ---------------------------------------------------------------------------------
def test_urls_become_the_api_base_and_bad_ones_are_one_line():
    assert base_url("http://gpu:8000") == "http://gpu:8000/v1"
    assert base_url("http://gpu:8000/v1/") == "http://gpu:8000/v1"
    assert base_url("https://x.example/proxy/v1/chat/completions") == "https://x.example/proxy/v1"
    assert host_of("http://gpu:8000/v1") == "gpu:8000" and host_of("https://x.example/v1") == "x.example:443"
    for bad in ("gpu:8000", "ftp://gpu/v1", "http://", "http://gpu:port/v1"):
        with pytest.raises(ValueError) as err:
            base_url(bad)
        assert "--vlm-url" in one_line(err.value)


def test_messages_hold_the_system_prompt_the_turns_the_jpeg_and_the_question():
    messages = chat_messages(VLMRequest("what is it?", picture(), (("q1", "a1"),), "be brief", 60))
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    image, text = messages[-1]["content"]
    assert image["image_url"]["url"].startswith("data:image/jpeg;base64,") and text == {"type": "text",
                                                                                         "text": "what is it?"}
    assert chat_messages(VLMRequest("hi", None))[-1]["content"] == [{"type": "text", "text": "hi"}]
    user, assistant, _ = chat_messages(VLMRequest("and now?", None, (("what is it?", ""),)))
    assert assistant["content"] == [{"type": "text", "text": ""}]  # a failed turn's empty answer keeps a text part


def test_the_badge_says_remote_and_faces_blurred():
    from pipelines.app.common import privacy_badge

    assert privacy_badge({"remote": "gpu:8000"}, True) == "remote, faces blurred"
    assert privacy_badge({"remote": "gpu:8000"}, False) == "remote"
    assert privacy_badge({}, True) == "faces blurred" and privacy_badge({}, False) == ""


def test_the_speculator_and_memory_skip_preparing_for_a_backend_that_cannot():
    from pipelines.memory.describe import caption_frame
    from pipelines.speculate import Speculator

    class Counting(RemoteVLM):
        prepared = 0

        def prepare(self, request, stop=None):
            Counting.prepared += 1

        def stream(self, request, cancel):
            yield "A cup on a table."

    backend = Counting(RemoteConfig("http://127.0.0.1:9/v1", "m"))
    speculator = Speculator(backend, enabled=True, image_side=64, max_new_tokens=8)
    assert not speculator.enabled
    assert speculator.resolve(None, 0.0, None, ("", ()), True, lambda: True).record["vision"] == "off"
    assert caption_frame(backend, picture(), threading.Event()) == "A cup on a table." and Counting.prepared == 0


# --- against the real server ---------------------------------------------------------------------
@pytest.mark.slow
def test_a_streamed_answer_with_an_image_is_the_local_models_answer(vlm, tiny_vlm_dir):
    from PIL import Image

    from pipelines.vlm import HFVLM, VLMConfig

    request = VLMRequest("what is this?", picture(0, (300, 400, 3)), (("a", "b"),), "sys prompt", 30)
    pieces = list(vlm.stream(request, threading.Event()))
    assert len(pieces) > 3  # streamed, not one block
    # The same greedy answer as local answering on the JPEG the server decoded: the same system prompt,
    # history, image and question reached the model. (Random weights write invalid UTF-8, which the
    # server's decoder and the local streamer turn into U+FFFD at different places: compare without it.)
    buffer = io.BytesIO()
    Image.fromarray(request.image).save(buffer, "JPEG", quality=vlm.config.jpeg_quality)
    decoded = np.array(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    local = HFVLM(VLMConfig(model=str(tiny_vlm_dir), threads=1))
    local.setup()
    expected = "".join(local.stream(VLMRequest(request.question, decoded, request.history, request.system, 30),
                                    threading.Event()))
    assert plain("".join(pieces)) == plain(expected) and len(plain(expected)) > 10
    other = "".join(vlm.stream(replace(request, image=picture(1, (300, 400, 3))), threading.Event()))
    assert plain(other) != plain(expected)  # another picture, another answer: the image is really sent


@pytest.mark.slow
def test_cancel_mid_stream_hangs_up_and_the_server_stops_generating(vlm, server):
    cancel = threading.Event()
    pieces, t_cancel = [], None
    for piece in vlm.stream(VLMRequest("tell me everything", None, (), "", 2000), cancel):
        pieces.append(piece)
        if len(pieces) == 3:
            t_cancel = time.perf_counter()
            cancel.set()
    assert len(pieces) == 3 and time.perf_counter() - t_cancel < 0.2
    time.sleep(0.3)  # the server hears the hang-up and stops at its next token
    before = server_cpu(server)
    time.sleep(1.0)
    assert server_cpu(server) - before < 0.2  # idle (generating takes a whole core)
    t0 = time.perf_counter()  # and it is free for the next question at once (it answers one at a time)
    next(iter(vlm.stream(VLMRequest("hello", None, (), "", 4), threading.Event())))
    assert time.perf_counter() - t0 < 3.0


@pytest.mark.slow
def test_cancel_while_the_server_is_silent_returns_at_once(vlm, server):
    """A reader blocked on a silent server (here a paused one) is woken by the hang-up, not the timeout."""
    cancel = threading.Event()
    stream = vlm.stream(VLMRequest("tell me everything", None, (), "", 2000), cancel)
    next(stream)
    server.pause()
    try:
        timer = threading.Timer(0.3, cancel.set)
        timer.start()
        t0 = time.perf_counter()
        rest = list(stream)  # what was already on its way, then nothing: the stream ends quietly
        assert time.perf_counter() - t0 < 0.3 + 0.5, rest
    finally:
        server.resume()
    t0 = time.perf_counter()
    assert "".join(vlm.stream(VLMRequest("hello", None, (), "", 4), threading.Event()))
    assert time.perf_counter() - t0 < 3.0  # the abandoned answer was stopped when the server woke


@pytest.mark.slow
def test_contemplating_sends_k_drafts_in_parallel_and_aggregates(vlm):
    from core.messages import FrameSnapshot
    from pipelines.modes import ModeContext, contemplating, draft_requests
    from pipelines.views import build_views
    from pipelines.vision import fit_for_model

    camera = picture(2, (480, 640, 3))
    best = FrameSnapshot(1.0, camera, 100.0, 0.5)
    request = VLMRequest("what colour is the cup?", fit_for_model(camera, 256), (), "Answer briefly.", 16)
    spoken: list[str] = []
    ctx = ModeContext(vlm, request, threading.Event(), spoken.append, frames=[best], best=best, start=0.5, end=1.5,
                      image_side=256, agents=3)
    result = contemplating(ctx)
    drafts = [d["text"] for d in result.extra["drafts"]]
    # (random weights: a draft may be empty, when its first token ends the answer)
    assert len(drafts) == 3 and any(drafts) and result.answer and "".join(spoken).strip() == result.answer
    # each draft is its own request (two views of the frame, one zoomed): the same text as alone
    views = build_views(3, image=request.image, best=best, frames=[best], start=0.5, end=1.5, image_side=256)
    assert sum(v.image is not None for v in views) == 3 and len({v.name for v in views}) > 1
    alone = ["".join(vlm.stream(r, threading.Event())).strip() for r in draft_requests(ctx, views)]
    assert [plain(d) for d in drafts] == [plain(a) for a in alone]


def test_a_refused_connection_is_one_line_at_start_up_and_at_request():
    url = f"http://127.0.0.1:{free_port()}/v1"
    problem = check_server(url, "m")
    assert one_line(problem) == f"cannot reach the VLM server at {host_of(url)}: connection refused"
    with pytest.raises(ModelUnavailable, match="connection refused"):
        RemoteVLM(RemoteConfig(url, "m")).setup()
    with pytest.raises(RemoteError) as err:
        list(RemoteVLM(RemoteConfig(url, "m")).stream(VLMRequest("hi", picture()), threading.Event()))
    assert one_line(err.value) == problem


@pytest.mark.slow
def test_a_wrong_model_name_is_one_line_at_start_up_and_at_request(server):
    problem = check_server(server.url, "no-such-model")
    assert "no-such-model" in one_line(problem) and host_of(server.url) in problem
    assert check_server(server.url, server.model) is None
    assert resolve_model(server.url, None)[1].startswith("name the served model with --vlm NAME")
    with pytest.raises(RemoteError) as err:
        list(RemoteVLM(RemoteConfig(server.url, "no-such-model")).stream(VLMRequest("hi", None), threading.Event()))
    assert "answered 400" in one_line(err.value) and "no-such-model" in str(err.value)


@pytest.mark.slow
def test_a_server_error_and_a_timeout_are_one_line(vlm, server):
    bad_image = {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}
    with pytest.raises(RemoteError) as err:
        list(vlm.stream_body(dict(model=server.model, messages=[{"role": "user", "content": [bad_image]}],
                                  max_tokens=4), threading.Event()))
    assert one_line(err.value).startswith(f"the VLM server at {vlm.host} answered 500")
    slow = RemoteVLM(RemoteConfig(server.url, server.model, timeout=1.0))
    server.pause()  # a server that hangs
    try:
        t0 = time.perf_counter()
        with pytest.raises(RemoteError) as err:
            list(slow.stream(VLMRequest("hi", None), threading.Event()))
        assert time.perf_counter() - t0 < 5.0
    finally:
        server.resume()
    assert one_line(err.value) == f"the VLM server at {vlm.host} sent nothing for 1 s to a request (timed out)"


@pytest.mark.slow
def test_a_session_apologises_when_the_server_dies_mid_answer_and_answers_once_it_is_back(server, tmp_path,
                                                                                          monkeypatch):
    """The whole replay: the server is killed (SIGKILL) while the first answer streams and started
    again on the same port; the turn apologises, the error is one line in the log and on the
    display, and the next question is answered by the new server."""
    from glasses.sample import make_clip
    from pipelines.app import ReplayOptions, replay
    replay_app = importlib.import_module("pipelines.app.replay")  # the module: the package exports a function so named
    from tests.fakes import FakeTTS, ScriptedASR

    class DiesOnce(RemoteVLM):
        killed = False

        def stream(self, request, cancel):
            for piece in super().stream(request, cancel):
                yield piece
                if not DiesOnce.killed:
                    DiesOnce.killed = True
                    server.kill()
                    server.start()

    timelines = []
    real = replay_app.render_annotated
    monkeypatch.setattr(replay_app, "render_annotated",
                        lambda src, path, timeline, speech, **kw: (timelines.append(timeline),
                                                                   real(src, path, timeline, speech, **kw))[1])
    clip = make_clip(tmp_path / "c.mp4", duration=4.0, size=(160, 90), audio=False)
    backend = DiesOnce(RemoteConfig(server.url, server.model, timeout=20.0))
    backend.setup()
    out = tmp_path / "out"
    result = replay(ReplayOptions(clip, out=out, progress=False, max_new_tokens=200,
                                  asks=((0.5, "describe everything you see"), (2.5, "what is this?"))),
                    asr=ScriptedASR([]), vlm=backend, tts=FakeTTS())
    records = [json.loads(line) for line in (out / "session.jsonl").read_text().splitlines()]
    assert records[0]["models"]["remote"] == host_of(server.url)
    errors = [r for r in records if r["type"] == "error" and r["stage"] == "answer"]
    assert len(errors) == 1 and one_line(errors[0]["message"]).startswith(
        f"RemoteError: the VLM server at {host_of(server.url)} stopped in the middle of an answer")
    turns = [r for r in records if r["type"] == "turn"]
    assert len(turns) == 2 and turns[1]["answer"] and "Sorry" in turns[0]["spoken"][-1]["text"]
    assert turns[0]["speculation"]["vision"] == "off"  # nothing prepared for a remote model
    states = [state for _, state in timelines[-1]]
    assert any(s.badge == "remote, faces blurred" for s in states)
    assert any("stopped in the middle of an answer" in " ".join(s.notes) for s in states)
    assert len(result.turns) == 2


def test_the_cli_exits_2_with_one_line_when_the_server_cannot_be_reached(tmp_path):
    from glasses.sample import make_clip

    clip = make_clip(tmp_path / "c.mp4", duration=1.0, size=(160, 90), audio=False)
    port = free_port()
    proc = run_demo("replay", clip, "--models", "tiny-random", "--out", tmp_path / "o",
                    "--vlm-url", f"http://127.0.0.1:{port}/v1", "--vlm", "m", cwd=tmp_path)
    assert one_line_error(proc).endswith(f"cannot reach the VLM server at 127.0.0.1:{port}: connection refused")
    assert not (tmp_path / "o").exists()
    proc = run_demo("replay", clip, "--models", "tiny-random", "--vlm-url", "localhost:8000", cwd=tmp_path)
    assert "--vlm-url wants http://HOST:PORT/v1" in one_line_error(proc)


@pytest.mark.slow
def test_the_cli_exits_2_with_one_line_when_the_server_lacks_the_model(server, tmp_path):
    from glasses.sample import make_clip

    clip = make_clip(tmp_path / "c.mp4", duration=1.0, size=(160, 90), audio=False)
    proc = run_demo("replay", clip, "--models", "tiny-random", "--vlm-url", server.url, "--vlm", "no-such-model",
                    cwd=tmp_path)
    assert "refused model 'no-such-model'" in one_line_error(proc)

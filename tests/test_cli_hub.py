"""Hub models: a cached one loads without any request; a missing one fails in seconds, in one line.

No test reaches the network: the cache is a tmp folder laid out as the hub's
(models--org--name/refs/main, snapshots/<hash>/) holding the tiny random-weight models, and
HF_ENDPOINT points at 127.0.0.1: a server that records requests, a closed port, or one that
never answers.
"""
import shutil
import socket
import time

import pytest

from pipelines import models
from pipelines.models import ASR, VLM, ModelUnavailable, hub_repo, locate
from tests.cli_helpers import one_line_error, run_demo

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def put_in_cache(cache, repo, folder, files=None):
    """Lay `folder` out as the hub cache holds a download of `repo` (copies, not the blob symlinks)."""
    root = cache / f"models--{repo.replace('/', '--')}"
    shutil.copytree(folder, root / "snapshots" / COMMIT, ignore=None if files is None else
                    lambda d, names: [n for n in names if n not in files])
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(COMMIT)
    return root


@pytest.fixture(scope="module")
def tiny():
    from pipelines.tiny import ensure_tiny_models

    return ensure_tiny_models()


@pytest.fixture(scope="module")
def cache(tmp_path_factory, tiny):
    vlm_dir, asr_dir = tiny
    cache = tmp_path_factory.mktemp("hub") / "hub"
    put_in_cache(cache, "org/tiny-vlm", vlm_dir)
    put_in_cache(cache, "Systran/faster-whisper-base", asr_dir)  # what --asr base stands for
    return cache


@pytest.fixture
def silent():
    """A port that accepts connections and never answers (a hub behind a black hole)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def closed_port() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connection refused
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def hub(monkeypatch, cache):
    """The hub client's settings for in-process calls (they are read from the environment at import)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", closed_port())
    return constants


# --- in process: where a model is loaded from ------------------------------------------------
def test_names_map_to_hub_repositories():
    assert hub_repo(ASR, "base") == "Systran/faster-whisper-base"
    assert hub_repo(ASR, "org/name") == hub_repo(VLM, "org/name") == "org/name"
    assert hub_repo(VLM, "base") is None and hub_repo(ASR, "/no/such/folder") is None and hub_repo(ASR, "huge") is None


def test_a_cached_model_is_its_snapshot_folder(hub, cache):
    assert locate(VLM, "org/tiny-vlm") == str(cache / "models--org--tiny-vlm" / "snapshots" / COMMIT)
    assert locate(ASR, "base").endswith(COMMIT)


def test_a_local_folder_is_itself(hub, tiny):
    assert locate(VLM, str(tiny[0])) == str(tiny[0])


def test_missing_models_fail_at_once_naming_them(hub, monkeypatch):
    t0 = time.perf_counter()
    with pytest.raises(ModelUnavailable, match="'nobody/does-not-exist'.*cannot be reached"):
        locate(VLM, "nobody/does-not-exist")
    with pytest.raises(ModelUnavailable, match="'huge': no such folder, and not a Whisper size"):
        locate(ASR, "huge")
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailable, match="HF_HUB_OFFLINE is set"):
        locate(ASR, "small")
    assert time.perf_counter() - t0 < 5


def test_an_incomplete_cached_copy_is_not_used(hub, cache, tiny):
    """A download cut short: the cached file list names model.bin, the snapshot lacks it."""
    tree_cache = pytest.importorskip("huggingface_hub._tree_cache", reason="this hub client keeps no file lists")
    root = put_in_cache(cache, "org/cut-short", tiny[1], files={"config.json", "tokenizer.json"})
    listed = {p: tree_cache.TreeCacheEntry(size=1, blob_id="0") for p in ("config.json", "tokenizer.json", "model.bin")}
    tree_cache.write_tree_cache(str(root), COMMIT, listed)
    assert models.cached_snapshot("org/cut-short", ASR) == (None, "its cached copy is incomplete")
    with pytest.raises(ModelUnavailable, match="incomplete"):
        locate(ASR, "org/cut-short")


def test_the_hub_probe_is_bounded(silent, hub, monkeypatch):
    monkeypatch.setattr(hub, "ENDPOINT", silent)
    t0 = time.perf_counter()
    assert "cannot be reached" in models.hub_problem(timeout=1.0)
    assert time.perf_counter() - t0 < 3


# --- the command as a user runs it -----------------------------------------------------------
@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from glasses.sample import make_clip

    return make_clip(tmp_path_factory.mktemp("hub-clip") / "c.mp4", duration=3.0, size=(160, 90), audio=False)


def test_cached_hub_models_start_with_no_request_at_all(cache, clip, recorder, tmp_path):
    endpoint, asked = recorder
    out = tmp_path / "out"
    proc = run_demo("replay", clip, "--vlm", "org/tiny-vlm", "--asr", "base", "--ask", "1:what is this?",
                    "--out", out, "--no-video", env={"HF_HUB_CACHE": str(cache), "HF_ENDPOINT": endpoint}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "what is this?" in proc.stdout and (out / "session.jsonl").exists()
    assert asked == []  # not even a check for updates


@pytest.mark.parametrize("where", ["closed", "silent", "offline"])
def test_an_unknown_hub_id_fails_in_seconds_with_one_line(where, cache, clip, silent, tmp_path):
    env = {"HF_HUB_CACHE": str(cache), "HF_ENDPOINT": {"closed": closed_port(), "silent": silent}.get(where, silent)}
    if where == "offline":
        env["HF_HUB_OFFLINE"] = "1"
    t0 = time.perf_counter()
    proc = run_demo("replay", clip, "--vlm", "nobody/does-not-exist", "--asr", "base", "--out", tmp_path / "o",
                    env=env, timeout=60)
    took = time.perf_counter() - t0
    line = one_line_error(proc)
    assert line.endswith("or try the offline smoke run with --models tiny-random"), line
    assert "cannot load vision-language model 'nobody/does-not-exist'" in line
    assert ("HF_HUB_OFFLINE" in line) == (where == "offline")
    assert took < 20, took  # was 145 s; the probe waits 3 s at most, the rest is Python starting up
    assert not (tmp_path / "o").exists()

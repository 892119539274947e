"""Privacy: with the models in the local cache, a start opens no socket at all.

demo.py runs in a subprocess under a Python audit hook (`sys.addaudithook`, installed by a
small runner before demo's main) that writes down every socket created, connected, bound or
resolved: a replay on the tiny random-weight models (annotated video, face blurring and all),
a replay of hub models that sit in a hub-style cache (HF_HOME, no HF_HUB_OFFLINE, the real
endpoint: any request would at least resolve its name, and that is recorded), and a live
start with a file camera and typed questions. A first download asks the hub for the model and
nothing else (no telemetry). Native code (CTranslate2, onnxruntime, livekit's echo canceller,
espeak) is outside the hook's sight: with GLASSES_TEST_STRACE=1, strace checks its system calls
(it sees only local Unix sockets: the name service cache and PulseAudio, both absent here).
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import BASE_ENV, ROOT

COMMIT = "0123456789abcdef0123456789abcdef01234567"
# Every audit event that means a socket, and the name lookups that come before a connection.
RUNNER = r"""
import os, runpy, sys
log = open(os.environ["AUDIT_LOG"], "a", buffering=1)
ON_A_SOCKET = {"socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"}
WATCH = ON_A_SOCKET | {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo"}

def hook(event, args):
    if event in WATCH:  # the socket object itself is left out: its repr would ask it for its address
        log.write(event + " " + repr(args[1:] if event in ON_A_SOCKET else args)[:300] + "\n")

sys.addaudithook(hook)
sys.argv = [os.environ["DEMO"], *sys.argv[1:]]
sys.path.insert(0, os.path.dirname(sys.argv[0]))
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def audited(args, tmp_path, env=None, input=None, timeout=300):
    """demo.py with `args` under the audit hook: (the finished process, the socket events seen)."""
    log = tmp_path / "audit.log"
    log.write_text("")
    full_env = {**BASE_ENV, "AUDIT_LOG": str(log), "DEMO": str(ROOT / "demo.py"), **(env or {})}
    proc = subprocess.run([sys.executable, "-c", RUNNER, *map(str, args)], capture_output=True, text=True,
                          cwd=tmp_path, env=full_env, input=input, timeout=timeout)
    return proc, log.read_text().splitlines()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from glasses.sample import make_clip

    return make_clip(tmp_path_factory.mktemp("no-net") / "c.mp4", duration=3.0, size=(160, 90), audio=False)


@pytest.fixture(scope="module")
def tiny():
    from pipelines.tiny import ensure_tiny_models

    return ensure_tiny_models()


def hub_home(root: Path, tiny) -> Path:
    """HF_HOME as the hub client leaves it after downloading both default-shaped models:
    hub/models--org--name/{refs/main, snapshots/<commit>/} (copies, not the blob symlinks)."""
    vlm_dir, asr_dir = tiny
    for repo, folder in (("org/tiny-vlm", vlm_dir), ("Systran/faster-whisper-base", asr_dir)):
        cached = root / "hub" / f"models--{repo.replace('/', '--')}"
        shutil.copytree(folder, cached / "snapshots" / COMMIT)
        (cached / "refs").mkdir()
        (cached / "refs" / "main").write_text(COMMIT)
    return root


def test_the_runner_sees_a_socket(tmp_path):
    """The hook works: a start that does open one is caught (a name lookup here)."""
    probe = "import socket\ntry:\n    socket.getaddrinfo('localhost', 80)\nexcept OSError:\n    pass\n"
    script = tmp_path / "probe.py"
    script.write_text(probe)
    log = tmp_path / "audit.log"
    subprocess.run([sys.executable, "-c", RUNNER], env={**BASE_ENV, "AUDIT_LOG": str(log), "DEMO": str(script)},
                   check=True, timeout=60)
    assert any(line.startswith("socket.getaddrinfo ('localhost', 80") for line in log.read_text().splitlines())


def test_a_replay_on_tiny_models_opens_no_socket(clip, tiny, tmp_path):
    proc, sockets = audited(["replay", clip, "--models", "tiny-random", "--ask", "1:what is this?",
                             "--out", tmp_path / "out"], tmp_path, env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "annotated.mp4").exists()
    assert sockets == []


def test_hub_models_in_the_cache_start_with_no_socket_even_online(clip, tiny, tmp_path):
    """No HF_HUB_OFFLINE, the real endpoint: not even a check for updates, nor a name lookup."""
    home = hub_home(tmp_path / "hf", tiny)
    proc, sockets = audited(["replay", clip, "--vlm", "org/tiny-vlm", "--asr", "base", "--ask", "1:what is this?",
                             "--out", tmp_path / "out"], tmp_path, env={"HF_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    session = json.loads((tmp_path / "out" / "session.jsonl").read_text().splitlines()[0])
    assert session["models"]["vlm"] == "org/tiny-vlm"  # the hub id, loaded from its cached snapshot
    assert sockets == []


def test_a_live_start_with_typed_questions_opens_no_socket(clip, tiny, tmp_path):
    proc, sockets = audited(["live", "--camera", clip, "--mic", "none", "--speaker", "none", "--no-window",
                             "--models", "tiny-random", "--out", tmp_path / "out"], tmp_path,
                            env={"HF_HUB_OFFLINE": "1"}, input="what is this?\n")
    assert proc.returncode == 0, proc.stderr
    assert "heard:  what is this?" in proc.stdout
    assert sockets == []


def test_a_download_asks_the_hub_for_the_model_and_nothing_else(clip, tiny, tmp_path, recorder):
    """A model not cached yet: the hub is asked whether it answers, then for that model's files.
    No telemetry: the hub client would first fetch its list of AI agents (/api/agent-harnesses)."""
    endpoint, asked = recorder
    home = hub_home(tmp_path / "hf", tiny)
    proc, sockets = audited(["replay", clip, "--vlm", "nobody/not-cached", "--asr", "base", "--out", tmp_path / "out"],
                            tmp_path, env={"HF_HOME": str(home), "HF_ENDPOINT": endpoint})
    assert proc.returncode == 2 and "cannot load vision-language model 'nobody/not-cached'" in proc.stderr
    assert asked and all(a.split()[1] == "/" or "/nobody/not-cached" in a for a in asked), asked
    assert sockets and all("127.0.0.1" in s for s in sockets if not s.startswith("socket.__new__")), sockets


@pytest.mark.skipif(os.environ.get("GLASSES_TEST_STRACE") != "1" or not shutil.which("strace"),
                    reason="native sockets are checked with strace on request: set GLASSES_TEST_STRACE=1")
def test_native_code_opens_no_network_socket_either(clip, tiny, tmp_path):
    """What the audit hook cannot see (CTranslate2, onnxruntime, livekit, espeak): the system calls."""
    trace = tmp_path / "trace"
    home = hub_home(tmp_path / "hf", tiny)
    proc = subprocess.run(["strace", "-f", "-qq", "-e", "trace=socket,connect,bind,sendto", "-o", str(trace),
                           sys.executable, str(ROOT / "demo.py"), "replay", clip, "--vlm", "org/tiny-vlm",
                           "--asr", "base", "--ask", "1:what is this?", "--out", tmp_path / "out"],
                          capture_output=True, text=True, cwd=tmp_path, env={**BASE_ENV, "HF_HOME": str(home)},
                          timeout=600)
    if "PTRACE" in proc.stderr or "Operation not permitted" in proc.stderr:
        pytest.skip(f"strace cannot trace here: {proc.stderr.strip().splitlines()[0]}")
    assert proc.returncode == 0, proc.stderr
    network = [line for line in trace.read_text().splitlines() if "AF_INET" in line]
    assert network == []

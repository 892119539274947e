"""Speaking: pyttsx3 renders each sentence to a WAV in one dedicated worker thread.

pyttsx3 hangs when its engine is created in one thread and run in another, or run from
several threads, and its `say()` cannot be stopped or routed to a chosen device. So one
thread creates and owns the engine and only ever renders to a file; playback (and
cutting it short on barge-in) belongs to the speaker port.

Each piece is a `concurrent.futures.Future`, and the worker follows its protocol: it
claims a piece with `set_running_or_notify_cancel()` before rendering it, so a piece
cancelled in the queue is dropped without a sound and a piece being rendered can no
longer be cancelled (the session's playback gate drops its audio instead). A piece that
fails (espeak writes nothing for it) gets the exception on its own future; the worker
lives on for the next one.

The WAVs go to a folder named after this process (`glasses-tts-PID-*`), removed on close.
A process that was killed cannot remove its folder, so each start removes the folders of
processes that no longer run.
"""
from __future__ import annotations

import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import Future
from pathlib import Path

from core.audio import read_wav
from core.messages import SpeechAudio

log = logging.getLogger("tts")

PREFIX = "glasses-tts-"
HUNG_S = 30.0  # a piece rendering this long means espeak hangs: later pieces fail at once


def _quiet_espeak_driver() -> None:
    """The espeak driver prints "Audio saved to ..." for every file, from espeak's thread.

    Shadowing `print` in that one module silences it without touching anyone else's output
    (redirecting sys.stdout would be process-wide and racy).
    """
    try:
        import pyttsx3.drivers.espeak as driver
    except ImportError:  # another platform's driver: nothing to silence
        return
    driver.print = lambda *args, **kwargs: None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_folders(root: str | Path | None = None) -> int:
    """Remove the WAV folders left by killed processes; returns how many went."""
    root = Path(root or tempfile.gettempdir())
    removed = 0
    try:
        entries = list(root.glob(PREFIX + "*"))
    except OSError:
        return 0
    for path in entries:
        pid = path.name[len(PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


class Pyttsx3TTS:
    def __init__(self, rate_wpm: int = 185, voice: str | None = None):
        self.rate_wpm = rate_wpm
        self.voice = voice
        self._requests: queue.Queue = queue.Queue(maxsize=64)
        self._thread: threading.Thread | None = None
        self._dir: tempfile.TemporaryDirectory | None = None
        self._ready: Future = Future()
        self.rendered: deque[str] = deque(maxlen=100)  # recent texts rendered (tests, the soak)
        self.skipped = 0  # pieces cancelled before they were rendered
        self.failed = 0  # pieces the engine could not render
        self._rendering_since: float | None = None  # perf_counter when the piece being rendered began

    def setup(self) -> None:
        remove_stale_folders()
        self._dir = tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-")
        self._thread = threading.Thread(target=self._run, name="tts-pyttsx3", daemon=True)
        self._thread.start()
        try:
            self._ready.result(timeout=30)
        except Exception as err:
            raise RuntimeError(
                f"text-to-speech engine failed to start ({err}); install espeak-ng (apt-get install espeak-ng)"
            ) from err

    def _run(self) -> None:
        try:
            import pyttsx3

            engine = pyttsx3.init()
            engine.setProperty("rate", self.rate_wpm)
            if self.voice:
                engine.setProperty("voice", self.voice)
            # The espeak driver synthesises in espeak's own thread: runAndWait() can return before
            # the WAV is written. "finished-utterance" fires after the write, so wait for that.
            finished = threading.Event()
            engine.connect("finished-utterance", lambda name, completed: finished.set())
            _quiet_espeak_driver()
        except BaseException as err:
            self._ready.set_exception(err)
            return
        self._ready.set_result(True)
        n = 0
        while True:
            item = self._requests.get()
            if item is None:
                break
            text, future = item
            if not future.set_running_or_notify_cancel():
                self.skipped += 1  # cancelled while queued: never rendered, never heard
                continue
            self._rendering_since = time.perf_counter()
            try:
                for _ in range(2):  # under load espeak now and then hands back an empty WAV: once more
                    path = Path(self._dir.name) / f"s{n}.wav"
                    n += 1
                    # One save_to_file per runAndWait: with two queued, only the last is written.
                    finished.clear()
                    engine.save_to_file(text, str(path))
                    engine.runAndWait()
                    finished.wait(timeout=10.0 + len(text) / 10)
                    if not path.exists():
                        raise RuntimeError("espeak-ng wrote no audio for this text")
                    samples, rate = read_wav(path)
                    path.unlink(missing_ok=True)
                    if len(samples) or not text.strip():
                        break
            except Exception as err:  # noqa: BLE001 - this piece failed; the next one may not
                self._rendering_since = None
                self.failed += 1
                log.warning("could not speak %r: %s", text[:60], err)
                future.set_exception(err)
                continue
            self._rendering_since = None
            self.rendered.append(text)
            future.set_result(SpeechAudio(text, samples, rate))

    def submit(self, text: str) -> Future:
        """Queue `text`; the future resolves to SpeechAudio (cancel it to skip the work). Never blocks:
        when the engine has stopped answering (a piece has rendered for HUNG_S) or the queue is full,
        the future fails at once, so an answer is shown as text rather than waiting for ever."""
        future: Future = Future()
        started = self._rendering_since
        if started is not None and time.perf_counter() - started > HUNG_S:
            future.set_exception(RuntimeError(f"the speech engine has not finished a piece in {HUNG_S:.0f} s"))
            return future
        try:
            self._requests.put_nowait((text, future))
        except queue.Full:
            future.set_exception(RuntimeError("the speech engine is behind by 64 pieces"))
        return future

    def close(self) -> None:
        if self._thread and self._thread.is_alive():
            while True:  # pieces still queued will never be rendered: cancel them, so no one waits
                try:
                    item = self._requests.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[1].cancel()
            self._requests.put(None)
            self._thread.join(timeout=5)
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

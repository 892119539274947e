"""Speaking: pyttsx3 renders each sentence to a WAV in one dedicated worker thread.

pyttsx3 hangs when its engine is created in one thread and run in another, or run from
several threads, and its `say()` cannot be stopped or routed to a chosen device. So one
thread creates and owns the engine and only ever renders to a file; playback (and
cutting it short on barge-in) belongs to the speaker port.
"""
from __future__ import annotations

import queue
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path

from pipelines.audio import read_wav
from pipelines.messages import SpeechAudio


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


class Pyttsx3TTS:
    def __init__(self, rate_wpm: int = 185, voice: str | None = None):
        self.rate_wpm = rate_wpm
        self.voice = voice
        self._requests: queue.Queue = queue.Queue(maxsize=64)
        self._thread: threading.Thread | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="glasses-tts-")
        self._ready: Future = Future()

    def setup(self) -> None:
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
            if future.cancelled():
                continue
            try:
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
                future.set_result(SpeechAudio(text, samples, rate))
            except BaseException as err:
                future.set_exception(err)

    def submit(self, text: str) -> Future:
        """Queue `text`; the future resolves to SpeechAudio (cancel it to skip the work)."""
        future: Future = Future()
        self._requests.put((text, future))
        return future

    def close(self) -> None:
        if self._thread and self._thread.is_alive():
            self._requests.put(None)
            self._thread.join(timeout=5)
        self._dir.cleanup()

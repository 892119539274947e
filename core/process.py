"""The process around a command: signals as exceptions, one-line crash reports, a clean exit.

Light imports only (the standard library): demo.py uses these before anything heavy loads.
"""
from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import traceback
from pathlib import Path


class Signals:
    """SIGINT and SIGTERM become exceptions in the main thread: KeyboardInterrupt and Terminated.

    Only the first one: a second, while the first is being handled, is ignored (the runtime
    bounds shutdown to about 2 s), so it cannot interrupt the shutdown with a traceback. A
    third one leaves at once, in case the shutdown hangs after all."""

    def __init__(self):
        self.first: int | None = None
        self.count = 0
        self.terminated: type[KeyboardInterrupt] = KeyboardInterrupt  # Terminated, once imported
        self._previous: dict[int, object] = {}
        self._deferred = False  # the first signal landed in a finalizer and is being delivered again

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers; an embedding caller keeps its own
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def code(self, code: int) -> int:
        """The exit code: 143 after SIGTERM, 130 after Ctrl+C, else `code`."""
        if self.first is None:
            return code
        return 143 if self.first == signal.SIGTERM else 130

    def _handle(self, signum, frame) -> None:
        if self._deferred:  # the first one again, out of the finalizer it landed in
            self._deferred = False
        else:
            self.count += 1
        if self.count == 1:
            self.first = signum  # no import here: the main thread may be inside one
            if in_finalizer(frame):
                # Raised inside a __del__, the exception would be printed and ignored, and the
                # process would go on as if nothing had come (seen under load): deliver it again
                # in a moment, when the finalizer has returned.
                self._deferred = True
                threading.Timer(0.05, _thread.interrupt_main, (signum,)).start()
                return
            raise self.terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        if self.count >= 3:
            flush_and_exit(self.code(130))


def in_finalizer(frame) -> bool:
    """Whether the main thread is inside a finalizer (`__del__`), where an exception is swallowed."""
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


ERROR_LOG = "glasses-error.log"


def crash_folders(environ, home: Path | None, cwd: Path | None) -> list[Path]:
    """Where the details of an internal error may go, in order (pure; deduplicated)."""
    folders = [environ.get("TMPDIR"), "/tmp", "/var/tmp", home and home / ".cache" / "glasses-assistant", cwd]
    seen: list[Path] = []
    for folder in folders:
        if folder and Path(folder) not in seen:
            seen.append(Path(folder))
    return seen


def report_crash(err: BaseException, prog: str) -> int:
    """One line and exit 1, the traceback in the first folder that takes it; this cannot fail."""
    try:
        details = traceback.format_exc()
        try:
            home, cwd = Path.home(), Path.cwd()
        except Exception:  # noqa: BLE001 - no home or a deleted working folder: fewer places to try
            home = cwd = None
        where = None
        for folder in crash_folders(os.environ, home, cwd):
            try:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / ERROR_LOG).write_text(details, encoding="utf-8")
                where = f"details in {folder / ERROR_LOG}"
                break
            except Exception:  # noqa: BLE001 - not writable: try the next
                continue
        text = (str(err).strip().splitlines() or [""])[0][:200]
        say(f"{prog}: internal error: {type(err).__name__}: {text} "
            f"({where or 'no details written: no writable folder for ' + ERROR_LOG})")
    except BaseException:  # noqa: BLE001 - even the report failed: the bare minimum
        say(f"{prog}: internal error")
    return 1


def say(line: str) -> None:
    """One line on stderr; a closed stderr cannot turn it into a traceback."""
    try:
        print(line, file=sys.stderr, flush=True)
    except Exception:  # noqa: BLE001
        pass


def leave(code: int) -> None:
    """Return normally, or when other threads are still alive, flush and os._exit(code).

    A thread still running at interpreter exit (say torch's generation thread) can make it
    abort ("terminate called without an active exception", exit 134): the code would lie."""
    if any(t is not threading.main_thread() and t.is_alive() for t in threading.enumerate()):
        flush_and_exit(code)


def flush_and_exit(code: int) -> None:
    import logging

    for flush in (sys.stdout.flush, sys.stderr.flush, logging.shutdown):
        try:
            flush()
        except Exception:  # noqa: BLE001 - leaving anyway
            pass
    os._exit(code)

"""session.jsonl: one JSON object per line, flushed as it happens so a crash loses nothing.

The file holds every record. In memory a replay keeps them all (the summary and the tests
read them); a live session runs for hours, so it keeps the last `keep` of them.
"""
from __future__ import annotations

import json
import logging
import threading
from collections import deque
from pathlib import Path

import numpy as np


def _plain(value):
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, (np.floating, np.integer)):
        return _plain(value.item())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class SessionLog:
    def __init__(self, path: str | Path | None, keep: int | None = None):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8") if self.path else None
        self.records: deque[dict] = deque(maxlen=keep)
        self.write_error: OSError | None = None  # the first failed write (a full disk): later ones are skipped

    def write(self, type_: str, **fields) -> dict:
        record = {"type": type_, **_plain(fields)}
        with self._lock:
            self.records.append(record)
            if self._file and self.write_error is None:
                try:
                    self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
                    self._file.flush()
                except OSError as err:  # never let a full disk take a session thread down
                    self.write_error = err
                    logging.getLogger("log").warning("session log no longer written (%s): %s", self.path,
                                                     err.strerror or err)
        return record

    def turns(self) -> list[dict]:
        return [r for r in self.records if r["type"] == "turn"]

    def close(self) -> None:
        with self._lock:
            if self._file:
                try:
                    self._file.close()
                except OSError:  # the last flush hit a full disk: already reported
                    pass
                self._file = None


def summary_table(turns: list[dict]) -> str:
    """One row per turn, plain text, for the end of a run."""
    if not turns:
        return "no turns: nothing was asked (say the wake phrase, press push-to-talk, or use --ask SECONDS:QUESTION)"
    head = (f"{'#':>2}  {'heard':>6}  {'mode':<13}  {'frame':>6}  {'v2v s':>6}  {'asr':>5}  {'vlm 1st':>7}  {'tts':>5}  "
            "question -> answer")
    rows = [head, "-" * len(head)]
    for i, t in enumerate(turns, 1):
        lat = {k: (v if v is not None else float("nan")) for k, v in t.get("latency", {}).items()}
        frame = f"{t['frame_time']:6.2f}" if t.get("frame_time") is not None else "     -"
        qa = f"{t['question'][:40]} -> {t['answer'][:60]}".replace("\n", " ")
        rows.append(
            f"{i:>2}  {t['heard_at']:6.2f}  {t.get('mode', ''):<13}  {frame}  {lat.get('voice_to_voice', 0):6.2f}  {lat.get('asr', 0):5.2f}  "
            f"{lat.get('vlm_first_token', 0):7.2f}  {lat.get('tts_first_audio', 0):5.2f}  {qa}"
        )
    return "\n".join(rows)

"""The display's changes on the session clock.

Every part that changes what the glasses' display shows calls `show(t, **fields)`: the
change is recorded at session time `t` and the display port (live) gets the new state at
once. A replay renders the whole timeline into the annotated video, so it keeps every
change; a live session runs for hours and renders nothing afterwards, so it keeps only the
last `keep` changes (folding older ones into the state they start from).
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import replace

from core.messages import DisplayState


class Timeline:
    def __init__(self, initial: DisplayState, display=None, keep: int | None = None):
        self._initial = initial  # the state before every change still kept
        self._changes: deque[tuple[float, int, dict]] = deque(maxlen=keep)
        self._seq = 0
        self._lock = threading.Lock()  # several session threads show
        self.display = display
        self.state = initial

    def show(self, t: float, **fields) -> None:
        with self._lock:
            self._seq += 1
            if self._changes.maxlen is not None and len(self._changes) == self._changes.maxlen:
                self._initial = replace(self._initial, **self._changes[0][2])
            self._changes.append((t, self._seq, fields))
            self.state = replace(self.state, **fields)
            if self.display is not None:
                self.display.show(self.state)

    def states(self) -> list[tuple[float, DisplayState]]:
        """The display's states in session-time order (a pure fold of the recorded changes)."""
        with self._lock:
            changes, state = sorted(self._changes), self._initial
        out = []
        for t, _, fields in changes:
            state = replace(state, **fields)
            out.append((t, state))
        return out

    def __len__(self) -> int:
        return len(self._changes)

"""Memory for one session (`--memory DIR`): the store, the describer, the skill and the facts
note, built once by either command and handed to the Session.

`open_memory` is called before the models load (a refused folder costs a line, not a model
load, and leaves nothing behind); `prepare` builds the describer on the loaded VLM; its skill,
describer and notes go to the Session; `attach` then ties it to the session's clock, log and
display; `close` ends it. A folder or file that cannot be used (someone else's SQLite file, a
corrupt one, no permission) is the user's to fix: one line, exit 2 (UsageError).
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from pipelines.app.common import UsageError
from pipelines.private_video import BADGE  # the same badge as the saved video's: faces are blurred in what is kept

log = logging.getLogger("memory")


@dataclass
class SessionMemory:
    store: object  # pipelines.memory.store.MemoryStore
    skill: object  # pipelines.memory.skill.MemorySkill
    folder: Path
    days: float
    describer: object = None  # pipelines.memory.describe.Describer, once prepared
    clock: object = None  # the session's, once attached

    def prepare(self, vlm, *, replay: bool) -> None:
        """The describer, on the session's VLM; the OCR engine where it is installed."""
        from pipelines.memory.describe import DescribeConfig, Describer, load_ocr
        from pipelines.memory.keyframes import KeyframePicker

        self.describer = Describer(self.store, vlm, KeyframePicker(), config=DescribeConfig(days=self.days),
                                   wall_origin=time.time(), replay=replay, ocr=load_ocr())

    def now(self) -> float:
        """Wall seconds on the session's timeline (see pipelines/memory/describe.py: Time)."""
        return self.describer.wall(self.clock.now()) if self.clock is not None else time.time()

    def notes(self, question: str) -> str:
        """The facts that bear on `question`, for the system prompt of an ordinary answer ("" mostly)."""
        from pipelines.memory.recall import facts_note

        try:
            note = facts_note(self.store.facts(), question)
        except Exception as err:  # noqa: BLE001 - a store that broke must not cost the answer
            log.warning("memory: facts not read: %s", err)
            return ""
        return f" {note}" if note else ""

    def describe(self) -> dict:
        """For the `session` record: where memory lives and what it holds at the start (the `end`
        record counts what this session kept, and which thumbnails were blurred whole)."""
        counts = self.store.counts()
        return {"folder": str(self.folder), "days": self.days, "entries": counts.get("entries"),
                "facts": counts.get("facts"), "ocr": self.describer.ocr is not None}

    def session_kwargs(self) -> dict:
        """What the Session takes from memory: the skill, the describer and the facts note."""
        return {"skills": (self.skill,), "memory": self.describer, "notes": self.notes}

    def attach(self, session, log_) -> None:
        """Session time 0 is now: entries and "how long ago" share this origin, so a replay's
        entries lie on the clip's own timeline. The light and the badge say frames are stored."""
        self.clock = session.clock
        self.describer.wall_origin = time.time() - session.clock.now()
        self.describer.log, self.describer.show = log_, session.show
        session.show(0.0, storing=True, badge=BADGE)

    def close(self) -> None:
        try:
            self.store.close()
        except Exception as err:  # noqa: BLE001 - closing after a full disk: what was committed is kept
            log.warning("memory: closing the store: %s", err)


def open_memory(folder: Path, days: float, warnings: list[str]) -> SessionMemory | None:
    """Open (or create) the memory in `folder`; retention runs at open and then hourly. A full disk
    at the start is a warning (in `warnings`) and a session without memory (None)."""
    from pipelines.memory.skill import MemorySkill
    from pipelines.memory.store import MemoryFull, MemoryRefused, MemoryStore

    session_id = uuid.uuid4().hex[:12]
    try:
        store = MemoryStore(Path(folder), session=session_id, days=days)
    except MemoryRefused as err:
        raise UsageError(f"--memory {folder}: {err}") from err
    except MemoryFull as err:
        warnings.append(f"--memory {folder}: the disk is full, so this session runs without memory ({err})")
        return None
    memory = SessionMemory(store, None, Path(folder), days)
    memory.skill = MemorySkill(store, now=memory.now, session=session_id)
    return memory


def summary_line(records: list[dict]) -> str | None:
    """One line for the end of a run: what memory kept this session (None without memory)."""
    end = next((r for r in reversed(records) if r["type"] == "end"), None)
    m = (end or {}).get("memory")
    if not m:
        return None
    line = (f"memory: {m['keyframes']} keyframes, {m['described']} described, {m['stored']} stored, "
            f"{m['skipped']} skipped; {m['entries'] if m['entries'] is not None else '?'} entries kept")
    return line + (f" ({m['off']})" if m.get("off") else "")

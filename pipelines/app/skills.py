"""The everyday skills for one session, built alike by either command.

`open_catalog` runs before the models load: a missing or malformed `--catalog` costs one line
(with the line number) and exit 2, not a model load. `build_skills` runs once the output
folder exists (its `log` is set once the session log is open), and gives the Session its skills in the router's order:
the first whose `wants` gives a reason takes a question (pipelines/router.py).

Where things are kept:
- photos and videos: OUT/photos, OUT/videos (faces blurred unless --no-blur-faces);
- the shopping list: the memory database with `--memory DIR`, else OUT/shopping-list.json;
- timers and reminders: DIR/timers.json with `--memory DIR`, else OUT/timers.json.
So with `--memory` the list and the timers outlive the session; without it each session has its own.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.app.common import UsageError

log = logging.getLogger("skills")

STANDING = ("shopping", "translate")  # what --skill accepts


def open_catalog(path: Path | None):
    """The shop's catalog (--catalog FILE, else the sample that ships); UsageError when it is bad."""
    from pipelines.skills.catalog import SAMPLE, CatalogError, load_catalog

    try:
        return load_catalog(path if path is not None else SAMPLE)
    except CatalogError as err:
        raise UsageError(str(err)) from err


@dataclass
class SessionSkills:
    skills: tuple
    catalog_path: str
    catalog_size: int
    engines: dict = field(default_factory=dict)
    closers: list = field(default_factory=list)
    log: object = None  # the session log, once open (photos and videos write `capture` records to it)

    def write(self, type_: str, **fields) -> None:  # not `kind`: capture records carry a `kind` field
        if self.log is not None:
            self.log.write(type_, **fields)

    def describe(self) -> dict:
        """For the `session` record: which skills, which catalog, which engines are there."""
        return {"skills": [s.name for s in self.skills], "catalog": self.catalog_path,
                "catalog_products": self.catalog_size, **self.engines}

    def close(self) -> None:
        """A video being recorded is finished, so its file is whole."""
        for close in self.closers:
            try:
                close()
            except Exception as err:  # noqa: BLE001 - closing: what was written stays
                log.warning("skills: closing: %s", err)


def build_skills(opts, out: Path, catalog, memory, *, blur: bool, realtime: bool) -> SessionSkills:
    """The skills for a session writing to `out`; `memory`: pipelines.app.memory.SessionMemory or None."""
    from pipelines.skills import barcodes
    from pipelines.skills.capture import CaptureSkill
    from pipelines.skills.reading import ReadingSkill
    from pipelines.skills.shopping import ShoppingSkill
    from pipelines.skills.shopping_list import FileList, MemoryList
    from pipelines.skills.timer_skill import JsonTimerStore, TimerSkill, TimerStoreError
    from pipelines.skills.translate import TranslateSkill

    kept = memory.folder if memory is not None else out
    shopping_list = MemoryList(memory.store) if memory is not None else FileList(out / "shopping-list.json")
    try:
        timers = TimerSkill(JsonTimerStore(kept / "timers.json"), session_wall())
    except TimerStoreError as err:
        raise UsageError(str(err)) from err
    # A fast replay's video waits for the encoder rather than drop frames: the same clip, the same video
    capture = CaptureSkill(out, blur=blur, log=lambda type_, **fields: built.write(type_, **fields), realtime=realtime)
    reading = ReadingSkill()
    shopping = ShoppingSkill(catalog, shopping_list)
    # Order: the specific jobs first; memory's recall questions after them ("what did the sign say
    # earlier?" names the past; "what does this sign say?" is reading's).
    skills = (shopping, timers, capture, reading, *((memory.skill,) if memory is not None else ()), TranslateSkill())
    engines = {"barcode_engines": list(barcodes.engines_available()), "ocr": reading.available}
    built = SessionSkills(skills, catalog.source, len(catalog), engines, [capture.close])
    return built


def session_wall():
    """Session seconds to wall time, session time 0 being now: a replay's timers run on its media
    clock ("in 5 minutes" is due 5 minutes of clip later), a live session's on the wall clock."""
    origin = dt.datetime.now().astimezone()
    return lambda t: origin + dt.timedelta(seconds=t)

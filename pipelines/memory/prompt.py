"""How recall tells what it found: times in words, the VLM's prompt, and its one image.

Pure functions of their arguments (seconds, local times, store rows, images), used by
pipelines/memory/skill.py; the decisions (what kind of question, what fits) are in recall.py.

Times are said as a person would ("about four minutes ago", "yesterday at 5 pm"), and shown
shorter on the display ("seen 4 min ago"). The VLM gets one collage (`collage` says why).
"""
from __future__ import annotations

from datetime import datetime
from typing import Sequence

import cv2
import numpy as np

# --- time in words ----------------------------------------------------------------------
_SMALL = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
          "sixteen seventeen eighteen nineteen").split()
_TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty"}
_WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
OLD = 6 * 3600  # seconds: older than this, say the day and the hour instead of "hours ago"


def number_words(n: int) -> str:
    if 0 <= n < 20:
        return _SMALL[n]
    if 20 <= n < 60:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else "-" + _SMALL[ones])
    return str(n)


def clock_words(when: datetime) -> str:
    """"5 pm", "9:30 am", "noon", "midnight"."""
    if when.minute == 0 and when.hour in (0, 12):
        return "midnight" if when.hour == 0 else "noon"
    hour = when.hour % 12 or 12
    return f"{hour}{'' if when.minute == 0 else f':{when.minute:02d}'} {'am' if when.hour < 12 else 'pm'}"


def day_words(seen: datetime, now: datetime) -> str:
    """"today at 9 am", "yesterday at 5 pm", "on Monday at 8:15 am", "on 3 March at noon"."""
    days = (now.date() - seen.date()).days
    if days <= 0:
        day = "today"
    elif days == 1:
        day = "yesterday"
    elif days < 7:
        day = f"on {_WEEKDAYS[seen.weekday()]}"
    else:
        day = f"on {seen.day} {seen.strftime('%B')}"
    return f"{day} at {clock_words(seen)}"


def ago_in_words(seconds: float, seen: datetime | None = None, now: datetime | None = None) -> str:
    """How long ago, as said aloud: "just now", "about a minute ago", "about four minutes ago",
    "about two hours ago"; beyond OLD, "yesterday at 5 pm" when the local times are given
    (else "about N days ago")."""
    s = max(0.0, float(seconds))
    if s < 45:
        return "just now"
    if s < 90:
        return "about a minute ago"
    if s < 45 * 60:
        return f"about {number_words(round(s / 60))} minutes ago"
    if s < 90 * 60:
        return "about an hour ago"
    if s < OLD or seen is None or now is None:
        if s < 36 * 3600:
            return f"about {number_words(round(s / 3600))} hours ago"
        return f"about {number_words(round(s / 86400))} days ago"
    return day_words(seen, now)


def ago_short(seconds: float, seen: datetime | None = None, now: datetime | None = None) -> str:
    """The same, short enough for a small display: "seen just now", "seen 4 min ago"."""
    s = max(0.0, float(seconds))
    if s < 45:
        return "seen just now"
    if s < 45 * 60:
        return f"seen {max(1, round(s / 60))} min ago"
    if s < OLD or seen is None or now is None:
        return f"seen {max(1, round(s / 3600))} h ago" if s < 36 * 3600 else f"seen {round(s / 86400)} days ago"
    return "seen " + day_words(seen, now).replace(" at ", " ")


def age_of(entry, *, now_wall: float, now_media: float | None, session: str | None) -> float:
    """Seconds since `entry` was seen. An entry of this replay is timed by media seconds (a replay
    runs faster than the wall clock); any other by wall seconds."""
    if entry.media is not None and now_media is not None and session is not None and entry.session == session:
        return now_media - entry.media
    return now_wall - entry.wall


# --- what the VLM is asked ----------------------------------------------------------------
RECALL_PROMPT = (
    "The wearer asks about something seen earlier: {question}\n"
    "The picture shows the view now (marked 'now') and what the camera kept, numbered as in these notes:\n"
    "{notes}\n"
    "{facts}"
    "Answer from these notes and pictures only, in one or two short spoken sentences: say when, in words "
    "(for example \"{example}\"), and where it was. If they do not answer the question, say \"{not_seen}\" "
    "and nothing else."
)


def entry_note(i: int, entry, ago: str) -> str:
    """One kept entry for the prompt: "1. about four minutes ago: <caption>. Objects: ... Text read: ..."."""
    line = f"{i}. {ago}: {entry.caption.strip().rstrip('.')}."
    if entry.objects:
        line += " Objects: " + ", ".join(entry.objects) + "."
    if entry.text.strip():
        line += f' Text read: "{entry.text.strip()[:200]}".'
    return line


def recall_prompt(question: str, notes: Sequence[str], not_seen: str, facts: Sequence[str] = (),
                  when: str = "about four minutes ago") -> str:
    """The VLM's question: the wearer's, the numbered notes, facts that bear on it, and how to answer
    (`when`: the best entry's time in words, as the example of saying when)."""
    return RECALL_PROMPT.format(question=question.strip(), notes="\n".join(notes), not_seen=not_seen,
                                facts=f"The wearer told you: {'; '.join(facts)}.\n" if facts else "", example=when)


def decode_thumbnail(jpeg: bytes | None) -> np.ndarray | None:
    """BGR image from the store's JPEG bytes, or None (none kept, or unreadable)."""
    if not jpeg:
        return None
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return image if image is not None and image.size else None


def _label(cell: np.ndarray, text: str) -> None:
    """A dark strip with white text across the top of `cell`, in place (the VLM reads the numbers)."""
    side = cell.shape[0]
    scale = max(0.4, side / 320)
    thick = max(1, round(scale * 1.6))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    cell[:th + base + 8, :tw + 12] = (0, 0, 0)
    cv2.putText(cell, text, (6, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)


def _into(cell: np.ndarray, image: np.ndarray) -> None:
    """`image`, scaled to fit `cell` (aspect kept) and centred on it, in place."""
    ch, cw = cell.shape[:2]
    h, w = image.shape[:2]
    scale = min(cw / w, ch / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    y, x = (ch - nh) // 2, (cw - nw) // 2
    cell[y:y + nh, x:x + nw] = small


def collage(now_rgb: np.ndarray | None, thumbs_rgb: Sequence[np.ndarray | None], side: int = 512) -> np.ndarray:
    """One RGB image, a 2x2 grid of `side` px: the view now (top-left, "now") and up to three kept
    thumbnails ("1", "2", "3" as numbered in the prompt's notes); a missing picture is a grey cell.

    Why one image and not several: every VLM, mode, prepared prefix and fake here takes the one
    `VLMRequest.image`, so a collage leaves them all unchanged. It also keeps the cost of one image:
    each image is a full vision-tower pass and prefill (~1.3 s + ~1.5 s for SmolVLM-256M on 2
    cores, ../shared/FACTS.md), so four images would take four times as long before the first word.
    Nothing is lost by it: kept thumbnails are ~192 px and each cell is side/2 (256 px at 512).
    """
    cell_side = side // 2
    out = np.full((side, side, 3), 60, np.uint8)
    images = [now_rgb, *list(thumbs_rgb)[:3]]
    for i, (image, label) in enumerate(zip(images, ("now", "1", "2", "3"))):
        y, x = divmod(i, 2)
        cell = out[y * cell_side:(y + 1) * cell_side, x * cell_side:(x + 1) * cell_side]
        if image is not None and image.size:
            _into(cell, np.ascontiguousarray(image[..., :3], dtype=np.uint8))
        _label(cell, label if image is not None else f"{label}: no picture")
    return out


def spoken_list(items: Sequence[str], limit: int = 5) -> str:
    """"a, b and c" (at most `limit`, then "and N more")."""
    items = list(items)
    shown, rest = items[:limit], len(items) - limit
    if rest > 0:
        return ", ".join(shown) + f", and {number_words(rest)} more"
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def local(ts: float) -> datetime:
    """Unix seconds as local time (the wearer's clock), for day_words."""
    return datetime.fromtimestamp(ts)

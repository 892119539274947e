"""The reading skill: "read this", "what does this sign say?", "translate this menu".

- read ("read this", "what does this say?", "what's written here?"): OCR (pipelines/skills/ocr.py)
  on the sharpest full-resolution frame near the end of the question, read aloud in reading order,
  a sentence or a few lines per `ctx.speak`, so the first is spoken while the rest is prepared.
  `ctx.cancel` ("stop") is checked between pieces. At most `max_words` words, then "And more."
- explain ("what does this sign say?", "what does this label mean?"): the OCR text and the picture
  go to the VLM (`explain_prompt`); its answer streams like Instant's. No text found: the VLM
  answers the question as asked (a symbol, a pictogram).
- translate ("translate this menu", "what does this say in English?"): the OCR text and the
  picture go to the VLM with `translate_prompt`.
- A dark frame: "I can't read it in this light." Text there but unreadable (blurred, too far):
  "Hold it closer, I can't make out the text." Nothing: "I don't see any text." (`verdict`).
- No OCR engine: it says so once and the VLM answers the question as asked.

The decisions (`reading_kind`, `verdict`, `spoken_chunks`, the prompts, `pick_sharpest`) are
pure functions; `ReadingSkill.answer` runs them.
"""
from __future__ import annotations

import importlib.util
import re
import time
from dataclasses import replace
from typing import Callable, Sequence

import cv2
import numpy as np

from core.messages import FrameSnapshot
from pipelines import modes
from pipelines.memory.recall import kind_of
from pipelines.modes import ModeContext, ModeResult
from pipelines.skills.base import matches, say
from pipelines.skills.ocr import MIN_SCORE, WEAK_SCORE, Line, load_reader, readable, text_of, trusted

HOLD_CLOSER = "Hold it closer, I can't make out the text."
TOO_DARK = "I can't read it in this light."
NO_TEXT = "I don't see any text."
NO_IMAGE = "I can't see anything right now."
NO_OCR = "Reading needs rapidocr-onnxruntime; I'll ask the model instead."
MORE = "And more."
MAX_WORDS = 80  # read aloud at most this many words, then MORE
CHUNK_WORDS = 14  # a spoken piece ends at a sentence's end or after about this many words
PROMPT_CHARS = 600  # of OCR text given to the VLM
TRANSLATE_TOKENS = 120  # a translation runs longer than an Instant answer

EXPLAIN_PROMPT = (
    "The wearer asked: {question}\n"
    "OCR read this text in the picture, in reading order (letters may be misread):\n\"{text}\"\n"
    "Answer in one or two short spoken sentences: what the text says and what it means for the wearer. "
    "Use the picture to make sense of misread words."
)
TRANSLATE_PROMPT = (
    "The wearer asked: {question}\n"
    "OCR read this text in the picture, in reading order (letters may be misread):\n\"{text}\"\n"
    "Translate it into {language} for the wearer. Say only the translation, in short spoken sentences. "
    "If it is already in {language}, say so and read it."
)

# --- what is asked: pure -------------------------------------------------------------------------
# A translation of text in view names it ("translate this", "translate the menu"); "translate for me",
# "translation mode" and "translate what they say" switch the translation skill's live mode.
_TRANSLATE = re.compile(r"\btranslat\w* (?:this|that|it|these|those|the \w+|what (?:this|that|it) says)\b")
_IN_LANGUAGE = re.compile(r"\b(?:in|into|to) (?P<language>english|french|spanish|german|italian|portuguese|dutch|"
                          r"polish|swedish|danish|norwegian|finnish|greek|turkish|russian|ukrainian|arabic|hebrew|"
                          r"hindi|chinese|mandarin|japanese|korean|thai|vietnamese|indonesian)\b")
_TEXT_WORDS = re.compile(r"\b(?:say|says|said|mean|means|read|reads|written|printed|text|sign|signs|menu|label|"
                         r"labels|word|words|writing|note|notice|poster|letter|page)\b")
_SPEECH = re.compile(r"\b(?:he|she|they|him|her|them|someone|somebody|people|person|man|woman|conversation|"
                     r"speaking|saying|talking|tell|telling|hear|heard|listen|voice|live|mode)\b")
_EXPLAIN = re.compile(
    r"\bwhat (?:does|do) (?:the|this|these|that|those) (?:\w+ ){1,2}(?:say|says|mean|means)\b"
    r"|\bwhat (?:does|do) (?:this|these) mean\b"
    r"|\b(?:explain|what is the meaning of) (?:this|the) (?:sign|label|text|note|notice|writing|symbol|menu)\b")
_READ = re.compile(
    r"\bread (?:this|that|it|these|those|me|out|aloud|what|the|for me|to me|here)\b"
    r"|\bread$"
    r"|\bwhat (?:does|do) (?:this|that|it|these|those) (?:say|says|read|reads)\b"
    r"|\bwhat(?:s| is| does it say) (?:written|printed)\b"
    r"|\bwhat(?:s| is) (?:it|this|that) (?:say|says)\b"
    r"|\bwhat (?:is|does) the (?:text|writing) say\b|\bwhat(?:s| is) the (?:text|writing)\b")


def reading_kind(question: str) -> str:
    """"translate" | "explain" | "read" | "" (not reading), from the words alone. Questions about
    the past belong to memory (its `kind_of` decides); speech to translate is not text in view."""
    if kind_of(question):
        return ""
    if matches(_TRANSLATE, question) and not matches(_SPEECH, question):
        return "translate"
    if matches(_IN_LANGUAGE, question) and matches(_TEXT_WORDS, question) and not matches(_SPEECH, question):
        return "translate"
    if matches(_EXPLAIN, question) and not matches(_SPEECH, question):
        return "explain"
    if matches(_READ, question):
        return "read"
    return ""


def target_language(question: str) -> str:
    """"into Spanish" -> "Spanish"; English when none is named."""
    m = matches(_IN_LANGUAGE, question)
    return m.group("language").capitalize() if m else "English"


def explain_prompt(question: str, text: str) -> str:
    return EXPLAIN_PROMPT.format(question=question.strip(), text=_clip(text))


def translate_prompt(question: str, text: str, language: str = "English") -> str:
    return TRANSLATE_PROMPT.format(question=question.strip(), text=_clip(text), language=language)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PROMPT_CHARS else text[:PROMPT_CHARS].rsplit(" ", 1)[0] + " ..."


# --- what was seen: pure -------------------------------------------------------------------------
def verdict(problem: str, lines: Sequence[Line], min_score: float = MIN_SCORE) -> str:
    """"read" when some line is worth reading out (ocr.trusted); else "dark" / "blurred" (readable()
    said so, or OCR found text it could not make out) / "none" (no text at all)."""
    if problem == "dark":
        return "dark"
    if trusted(lines, problem, min_score):
        return "read"
    if problem == "blurred" or any(line.score >= WEAK_SCORE and sum(ch.isalnum() for ch in line.text) >= 2
                                   for line in lines):
        return "blurred"  # a lone weak character is not evidence of text (a ring, a mark)
    return "none"


def pick_sharpest(frames: Sequence[FrameSnapshot], end: float, *, before: float = 1.5,
                  after: float = 0.3) -> FrameSnapshot | None:
    """The sharpest frame (sharpness, a little less for poor exposure) from `before` seconds
    before the question's end to `after` after it: the wearer holds the thing up as they ask."""
    window = [f for f in frames if end - before <= f.t <= end + after]
    return max(window, key=lambda f: f.sharpness * (0.5 + 0.5 * f.exposure), default=None)


_JOINED_CAPS = re.compile(r"(?<=[a-z]{3})(?=[A-Z][a-z]{2})|(?<=[A-Z]{2})(?=[A-Z][a-z]{2})")


_ZERO_IN_WORD = re.compile(r"(?<=[A-Za-z])0(?=[A-Za-z])|(?<=[A-Za-z]{2})0\b|\b0(?=[A-Za-z]{2})")


def speakable(text: str) -> str:
    """PP-OCR drops spaces between capitalised words ("OctaviaHill", "OCBCBank"): put them back
    for the voice. Short prefixes stay joined ("McDonald", "iPhone"). A zero inside a word is a
    misread O ("FR0M"): the voice would say "F R zero M"."""
    return _JOINED_CAPS.sub(" ", _ZERO_IN_WORD.sub("O", text))


def spoken_chunks(lines: Sequence[Line], max_words: int = MAX_WORDS,
                  chunk_words: int = CHUNK_WORDS) -> tuple[list[str], bool]:
    """(pieces to speak, whether the text was cut). A piece ends where a sentence does: at . ! ?
    or where the next line starts with a capital or a digit (a sign's lines, a list's items);
    a long sentence is cut after about `chunk_words` words. The first piece is the first line
    alone, so the voice starts at once. Lines that run on (a hyphen, a lower-case start) join."""
    texts = [speakable(line.text) for line in lines if line.text.strip()]
    pieces: list[str] = []
    current: list[str] = []
    words = 0
    cut = False
    for i, text in enumerate(texts):
        room = max_words - words
        if room <= 0:
            cut = True
            break
        tokens = text.split()
        if len(tokens) > room:
            tokens, cut = tokens[:room], True
        text = " ".join(tokens)
        words += len(tokens)
        nxt = texts[i + 1] if i + 1 < len(texts) else ""
        if current and current[-1].endswith("-") and text[:1].islower():
            current[-1] = current[-1][:-1] + text  # "infor-" + "mation"
        else:
            current.append(text)
        ends = bool(re.search(r"[.!?:;]$", text)) or not nxt or nxt[:1].isupper() or nxt[:1].isdigit()
        first = not pieces and not text.endswith("-")
        if cut or ends or first or sum(len(c.split()) for c in current) >= chunk_words:
            piece = " ".join(current)
            if ends or cut:
                piece = piece if re.search(r"[.!?]$", piece) else piece.rstrip(",;:-") + "."
            pieces.append(piece)
            current = []
        if cut:
            break
    if current:
        pieces.append(" ".join(current).rstrip(",;:-") + ".")
    return pieces, cut


# --- the skill -----------------------------------------------------------------------------------
_LOAD = object()  # ReadingSkill's default reader: ocr.load_reader(), on the first question that needs it


class ReadingSkill:
    name = "reading"

    def __init__(self, reader=_LOAD, vlm_answer: Callable[[ModeContext], ModeResult] = modes.instant, *,
                 max_words: int = MAX_WORDS):
        """`reader`: a pipelines.skills.ocr.Reader; None: no OCR (the model answers); by default the
        app's reader, loaded on first use (0.6 s: a session that never reads never pays it).
        `vlm_answer`: how the VLM answers (Instant's streaming path)."""
        self.reader, self.vlm_answer, self.max_words = reader, vlm_answer, max_words
        self._told_missing = False

    @property
    def available(self) -> bool:
        """Whether text can be read here (rapidocr-onnxruntime is installed), without loading it."""
        if self.reader is _LOAD:
            return importlib.util.find_spec("rapidocr_onnxruntime") is not None
        return self.reader is not None

    def _loaded_reader(self):
        if self.reader is _LOAD:
            self.reader = load_reader()
        return self.reader

    def wants(self, question: str, active: str = "") -> str:
        kind = reading_kind(question)
        return f"reading: {kind}" if kind else ""

    def answer(self, ctx: ModeContext) -> ModeResult:
        t0 = time.perf_counter()
        question = ctx.request.question
        kind = reading_kind(question) or "read"  # the router asked, so the words said reading
        record: dict = {"kind": kind}
        reader = self._loaded_reader()
        if reader is None:
            return self._without_ocr(ctx, t0, record)
        frame, record["frame_t"] = frame_for(ctx)
        if frame is None:
            return say(ctx, t0, NO_IMAGE, record, "reading")
        record["frame_size"] = [int(frame.shape[1]), int(frame.shape[0])]
        problem = readable(frame)
        record["readable"] = problem or "yes"
        lines: list[Line] = []
        if problem != "dark":
            t_ocr = time.perf_counter()
            lines = getattr(reader, "read_all", reader.read)(frame)
            record["ocr_s"] = round(time.perf_counter() - t_ocr, 3)
        min_score = getattr(reader, "min_score", MIN_SCORE)
        seen = verdict(problem, lines, min_score)
        confident = trusted(lines, problem, min_score)
        text = text_of(confident)
        record.update(verdict=seen, lines=len(confident), text=text[:500])
        if seen == "dark":
            return say(ctx, t0, TOO_DARK, record, "reading")
        if seen == "blurred":
            return say(ctx, t0, HOLD_CLOSER, record, "reading")
        if seen == "none":
            if kind == "explain":  # a symbol or a pictogram: the model may still know it
                return self._tagged(self.vlm_answer(ctx), record)
            return say(ctx, t0, NO_TEXT, record, "reading")
        if kind == "read":
            return self._read_aloud(ctx, t0, confident, record)
        if kind == "translate":
            language = target_language(question)
            prompt = translate_prompt(question, text, language)
            request = replace(ctx.request, question=prompt,
                              max_new_tokens=max(ctx.request.max_new_tokens, TRANSLATE_TOKENS))
        else:
            prompt = explain_prompt(question, text)
            request = replace(ctx.request, question=prompt)
        record["prompt"] = prompt
        # The request keeps its image (and a prepared prefix of it): the model sees what the wearer saw.
        return self._tagged(self.vlm_answer(replace(ctx, request=request)), record)

    def _read_aloud(self, ctx: ModeContext, t0: float, lines: list[Line], record: dict) -> ModeResult:
        pieces, cut = spoken_chunks(lines, self.max_words)
        if cut:
            pieces.append(MORE)
        spoken: list[str] = []
        first = None
        for piece in pieces:
            if ctx.cancel.is_set():  # "stop": nothing more is handed to the voice
                break
            first = time.perf_counter() - t0 if first is None else first
            ctx.speak(piece + " ")  # the space ends the sentence for the session's splitter
            spoken.append(piece)
        record.update(pieces=len(pieces), spoken_pieces=len(spoken), cut=cut)
        return ModeResult(" ".join(spoken), first, 0.0, {"reading": record})

    def _without_ocr(self, ctx: ModeContext, t0: float, record: dict) -> ModeResult:
        record["ocr"] = "not installed"
        notice = ""
        if not self._told_missing:  # said once a session; later questions just get the model's answer
            self._told_missing = True
            notice = NO_OCR
            if not ctx.cancel.is_set():
                ctx.speak(notice + " ")
        result = self.vlm_answer(ctx)
        answer = f"{notice} {result.answer}".strip()
        first = time.perf_counter() - t0 if notice else result.first_token
        return replace(result, answer=answer, first_token=first, extra={**result.extra, "reading": record})

    @staticmethod
    def _tagged(result: ModeResult, record: dict) -> ModeResult:
        return replace(result, extra={**result.extra, "reading": record})


def frame_for(ctx: ModeContext) -> tuple[np.ndarray | None, float | None]:
    """(the BGR image to read, its time): the sharpest full-resolution frame near the question's
    end, else the frame chosen for the question, else the model's image (RGB, small) as a last resort."""
    chosen = pick_sharpest(ctx.frames, ctx.end) or ctx.best
    if chosen is not None:
        return chosen.image, chosen.t
    if ctx.request.image is not None:
        return cv2.cvtColor(ctx.request.image, cv2.COLOR_RGB2BGR), None
    return None, None

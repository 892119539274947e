"""Answer modes (Muse Spark's Instant, Thinking, Contemplating) behind one function.

The session hands a mode a `ModeContext` and gets a `ModeResult`. A mode decides what is
generated and what is spoken: it calls `ctx.speak(text)` with text to say as it streams
(the session splits it into sentences for TTS), `ctx.show(text)` with text for the display
only (reasoning), and `ctx.cue(text)` for a short spoken cue. Everything stops when
`ctx.cancel` is set (barge-in, "stop", a newer question).

- Instant: the question as asked, greedy, capped (~60 tokens); every piece goes to speech.
- Thinking: a scratchpad prompt ("Reasoning: ... Answer: ...") with a token budget; the
  reasoning goes to the display and the log, only what follows "Answer:" is spoken. A model
  that never writes the marker gets a second, short generation for the answer.
- Contemplating: K drafts from K views (pipelines.views) in ONE batched generate call, then
  an aggregator pass that writes the spoken answer and says it is unsure where drafts disagree.
- Both slower modes play a short cue ("Let me think.") at once when the first spoken sound
  is predicted later than CUE_AFTER seconds after the question.

`choose_mode` is the pure rule for voice switching ("think harder", "quick answer") and
`--mode auto`. All prompts are the plain constants below, so a log reader can see exactly
what the model was asked.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from typing import Callable

from core.messages import FrameSnapshot, VLMRequest
from pipelines.views import View, build_views
from pipelines.wake import normalise

MODES = ("instant", "thinking", "contemplating")  # the modes `m` / "next" cycles through
MODE_CHOICES = (*MODES, "auto")  # what --mode accepts
MAX_AGENTS = 16

# --- prompts ---------------------------------------------------------------------------
THINK_PROMPT = (
    "{question}\n\n"
    "Think before you answer. Write 'Reasoning:' and, in a few short lines, what you see that matters "
    "and how it leads to the answer. Then write 'Answer:' and the answer for the wearer in one or two "
    "short spoken sentences."
)
FINAL_ANSWER_PROMPT = (  # only when the reasoning never reached 'Answer:'
    "The wearer asked: {question}\nYour notes: {reasoning}\n"
    "Now give only the answer for the wearer, in one or two short spoken sentences."
)
AGGREGATE_PROMPT = (
    "The wearer asked: {question}\n"
    "{n} helpers looked at the scene in different ways and wrote these drafts:\n{drafts}\n"
    "You do not see the picture yourself: rely on the drafts. Write the final answer for the wearer in one "
    "or two short spoken sentences. Keep what the drafts agree on. {disagreement}"
)
AGREE_NOTE = "If they disagree about a fact, say that you are not sure instead of picking one."
DISAGREE_NOTE = (
    "The drafts disagree ({why}): say that you are not sure and name the possibilities briefly, "
    "instead of picking one."
)
CUE_TEXT = "Let me think."

# --- budgets ---------------------------------------------------------------------------
THINK_BUDGET = 160  # new tokens for the reasoning and the answer together
DRAFT_TOKENS = 64  # per draft: a short answer, or a sentence of description plus the answer

# --- the cue rule ----------------------------------------------------------------------
CUE_AFTER = 1.5  # seconds after the question by which the wearer should hear something
# Priors for predicting the first sound before any token has been seen: SmolVLM-256M, fp32,
# one 512 px image, 2 CPU cores (benchmarks/modes.py). Once tokens flow, the observed
# rate replaces the per-token prior. A faster machine sets lower ones in ModeContext.
EXPECT_FIRST_TOKEN = 1.3  # seconds: vision tower and prefill, per prompt
EXPECT_TOKEN_S = 0.04  # seconds per generated token
EXPECT_REASONING_TOKENS = 48  # what a few short lines of reasoning take
FIRST_SENTENCE_TOKENS = 12  # what the first spoken sentence takes


@dataclass
class ModeContext:
    vlm: object  # VisionLanguageModel
    request: VLMRequest  # the instant-style request: system prompt, history, best frame, question
    cancel: threading.Event
    speak: Callable[[str], None]
    show: Callable[[str], None] = lambda text: None
    cue: Callable[[str], None] = lambda text: None
    frames: list[FrameSnapshot] = field(default_factory=list)  # the ring, for other views
    best: FrameSnapshot | None = None
    start: float = 0.0  # the question's speech window, session seconds
    end: float = 0.0
    image_side: int = 512
    agents: int = 4  # K drafts in contemplating
    elapsed: Callable[[], float] = lambda: 0.0  # session seconds since the end of the question, now
    expect_first_token: float = EXPECT_FIRST_TOKEN  # the cue rule's priors (see above)
    expect_token_s: float = EXPECT_TOKEN_S
    # Memory's evidence for the display: a core.messages.Evidence to show, or None to clear. Last, so
    # that positional construction keeps working.
    evidence: Callable[[object], None] = lambda evidence: None


@dataclass
class ModeResult:
    answer: str  # the final, spoken answer
    first_token: float | None  # seconds from the start of generation to the first token
    vlm_total: float  # seconds of generation in all
    extra: dict = field(default_factory=dict)  # logged with the turn (reasoning, drafts, ...)


def config_error(mode: str, agents: int) -> str | None:
    """The one-line message for a bad --mode or --agents (the entry point exits 2), else None."""
    if mode not in MODE_CHOICES:
        return f"unknown mode {mode!r}: choose one of {', '.join(MODE_CHOICES)}"
    if not 1 <= agents <= MAX_AGENTS:
        return f"--agents must be between 1 and {MAX_AGENTS}, got {agents}"
    return None


def answer(mode: str, ctx: ModeContext) -> ModeResult:
    if mode not in RUNNERS:
        raise ValueError(f"unknown mode {mode!r}")
    if not ctx.request.question.strip():  # a switch said alone ("think harder."): nothing to ask the model
        return ModeResult("", None, 0.0, {"skipped": "no question"})
    return RUNNERS[mode](ctx)


# --- choosing the mode -----------------------------------------------------------------
# Spoken switches, matched fuzzily where a clause begins. Said with a question they apply to
# that question; said alone they switch the standing mode (the question comes back empty).
VOICE_PHRASES = (
    ("think about it", "thinking"), ("think it through", "thinking"), ("think it over", "thinking"),
    ("thinking mode", "thinking"),
    ("think harder", "contemplating"), ("take your time", "contemplating"), ("contemplate", "contemplating"),
    ("contemplating mode", "contemplating"),
    ("quick answer", "instant"), ("just tell me", "instant"), ("instant mode", "instant"), ("quick mode", "instant"),
)
VOICE_THRESHOLD = 0.8  # similarity of the heard words to a phrase ("think about that", "contemplating")
_FILLERS = {"please", "and", "but", "so", "ok", "okay", "now", "oh", "um", "uh", "er", "hmm", "hm", "mm", "ah", "well",
            "then", "right", "alright", "yeah"}

# --mode auto: first matching rule wins; the reason names the words that decided.
AUTO_RULES = (
    (r"\bshould i\b", "contemplating"), (r"\bcompar\w*", "contemplating"),
    (r"\bwhich (one|is|of)\b", "contemplating"), (r"\b(better|worse|difference)\b", "contemplating"),
    (r"\bhow many\b", "contemplating"),
    (r"\bwhy\b", "thinking"), (r"\bhow (do|does|did|can|could|would|should|to|come)\b", "thinking"),
    (r"\bexplain\w*", "thinking"), (r"\bwhat if\b", "thinking"), (r"\bhow much\b", "thinking"),
    (r"\bwhat(s| is) (this|that)\b", "instant"),
)
AUTO_LONG_QUESTION = 20  # words: a long question leans Thinking


def choose_mode(question: str, current: str) -> tuple[str, str, str]:
    """(mode to run, question to ask, why), as a pure function of the words.

    A voice switch wins; otherwise `current` runs, and `current == "auto"` applies AUTO_RULES.
    An empty returned question means the switch was said alone: switch the standing mode.
    """
    found = find_voice_switch(question)
    if found:
        mode, rest, phrase = found
        alone = not [w for w in normalise(rest).split() if w not in _FILLERS]
        return mode, "" if alone else rest, f"voice: {phrase!r}" + (" said alone" if alone else "")
    if current != "auto":
        return current, question, "standing mode"
    mode, why = auto_mode(question)
    return mode, question, f"auto: {why}"


def auto_mode(question: str) -> tuple[str, str]:
    """A small, transparent rule: (mode, the words that decided it)."""
    norm = normalise(question)
    for pattern, mode in AUTO_RULES:
        m = re.search(pattern, norm)
        if m:
            return mode, f"{m.group(0)!r} leans {mode}"
    words = len(norm.split())
    if words > AUTO_LONG_QUESTION:
        return "thinking", f"long question ({words} words) leans thinking"
    return "instant", "no cue for a slower mode"


def find_voice_switch(text: str) -> tuple[str, str, str] | None:
    """(mode, the text without the phrase, the phrase) when a switch phrase opens a clause.

    A phrase counts at the start of the utterance or after clause punctuation or a filler
    ("..., take your time", "please think harder"), never inside a clause, so "what do you
    think about it?" stays a question. When the phrase runs into the question without
    punctuation ("just tell me what this is"), the words are kept as the question.
    """
    words = text.split()
    norm = [normalise(w) for w in words]
    for i in range(len(words)):
        opens = i == 0 or re.search(r"[,.;:!?\-]$", words[i - 1]) or norm[i - 1] in _FILLERS
        if not opens or not norm[i]:
            continue
        score, phrase, mode = max((SequenceMatcher(None, " ".join(norm[i:i + len(p.split())]), p).ratio(), p, m)
                                  for p, m in VOICE_PHRASES)
        if score < VOICE_THRESHOLD:
            continue
        end = i + len(phrase.split())
        if end < len(words) and not re.search(r"[,.;:!?\-]$", words[end - 1]):
            return mode, text.strip(), phrase  # runs into the question: keep the words
        before = " ".join(words[:i]).rstrip(" ,;:-")
        after = " ".join(words[end:]).lstrip(" ,.;:!?-")
        if not [w for w in normalise(before).split() if w not in _FILLERS]:
            before = ""
        return mode, f"{before} {after}".strip(), phrase
    return None


# --- the modes -------------------------------------------------------------------------
def instant(ctx: ModeContext) -> ModeResult:
    """Answer at once: greedy, short, every token streamed to speech."""
    t0 = time.perf_counter()
    first_token = None
    text = ""
    for piece in ctx.vlm.stream(ctx.request, ctx.cancel):
        if first_token is None:
            first_token = time.perf_counter() - t0
        text += piece
        ctx.speak(piece)
        if ctx.cancel.is_set():
            break
    return ModeResult(text.strip(), first_token, time.perf_counter() - t0)


class _Cue:
    """Plays CUE_TEXT once, as soon as the first spoken sound is predicted to come late."""

    def __init__(self, ctx: ModeContext):
        self.ctx = ctx
        self.played: dict | None = None

    def check(self, tokens_to_speech: float, per_token: float, wait: float = 0.0) -> None:
        """Predicted first sound = now + `wait` (prefills still to come) + tokens x per-token time."""
        if self.played is not None or self.ctx.cancel.is_set():
            return
        now = self.ctx.elapsed()
        predicted = now + wait + tokens_to_speech * per_token
        if predicted > CUE_AFTER:
            self.ctx.cue(CUE_TEXT)
            self.played = {"text": CUE_TEXT, "t": now, "predicted_first_sound": predicted}


_ANSWER_MARKER = re.compile(r"(?:final\s+)?answer\s*:", re.IGNORECASE)
_REASONING_LABEL = re.compile(r"^\s*(?:reasoning|thoughts?|scratchpad)\s*:\s*", re.IGNORECASE)


def split_reasoning(text: str) -> tuple[str, str | None]:
    """(reasoning, answer) from a scratchpad stream; answer is None until 'Answer:' is written."""
    m = _ANSWER_MARKER.search(text)
    if m is None:
        return _REASONING_LABEL.sub("", text).strip(), None
    return _REASONING_LABEL.sub("", text[:m.start()]).strip(), text[m.end():]


def thinking(ctx: ModeContext) -> ModeResult:
    """Reason first (shown, logged), then speak only the final answer."""
    t0 = time.perf_counter()
    cue = _Cue(ctx)
    cue.check(EXPECT_REASONING_TOKENS + FIRST_SENTENCE_TOKENS, ctx.expect_token_s, ctx.expect_first_token)
    request = replace(ctx.request, question=THINK_PROMPT.format(question=ctx.request.question),
                      max_new_tokens=THINK_BUDGET)
    text, reasoning, answer_text = "", "", None
    first_token = first_answer = None
    pieces = spoken = 0
    for piece in ctx.vlm.stream(request, ctx.cancel):
        now = time.perf_counter() - t0
        first_token = now if first_token is None else first_token
        pieces += 1
        text += piece
        reasoning, answer_text = split_reasoning(text)
        if answer_text is None:
            ctx.show(f"Thinking: {reasoning}")
            if pieces > 1:  # the observed rate now predicts the rest of the reasoning (a piece is ~a word)
                rate = (now - first_token) / (pieces - 1)
                cue.check(max(EXPECT_REASONING_TOKENS - pieces, 0) + FIRST_SENTENCE_TOKENS, rate)
        elif len(answer_text) > spoken:
            first_answer = now if first_answer is None else first_answer
            ctx.speak(answer_text[spoken:])
            spoken = len(answer_text)
        if ctx.cancel.is_set():
            break

    forced = False
    if not ctx.cancel.is_set() and not (answer_text or "").strip():
        # The budget ran out (or the model ignored the format): a short second pass on the notes.
        forced = True
        cue.check(FIRST_SENTENCE_TOKENS, ctx.expect_token_s, ctx.expect_first_token)
        final = VLMRequest(FINAL_ANSWER_PROMPT.format(question=ctx.request.question, reasoning=reasoning or "(none)"),
                           None, ctx.request.history, ctx.request.system, ctx.request.max_new_tokens)
        answer_text = ""
        for piece in ctx.vlm.stream(final, ctx.cancel):
            now = time.perf_counter() - t0
            first_token = now if first_token is None else first_token
            first_answer = now if first_answer is None else first_answer
            answer_text += piece
            ctx.speak(piece)
            if ctx.cancel.is_set():
                break
    extra = {"reasoning": reasoning, "cue": cue.played, "answer_forced": forced, "first_answer_token": first_answer,
             "think_prompt": request.question}
    return ModeResult((answer_text or "").strip(), first_token, time.perf_counter() - t0, extra)


def draft_requests(ctx: ModeContext, views: list[View], max_new_tokens: int = DRAFT_TOKENS) -> list[VLMRequest]:
    """One request per view: the view's image and instruction, the turn's system prompt and history."""
    r = ctx.request
    return [VLMRequest(v.prompt(r.question), v.image, r.history, r.system, max_new_tokens) for v in views]


_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero _ two three four five six seven eight nine ten eleven twelve".split()) if w != "_"}  # "one" is a pronoun too
_COLOURS = {"red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "grey", "silver",
            "gold"}


def disagreement(texts: list[str]) -> str:
    """Why the drafts disagree on a fact, or "" when they do not seem to.

    Transparent checks only: two drafts that state numbers with none in common, colours with
    none in common, or one opening with "yes" and another with "no".
    """
    facts = {"numbers": [], "colours": []}
    openings = set()
    for text in texts:
        words = normalise(text.replace("gray", "grey")).split()
        numbers = {_NUMBER_WORDS.get(w, w) for w in words if w.isdigit() or w in _NUMBER_WORDS}
        facts["numbers"].append(numbers)
        facts["colours"].append({w for w in words if w in _COLOURS})
        if words and words[0] in ("yes", "no"):
            openings.add(words[0])
    for kind, sets in facts.items():
        stated = [s for s in sets if s]
        if any(not (a & b) for i, a in enumerate(stated) for b in stated[i + 1:]):
            return f"{kind}: " + " vs ".join(sorted({", ".join(sorted(s)) for s in stated}))
    if openings == {"yes", "no"}:
        return "yes vs no"
    return ""


def aggregation_prompt(question: str, drafts: list[tuple[str, str]]) -> tuple[str, str]:
    """(the aggregator's prompt, why the drafts disagree or "") for (view, text) drafts."""
    why = disagreement([text for _, text in drafts])
    lines = "\n".join(f"{i}. ({view}) {text or '(no draft)'}" for i, (view, text) in enumerate(drafts, 1))
    note = DISAGREE_NOTE.format(why=why) if why else AGREE_NOTE
    return AGGREGATE_PROMPT.format(question=question, n=len(drafts), drafts=lines, disagreement=note), why


def contemplating(ctx: ModeContext) -> ModeResult:
    """K drafts from K views in one batched generation, then one aggregator pass that is spoken."""
    t0 = time.perf_counter()
    k = ctx.agents
    cue = _Cue(ctx)
    # The first sound waits for K prefills, the drafts, the aggregator's prefill and first sentence.
    cue.check(DRAFT_TOKENS + FIRST_SENTENCE_TOKENS, ctx.expect_token_s, (k + 1) * ctx.expect_first_token)
    views = build_views(k, image=ctx.request.image, best=ctx.best, frames=ctx.frames, start=ctx.start, end=ctx.end,
                        image_side=ctx.image_side)
    ctx.show(f"Contemplating: {k} drafts")
    t_drafts = time.perf_counter()
    texts = ctx.vlm.generate_batch(draft_requests(ctx, views), ctx.cancel, max_new_tokens=DRAFT_TOKENS)
    extra = {"drafts": [{"view": v.name, "text": t} for v, t in zip(views, texts)],
             "draft_latency": time.perf_counter() - t_drafts, "aggregation_prompt": "", "aggregate_latency": 0.0,
             "disagreement": "", "cue": cue.played}
    if ctx.cancel.is_set():
        return ModeResult("", None, time.perf_counter() - t0, extra)
    if k == 1:  # nothing to reconcile: the draft is the answer
        ctx.speak(texts[0])
        return ModeResult(texts[0].strip(), time.perf_counter() - t0, time.perf_counter() - t0, extra)
    ctx.show("Drafts: " + " | ".join(texts))

    prompt, why = aggregation_prompt(ctx.request.question, [(v.name, t) for v, t in zip(views, texts)])
    cue.check(FIRST_SENTENCE_TOKENS, ctx.expect_token_s, ctx.expect_first_token)
    t_agg = time.perf_counter()
    text, first_token = "", None
    request = VLMRequest(prompt, None, (), ctx.request.system, ctx.request.max_new_tokens)
    for piece in ctx.vlm.stream(request, ctx.cancel):
        first_token = time.perf_counter() - t0 if first_token is None else first_token
        text += piece
        ctx.speak(piece)
        if ctx.cancel.is_set():
            break
    extra.update(aggregation_prompt=prompt, aggregate_latency=time.perf_counter() - t_agg, disagreement=why,
                 cue=cue.played)
    return ModeResult(text.strip(), first_token, time.perf_counter() - t0, extra)


RUNNERS: dict[str, Callable[[ModeContext], ModeResult]] = {
    "instant": instant, "thinking": thinking, "contemplating": contemplating,
}

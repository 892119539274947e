"""The router: which answerer takes a question, as a pure function of its words.

A question goes to one of the VLM's answer modes (Instant, Thinking, Contemplating: see
pipelines/modes.py) or to a skill: a small answerer for one job (reading text, a product's
price, a memory of what was seen). Every answerer has the same shape, a function from a
`ModeContext` to a `ModeResult`, so the answer runner speaks a skill's answer exactly as it
speaks the VLM's.

Rules, in order:
1. A spoken mode switch ("think harder", "quick answer") said alone changes the standing
   mode and asks nothing; said with a question, the question goes to the VLM in that mode
   (the wearer asked for the model).
2. A skill's standing-mode switch ("shopping mode", "stop shopping", "translate what they
   say", "stop translating") turns that skill's standing mode on or off and asks nothing.
3. The first skill whose `wants` gives a reason takes the question. `active` is the standing
   skill ("shopping" while shopping mode is on), so a skill can take more while it stands
   ("what is this?" is shopping's in shopping mode, the VLM's otherwise).
4. Then a skill may take a question for what the camera sees (`wants_seen(question, look)`):
   "what is this?" with a product's barcode in view is shopping's. `look()` says what is in
   view (e.g. {"barcode"}); it is an input like the words, asked only when a skill's words fit,
   so a question no skill could take costs no look.
5. Otherwise the VLM answers in the standing mode (`auto` picks one from the words).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from pipelines.modes import ModeContext, ModeResult, choose_mode


class Skill(Protocol):
    name: str  # short and plain: shown on the display and logged with the turn

    def wants(self, question: str, active: str = "") -> str:
        """Why this skill takes `question`, or "" when it does not (a pure function of the words
        and of `active`, the standing skill's name or "")."""
        ...

    def answer(self, ctx: ModeContext) -> ModeResult:
        """Answer like a mode: `ctx.speak` what is to be heard, `ctx.show` what is only shown,
        stop when `ctx.cancel` is set."""
        ...


@dataclass(frozen=True)
class Route:
    target: str  # "vlm" | "skill"
    name: str  # the VLM's mode, or the skill's name
    question: str  # what the answerer is asked (a spoken switch taken off)
    reason: str  # why, for the log
    switch: bool = False  # a mode switch said alone: change the standing mode, ask nothing
    leave: bool = False  # a skill's switch that ends its standing mode ("stop shopping")
    said: str = ""  # a skill's switch: what the wearer hears ("Shopping mode on.")

    @property
    def speculates(self) -> bool:
        """Whether a prepared image prefix can serve this answer (speculative vision)."""
        return self.target == "vlm" and self.name in ("instant", "thinking")


def nothing_seen() -> frozenset:
    return frozenset()


def route(question: str, mode: str, skills: Sequence[Skill] = (), active: str = "",
          look: Callable[[], frozenset] = nothing_seen) -> Route:
    """Where `question` goes when the standing mode is `mode`, the standing skill `active`, and
    `look()` tells what the camera sees."""
    chosen, rest, why = choose_mode(question, mode)
    if not rest.strip():
        return Route("vlm", chosen, "", why, switch=True)
    if not why.startswith("voice"):
        for skill in skills:
            standing = getattr(skill, "standing", None)
            on = standing(rest) if standing is not None else None
            if on is not None:
                said = getattr(skill, "switched", lambda on: "")(on) or \
                    f"{skill.name.capitalize()} mode {'on' if on else 'off'}."
                return Route("skill", skill.name, "", f"{skill.name} mode {'on' if on else 'off'}", switch=True,
                             leave=not on, said=said)
        for skill in skills:
            reason = skill.wants(rest, active)
            if reason:
                return Route("skill", skill.name, rest, reason)
        for skill in skills:
            wants_seen = getattr(skill, "wants_seen", None)
            reason = wants_seen(rest, look) if wants_seen is not None else ""
            if reason:
                return Route("skill", skill.name, rest, reason)
    return Route("vlm", chosen, rest, why)

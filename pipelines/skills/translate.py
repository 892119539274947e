"""Translation: "translate what they say" until "stop translating".

While translation mode stands, the session runs Whisper's translate task (the speaker's
language detected, their words in English; pipelines/asr.py), and turn-taking hands every
utterance said without the wake phrase to this skill (pipelines/turns.py), which speaks the
English. The other speaker's talking does not barge in on a translation, and no follow-up
window turns their next sentence into a question for the model. Signs and menus are the
reading skill's ("what does this sign say in English?": OCR and the VLM).
"""
from __future__ import annotations

import re
import time

from pipelines.modes import ModeContext, ModeResult
from pipelines.skills.base import matches, say
from pipelines.turns import TRANSLATE

_POLITE = r"^(?:(?:please|can you|could you|would you|will you|now|ok|okay|and|um|uh) )*"
_ON = re.compile(_POLITE + r"(?:(?:start|begin|turn on) )?(?:"
                 r"translat(?:e|ing) (?:what (?:they|she|he|you|people) (?:say|says|are saying|is saying)"
                 r"|for me|this conversation|the conversation|them|him|her|live)"
                 r"|translation(?: mode)?(?: on)?|live translation(?: on)?|interpret(?: for me)?"
                 r")(?: please)?$")
_OFF = re.compile(_POLITE + r"(?:stop|end|quit|exit|cancel|turn off|no more) "
                  r"(?:translating|translation(?: mode)?|the translation|interpreting)(?: please| now)?$"
                  r"|^translation(?: mode)? off$")


def switch(question: str) -> bool | None:
    """True: the words turn translation on; False: off; None: not a switch (pure)."""
    if matches(_OFF, question):
        return False
    if matches(_ON, question):
        return True
    return None


class TranslateSkill:
    name = TRANSLATE

    def standing(self, question: str) -> bool | None:
        return switch(question)

    @staticmethod
    def switched(on: bool) -> str:
        """What the wearer hears when translation turns on or off."""
        return ("Translating. I'll say in English what I hear, until you say stop translating." if on
                else "Translation off.")

    def wants(self, question: str, active: str = "") -> str:
        return ""  # turn-taking sends it the other speaker's speech while translation stands

    def answer(self, ctx: ModeContext) -> ModeResult:
        text = ctx.request.question.strip()
        return say(ctx, time.perf_counter(), text, {"english": text}, "translation")

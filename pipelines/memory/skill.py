"""The memory skill: answers from what the glasses kept, and keeps what the wearer tells it.

The router hands it a question when `kind_of` (pipelines/memory/recall.py) says it is about
memory. Then:

- recall: the store is searched (BM25 + recency); when nothing kept names what is asked about,
  it says "I didn't see that." at once, with no model call: it never guesses. Otherwise the
  best entry's thumbnail goes to the display (`ctx.evidence`), and the VLM gets the best few
  entries' captions, times in words and objects, with one collage of the view now and their
  thumbnails, through the same streaming answer Instant uses (`vlm_answer`, modes.instant).
  The turn record names the entries (`extra["memory"]`).
- remember / list_facts / forget_fact / forget_all: the wearer's facts, spoken back in the
  second person ("your parking spot is B12"). No model call.

A store error other than a full disk propagates: the answer runner apologises and logs it.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

import cv2

from core.messages import Evidence
from pipelines import modes
from pipelines.memory.prompt import (age_of, ago_in_words, ago_short, collage, decode_thumbnail, entry_note, local,
                                     recall_prompt, spoken_list)
from pipelines.memory.recall import (ago_of, content_words, fact_of, fitting, forget_target, kind_of, relevant_facts,
                                     search_query, to_second_person)
from pipelines.memory.store import Hit, MemoryFull
from pipelines.modes import ModeContext, ModeResult
from pipelines.wake import normalise

NOT_SEEN = "I didn't see that."
NO_FACTS = "I don't know anything about you yet."
NOTHING_TO_FORGET = "There was nothing to forget."
NOT_KNOWN = "You haven't told me that, so there is nothing to forget."
FORGOT_ALL = "Done. I forgot everything I had kept."
DISK_FULL = "I couldn't keep that: the disk is full."
CANDIDATES = 12  # asked of the store per recall; the newest few that name the thing are shown
SPOKEN_FACTS = 5  # "what do you remember about me?" reads at most this many, then "and N more"
AROUND_S = 300.0  # "an hour ago" looks at what was seen this near then (a quarter of the time ago, if more)


class MemorySkill:
    name = "memory"

    def __init__(self, store, vlm_answer: Callable[[ModeContext], ModeResult] = modes.instant, *,
                 not_seen: str = NOT_SEEN, now: Callable[[], float] = time.time, session: str | None = None,
                 entries: int = 3, min_score: float = 0.0):
        """`store`: a pipelines.memory.store.MemoryStore. `vlm_answer`: how the VLM answers (Instant's
        streaming path). `now`: wall seconds (recency, times of day). `session`: the id this session
        stores under; its entries are timed by media seconds (ctx.end), others by the wall clock.
        `entries`: how many kept entries the VLM sees (the collage holds three)."""
        self.store, self.vlm_answer, self.not_seen, self.now = store, vlm_answer, not_seen, now
        self.session = session if session is not None else getattr(store, "session", None)
        self.entries, self.min_score = max(1, min(3, entries)), min_score

    def wants(self, question: str, active: str = "") -> str:
        kind = kind_of(question)
        return f"memory: {kind}" if kind else ""

    def answer(self, ctx: ModeContext) -> ModeResult:
        kind = kind_of(ctx.request.question)
        run = {"recall": self._recall, "remember": self._remember, "list_facts": self._list,
               "forget_fact": self._forget_fact, "forget_all": self._forget_all}.get(kind)
        if run is None:  # the router asked, so this is rare (the words changed): say so rather than guess
            return self._say(ctx, time.perf_counter(), self.not_seen, {"kind": ""})
        return run(ctx)

    # --- recall ------------------------------------------------------------------------------
    def _recall(self, ctx: ModeContext) -> ModeResult:
        t0 = time.perf_counter()
        question, now = ctx.request.question, self.now()
        query, ago = search_query(question), ago_of(question)
        if not query and ago is not None:  # "what was I doing an hour ago?": what was seen then, whatever it was
            chosen = hits = [Hit(e, 0.0, 0.0, 0.0) for e in self.store.around(now - ago, max(AROUND_S, ago / 4),
                                                                              self.entries)]
        else:
            hits = self.store.recall(query, now, limit=CANDIDATES) if query else []
            chosen = fitting(hits, question, self.min_score)[:self.entries]
        facts = relevant_facts(self._facts(), question)
        record = {"kind": "recall", "query": query, "hits": [h.entry.id for h in hits],
                  "entries": [h.entry.id for h in chosen], "evidence": None, "facts": facts}
        if not chosen:
            # Nothing kept names it: a fact the wearer told may ("where did I park?"); else say so. No guess.
            text = f"You told me that {facts[0]}." if facts else self.not_seen
            return self._say(ctx, t0, text, record)

        ages = [age_of(h.entry, now_wall=now, now_media=ctx.end, session=self.session) for h in chosen]
        whens = [(local(h.entry.wall), local(now)) for h in chosen]
        said = [ago_in_words(age, *when) for age, when in zip(ages, whens)]
        notes = [entry_note(i, h.entry, ago) for i, (h, ago) in enumerate(zip(chosen, said), 1)]
        thumbs = [decode_thumbnail(self.store.thumbnail(h.entry.id)) if h.entry.has_thumbnail else None
                  for h in chosen]
        best = chosen[0].entry
        ctx.evidence(Evidence(best.id, ago_short(ages[0], *whens[0]), thumbs[0]))  # shown while it answers
        record["evidence"] = best.id
        image = collage(ctx.request.image, [cv2.cvtColor(t, cv2.COLOR_BGR2RGB) if t is not None else None
                                            for t in thumbs], side=ctx.image_side)
        prompt = recall_prompt(question, notes, self.not_seen, facts, when=said[0])
        request = replace(ctx.request, question=prompt, image=image, prefix=None)  # a prepared prefix saw another image
        result = self.vlm_answer(replace(ctx, request=request))
        if normalise(self.not_seen) in normalise(result.answer):  # the model found nothing in them: no evidence
            ctx.evidence(None)
            record["evidence"] = None
        record["prompt"] = prompt
        return replace(result, extra={**result.extra, "memory": record})

    # --- facts ---------------------------------------------------------------------------------
    def _facts(self) -> list:
        return sorted(self.store.facts(), key=lambda f: (f.wall, f.id))

    def _remember(self, ctx: ModeContext) -> ModeResult:
        t0 = time.perf_counter()
        fact = fact_of(ctx.request.question)
        try:
            fact_id = self.store.add_fact(fact, self.now())
        except MemoryFull as err:  # the wearer hears it; any other error propagates (the runner apologises)
            return self._say(ctx, t0, DISK_FULL, {"kind": "remember", "fact": None, "error": str(err)})
        return self._say(ctx, t0, f"OK, I'll remember that {to_second_person(fact)}.",
                         {"kind": "remember", "fact": fact_id})

    def _list(self, ctx: ModeContext) -> ModeResult:
        t0 = time.perf_counter()
        facts = self._facts()
        if not facts:
            return self._say(ctx, t0, NO_FACTS, {"kind": "list_facts", "facts": []})
        text = "You told me that " + spoken_list([to_second_person(f.text) for f in facts], SPOKEN_FACTS) + "."
        return self._say(ctx, t0, text, {"kind": "list_facts", "facts": [f.id for f in facts]})

    def _forget_fact(self, ctx: ModeContext) -> ModeResult:
        """"forget that": the newest fact. "forget that my locker is 7": the fact sharing most words
        with it, or none (then it says which one is last, rather than delete another)."""
        t0 = time.perf_counter()
        target = set(content_words(forget_target(ctx.request.question)))
        if not target:
            gone = self.store.forget_last_fact()
        else:
            shared = [(len(target & set(content_words(f.text))), f.wall, f.id, f) for f in self._facts()]
            best = max(shared, default=None)
            if best is None or best[0] == 0:
                return self._say(ctx, t0, NOT_KNOWN, {"kind": "forget_fact", "fact": None})
            gone = best[3] if self.store.forget_fact(best[3].id) else None
        if gone is None:
            return self._say(ctx, t0, NOTHING_TO_FORGET, {"kind": "forget_fact", "fact": None})
        return self._say(ctx, t0, f"OK, I forgot that {to_second_person(gone.text)}.",
                         {"kind": "forget_fact", "fact": gone.id})

    def _forget_all(self, ctx: ModeContext) -> ModeResult:
        t0 = time.perf_counter()
        self.store.forget_all()
        ctx.evidence(None)  # a forgotten picture must not stay on the display
        return self._say(ctx, t0, FORGOT_ALL, {"kind": "forget_all"})

    # --- speaking ------------------------------------------------------------------------------
    @staticmethod
    def _say(ctx: ModeContext, t0: float, text: str, record: dict) -> ModeResult:
        first = time.perf_counter() - t0
        if not ctx.cancel.is_set():
            ctx.speak(text)
        return ModeResult(text, first, 0.0, {"memory": record})

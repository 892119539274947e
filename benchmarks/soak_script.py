"""The chaos soak's script: episodes played in real time against a live session (benchmarks/soak.py).

An episode is a few scripted events around one answer: a question, then (say) a barge-in
timed to land while pyttsx3 renders a piece of the answer, or while it plays. The script
reacts to what the session does (the speaker's first play of an answer, the TTS starting to
render, the VLM reaching a sentence end), so the same seed gives the same episodes and
roughly the same timings, not identical ones. Everything it did goes into its ledger, which
soak.py checks against the session's log.

Landing a cancellation inside a rendering is deliberate: pyttsx3 renders a sentence in 10-50
ms, far shorter than the 0.4 s of speech a barge-in needs. So the pacer holds the VLM just
before the word that completes sentence k; the script starts speaking; the microphone holds
back its chunks from 0.3 s into the speech; then the pacer lets the sentence go, and the
moment pyttsx3 starts rendering it the microphone hands over what it held. The barge-in (or
the push-to-talk press, or the end of "stop") reaches the session within a few ms of the
rendering's start.
"""
from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass

GAP = 0.8  # s of quiet before any new burst or key: the endpointer needs 0.5 s to end the one before
QUESTION_S, PTT_S, BACKCHANNEL_S, STOP_S, STOP_LONG_S = 1.0, 0.9, 0.3, 0.3, 0.6
FIRST_AUDIO_WAIT = 10.0  # s the script waits for an answer to start before it moves on
EPISODES = {  # name: (weight, events it scripts)
    "plain": (1.0, 1), "follow_up": (1.0, 2), "ptt": (1.0, 1), "backchannel": (1.0, 3),
    "barge_render": (1.5, 2), "barge_play": (1.0, 2), "ptt_barge_render": (1.0, 2), "ptt_barge_play": (0.5, 2),
    "stop_render": (1.5, 2), "stop_play": (1.0, 2), "modes_key": (0.5, 5), "modes_voice": (0.5, 3),
    "camera_outage": (1.0, 1), "mic_overflow": (0.5, 1),
}


@dataclass
class Asked:
    n: int
    kind: str  # wake | follow_up | barge_in | ptt | ptt_barge_in
    text: str
    start: float  # the burst, session seconds
    end: float
    interrupted_at: float | None = None  # the script cut this answer (barge-in, stop, push-to-talk)


def plan(events: int, rng: random.Random, skip: tuple[str, ...] = ()) -> list[str]:
    """Episode names: every kind once (shuffled), then drawn by weight until `events` are scripted."""
    kinds = [n for n in EPISODES if n not in skip]
    names = list(kinds)
    rng.shuffle(names)
    total = sum(EPISODES[n][1] for n in names)
    weights = [EPISODES[n][0] for n in kinds]
    while total < events:
        name = rng.choices(kinds, weights)[0]
        names.append(name)
        total += EPISODES[name][1]
    return names


class Script:
    """Plays episodes against the session's ports; keeps a ledger of what it did. This class
    holds the primitives (speak, press, wait for the session); `Episodes` the episodes."""

    def __init__(self, *, mic, asr, window, clock, speaker, tts, vlm, pacer, capture, seed: int):
        self.mic, self.asr, self.window, self.clock = mic, asr, window, clock
        self.speaker, self.tts, self.vlm, self.pacer, self.capture = speaker, tts, vlm, pacer, capture
        self.rng = random.Random(seed)
        self.events: Counter = Counter()
        self.asked: list[Asked] = []
        self.bursts: list[dict] = []  # start, end, slot, kind
        self.backchannels: list[dict] = []
        self.stops: list[dict] = []
        self.outages: list[dict] = []
        self.stalls: list[dict] = []
        self.ptt_presses: list[float] = []  # session times of presses that barged in
        self.targets: Counter = Counter()  # the phase each cancellation was aimed at
        self.misses: Counter = Counter()  # what the script waited for in vain
        self.episodes: list[dict] = []  # name, start, end, and how an aimed cancellation went
        self._fired: threading.Event | None = None  # set when the held sentence started rendering
        self._quiet_from = 0.0  # session time the last burst or key ended
        self._n = 0

    # --- the whole run ------------------------------------------------------------------
    def run(self, events: int, stop: threading.Event, episodes: list[str] | None = None,
            skip: tuple[str, ...] = ()) -> None:
        """Play `episodes` (default: a plan of at least `events` events, without the `skip` kinds);
        ends with the session idle."""
        if not self.window.started.wait(10):
            return
        time.sleep(0.5)  # the first camera frames
        for name in episodes or plan(events, self.rng, skip):
            if stop.is_set():
                break
            self.episodes.append({"name": name, "start": round(self.now(), 2)})
            getattr(self, "ep_" + name)()
            self.episodes[-1]["end"] = round(self.now(), 2)
        self.wait_idle()

    # --- primitives ---------------------------------------------------------------------
    def now(self) -> float:
        return self.clock.now()

    def sleep_until(self, t: float) -> None:
        delay = t - self.now()
        if delay > 0:
            time.sleep(delay)

    def gap(self) -> None:
        self.sleep_until(self._quiet_from + GAP)

    def say(self, text: str, seconds: float, kind: str) -> tuple[float, float]:
        """Speak `text` for `seconds` (returns at once with the burst's start and end)."""
        self.gap()
        slot, tone = self.asr.line(text)
        start, end = self.mic.say(seconds, tone)
        self._quiet_from = end
        self.bursts.append({"start": start, "end": end, "slot": slot, "kind": kind})
        return start, end

    def question(self, kind: str, describe: bool = False, wake: bool = True, seconds: float = QUESTION_S,
                 wait: bool = True) -> Asked:
        self._n += 1
        ask = f"question {self._n}, " + ("describe everything you see." if describe else "what colour is it?")
        text = ("Hey glasses, " + ask) if wake else ask
        start, end = self.say(text, seconds, kind)
        asked = Asked(self._n, kind, text, start, end)
        self.asked.append(asked)
        self.events[kind] += 1
        if wait:
            self.sleep_until(end)
        return asked

    def press(self, key: str) -> float:
        t = self.now()
        self.window.press(key)
        return t

    def release_ptt(self) -> None:
        time.sleep(0.1)
        self.press(" ")
        self._quiet_from = self.now()  # the button ended the question: the next one waits its gap

    def first_audio(self, asked: Asked, timeout: float = FIRST_AUDIO_WAIT) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t = self.speaker.first_play.get(asked.n)
            if t is not None:
                return t
            time.sleep(0.02)
        self.misses["first audio"] += 1
        return None

    def wait_idle(self, timeout: float = 40.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.speaker.busy_until() <= self.now() and self.vlm.active == 0 and self.tts.idle():
                time.sleep(0.3)
                return
            time.sleep(0.05)
        self.misses["idle"] += 1

    def wait_playing_only(self, ahead: float, timeout: float = 10.0) -> bool:
        """Until the answer is fully rendered and at least `ahead` s of it are still to play."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.vlm.active == 0 and self.tts.idle() and self.speaker.busy_until() - self.now() >= ahead:
                return True
            time.sleep(0.02)
        self.misses["playing"] += 1
        return False

    def rendering_target(self, asked: Asked) -> bool:
        """Wait until the pacer holds the VLM at the armed sentence (see the module doc)."""
        held = self.pacer.held.wait(8.0)
        self.episodes[-1].update(n=asked.n, target="rendering", held=held)
        if not held:
            self.misses["pacer"] += 1
            self.pacer.release()
        return held

    def release_on_render(self) -> None:
        """Let the held sentence go; the microphone hands over its chunks when pyttsx3 starts on it."""
        fired = self._fired = threading.Event()

        def on_start() -> None:
            self.mic.release()
            fired.set()

        self.tts.on_start = on_start
        self.pacer.release()

    def note_render(self) -> None:
        """Whether the held sentence's rendering released the microphone (else its hold timed out)."""
        if self._fired is not None:
            self.episodes[-1]["released_by_rendering"] = self._fired.wait(1.0)
            self._fired = None
            self.tts.on_start = None

    def ledger(self) -> dict:
        return {"events": dict(self.events), "asked": [asdict(a) for a in self.asked], "bursts": self.bursts,
                "backchannels": self.backchannels, "stops": self.stops, "outages": self.outages,
                "stalls": self.stalls, "ptt_presses": self.ptt_presses, "targets": dict(self.targets),
                "misses": dict(self.misses), "episodes": self.episodes}


class Episodes(Script):
    """The episodes (EPISODES), each a method `ep_NAME`: a few events around one answer."""

    # --- cancellations, each aimed at "rendering" or "playing" ----------------------------
    def long_question(self, target: str) -> Asked:
        if target == "rendering":
            self.pacer.arm(self._n + 1, self.rng.choice((1, 2, 3)))
        asked = self.question("wake", describe=True)
        if target == "rendering":
            self.rendering_target(asked)
        else:
            self.first_audio(asked)
            self.wait_playing_only(ahead=2.0)
        return asked

    def barge(self, target: str, ptt: bool) -> None:
        asked = self.long_question(target)
        if target == "rendering" and not self.episodes[-1]["held"]:
            target = "missed"  # the answer never reached the sentence (say, the question was not heard): no hold
        self.targets[target] += 1
        if ptt:
            self.gap()
            if target == "rendering":
                self.mic.hold(self.now())
            asked.interrupted_at = self.press(" ")
            self.ptt_presses.append(asked.interrupted_at)
            if target == "rendering":  # the press acts when audio after it arrives: let a held chunk exist first
                self.sleep_until(asked.interrupted_at + 0.07)
                self.release_on_render()
            new = self.question("ptt_barge_in", wake=False, seconds=PTT_S)
            self.release_ptt()
        else:
            new = self.question("barge_in", wake=False, wait=False)
            asked.interrupted_at = new.start
            if target == "rendering":  # the barge-in needs 0.4 s of speech: hold from 0.3 s, let go at 0.5 s
                self.mic.hold(new.start + 0.3)
                self.sleep_until(new.start + 0.5)
                self.release_on_render()
            self.sleep_until(new.end)
        self.note_render()
        self.first_audio(new)
        self.wait_idle()

    def ep_barge_render(self) -> None:
        self.barge("rendering", ptt=False)

    def ep_barge_play(self) -> None:
        self.barge("playing", ptt=False)

    def ep_ptt_barge_render(self) -> None:
        self.barge("rendering", ptt=True)

    def ep_ptt_barge_play(self) -> None:
        self.barge("playing", ptt=True)

    def ep_stop_render(self) -> None:
        self.stop("rendering")

    def ep_stop_play(self) -> None:
        self.stop("playing")

    def stop(self, target: str) -> None:
        """Say "stop": short (the endpointer ends it) or long (a barge-in first, at 0.4 s of speech)."""
        long = self.rng.random() < 0.5
        asked = self.long_question(target)
        if target == "rendering" and not self.episodes[-1]["held"]:
            target = "missed"  # as in barge()
        self.targets[target] += 1
        start, end = self.say("stop", STOP_LONG_S if long else STOP_S, "stop")
        asked.interrupted_at = start
        self.events["stop"] += 1
        if target == "rendering":  # long: its barge-in (0.4 s of speech) lands; short: the endpointer's end does
            self.mic.hold(start + 0.3 if long else end + 0.35)
            self.sleep_until(start + 0.5 if long else end + 0.6)
            self.release_on_render()
        self.sleep_until(end + 0.8)
        self.note_render()
        plays = self.speaker.plays
        time.sleep(1.2)
        self.stops.append({"target": target, "long": long, "t": start,
                           "silent_after": self.speaker.plays == plays and self.speaker.busy_until() <= self.now()})
        self.wait_idle()

    # --- the rest -----------------------------------------------------------------------
    def ep_plain(self) -> None:
        self.first_audio(self.question("wake"))
        self.wait_idle()

    def ep_follow_up(self) -> None:
        self.first_audio(self.question("wake"))
        self.wait_idle()
        time.sleep(self.rng.uniform(0.0, 1.5))
        self.first_audio(self.question("follow_up", wake=False))
        self.wait_idle()

    def ep_backchannel(self) -> None:
        asked = self.question("wake", describe=True)
        self.first_audio(asked)
        self.wait_playing_only(ahead=3.5)
        clears = len(self.speaker.phases)
        start, _ = self.say("mm-hmm", BACKCHANNEL_S, "backchannel")
        self.events["backchannel"] += 1
        time.sleep(1.4)
        self.backchannels.append({"t": start, "interrupted": len(self.speaker.phases) != clears})
        self.gap()
        start, _ = self.say("stop", STOP_LONG_S, "stop")  # ends the long answer
        asked.interrupted_at = start
        self.events["stop"] += 1
        self.wait_idle()

    def ep_ptt(self) -> None:
        self.gap()
        self.press(" ")
        asked = self.question("ptt", wake=False, seconds=PTT_S)
        self.release_ptt()
        self.first_audio(asked)
        self.wait_idle()

    def ep_modes_key(self) -> None:
        for _ in range(2):  # instant -> thinking -> contemplating, a question in each
            self.press("m")
            self.events["mode_key"] += 1
            self.first_audio(self.question("wake"))
            self.wait_idle()
        self.press("m")  # back to instant
        self.events["mode_key"] += 1

    def ep_modes_voice(self) -> None:
        self.say("Hey glasses, think harder.", QUESTION_S, "mode_voice")
        self.events["mode_voice"] += 1
        time.sleep(QUESTION_S + 0.8)
        self.first_audio(self.question("wake"))
        self.wait_idle()
        self.say("Hey glasses, quick answer.", QUESTION_S, "mode_voice")
        self.events["mode_voice"] += 1
        time.sleep(QUESTION_S + 0.8)

    def ep_camera_outage(self) -> None:
        seconds = self.rng.uniform(2.0, 4.0)
        start = self.now()
        self.capture.outage(seconds)
        self.outages.append({"start": start, "end": start + seconds})
        self.events["camera_outage"] += 1

    def ep_mic_overflow(self) -> None:
        self.gap()
        start = self.now()
        self.mic.stall(3.0)
        time.sleep(3.3)
        self.stalls.append({"start": start, "end": start + 3.0})
        self.events["mic_overflow"] += 1
        self._quiet_from = self.now()

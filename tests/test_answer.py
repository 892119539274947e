"""The answer runner: the playback gate, skills through the router, and honest speculation records."""
import threading
import time

import numpy as np

from core.clock import MediaClock
from core.messages import SpeechAudio
from glasses.fakes import ScriptedSource, tone_track
from glasses.speaker import MixSpeaker
from pipelines.answer import Playback
from pipelines.log import SessionLog
from pipelines.modes import ModeResult
from pipelines.session import Session, SessionConfig
from tests.fakes import EnergyVAD, FakeTTS, FakeVLM, ScriptedASR


class OrderSpeaker:
    """Records every play and clear in the order the speaker saw them."""

    def __init__(self):
        self.ops = []

    def play(self, audio, at):
        time.sleep(0.0005)  # a real speaker does some work here (resampling): widen any race
        self.ops.append(("play", audio.text))
        return at, at + 0.1

    def clear(self, at):
        self.ops.append(("clear", at))


class Stub:
    def __init__(self, token):
        self.token = token

    def stop(self):
        self.token.set()


def test_nothing_of_a_cancelled_answer_reaches_the_speaker_after_its_clear():
    for _ in range(20):
        speaker, token = OrderSpeaker(), threading.Event()
        playback = Playback(speaker)
        audio = SpeechAudio("a sentence", np.zeros(10, np.float32), 16000)
        player = threading.Thread(target=lambda: [playback.play(token, audio, 0.0) for _ in range(200)])
        player.start()
        time.sleep(0.01)
        playback.cancel(Stub(token), clear_at=1.0)  # from the control thread, while pieces are being handed over
        player.join()
        cleared = speaker.ops.index(("clear", 1.0))
        assert all(op[0] != "play" for op in speaker.ops[cleared:]), speaker.ops[cleared - 2:cleared + 3]


def grey(t):
    img = np.full((120, 160, 3), 128, np.uint8)
    img[40:80, 60:100] = (0, 0, 255)
    return img


class ClockSkill:
    name = "clock"

    def __init__(self):
        self.asked = []

    def wants(self, question, active=""):
        return "asks the time" if "time" in question.lower() else ""

    def answer(self, ctx):
        self.asked.append(ctx.request.question)
        ctx.speak("It is noon. ")
        return ModeResult("It is noon.", 0.001, 0.001)


def session(script, bursts, *, vlm, skills=(), **config):
    log, speaker = SessionLog(None), MixSpeaker()
    s = Session(SessionConfig(**config), source=ScriptedSource(tone_track(8.0, bursts), grey), vad=EnergyVAD(),
                asr=ScriptedASR(script), vlm=vlm, tts=FakeTTS(), speaker=speaker, clock=MediaClock(), log_=log,
                skills=skills)
    s.run()
    return log, speaker


def test_a_question_the_router_gives_a_skill_is_answered_and_spoken_by_it():
    skill, vlm = ClockSkill(), FakeVLM("It is a red square.")
    script = [(1.5, "Hey glasses, what time is it?"), (4.5, "and what is this?")]
    log, speaker = session(script, [(1.0, 2.0), (4.0, 5.0)], vlm=vlm, skills=[skill])
    clock_turn, vlm_turn = log.turns()
    assert (clock_turn["route"], clock_turn["mode"], clock_turn["answer"]) == ("skill", "clock", "It is noon.")
    assert clock_turn["mode_reason"] == "asks the time" and skill.asked == ["what time is it?"]
    assert [c.text for c in speaker.clips()][0] == "It is noon."
    assert clock_turn["latency"]["voice_to_voice"] is not None
    assert (vlm_turn["route"], vlm_turn["mode"]) == ("vlm", "instant")  # a follow-up the skill does not want
    assert [r.question for r in vlm.requests] == ["and what is this?"]
    assert vlm_turn["speculation"]["vision"] in ("reused", "redone")  # prepared on the VLM's route only
    assert clock_turn["speculation"]["vision"] != "reused"


class UnfitVLM(FakeVLM):
    """Takes the prepared prefix but does not run on it (as HFVLM when the template put more between)."""

    def stream(self, request, cancel):
        prefix = request.prefix
        yield from super().stream(request.__class__(request.question, request.image, request.history, request.system,
                                                    request.max_new_tokens, None), cancel)
        self.offered = prefix


def test_speculation_says_reused_only_when_the_answer_ran_on_the_prefix():
    vlm = UnfitVLM("It is a red square.")
    log, _ = session([(1.5, "Hey glasses, what is this?")], [(1.0, 2.0)], vlm=vlm)
    (turn,) = log.turns()
    assert vlm.offered is not None  # the view held, so the prefix was offered ...
    assert turn["speculation"]["vision"] == "redone"  # ... but not used, and the record says so
    assert "did not fit" in turn["speculation"]["why"]
    log, _ = session([(1.5, "Hey glasses, what is this?")], [(1.0, 2.0)], vlm=FakeVLM("It is a red square."))
    assert log.turns()[0]["speculation"]["vision"] == "reused"

"""Speculative vision and early ASR (issue 5): work is reused when the frame or the silence
holds, redone when it does not, and answers are the same with and without speculation."""
import numpy as np

from glasses.fakes import ScriptedSource, tone_track
from glasses.speaker import MixSpeaker
from pipelines.asr import EarlyASR
from core.clock import MediaClock
from tests.fakes import EnergyVAD, FakeTTS, ScriptedASR
from pipelines.log import SessionLog
from core.messages import FrameSnapshot, Utterance
from pipelines.session import Session, SessionConfig
from pipelines.speculate import Speculation, judge
from pipelines.vision import same_view
from pipelines.wake import EVERY_UTTERANCE
from tests.fakes import FakeVLM

QUESTION = [(1.5, "what colour is the square?")]


def scene(colour):
    def draw(t):
        img = np.full((120, 160, 3), 128, np.uint8)
        img[40:80, 60:100] = colour
        img[5:10, int(t * 10) % 150: int(t * 10) % 150 + 5] = 255  # something small moves: the same view
        return img
    return draw


def turn_away_at(t_turn):
    """The red square, then (the head turned) a blue one from t_turn on."""
    red, blue = scene((0, 0, 255)), scene((255, 0, 0))
    return lambda t: red(t) if t < t_turn else blue(t)


def by_image(request):
    """A fake model whose answer depends on what it sees and on the question."""
    mean = request.image.reshape(-1, 3).mean(axis=0).round(1).tolist() if request.image is not None else None
    return f"You asked {request.question!r} about a picture of {mean}."


def run(draw, bursts=((1.0, 2.5),), script=QUESTION, **config):
    vlm = FakeVLM(reply=by_image)
    asr = ScriptedASR(list(script))
    log = SessionLog(None)
    session = Session(SessionConfig(wake_phrase=EVERY_UTTERANCE, **config), source=ScriptedSource(tone_track(6.0, list(bursts)), draw),
                      vad=EnergyVAD(), asr=asr, vlm=vlm, tts=FakeTTS(), speaker=MixSpeaker(), clock=MediaClock(),
                      log_=log)
    session.run()
    return log.turns(), vlm, asr


# --- pure decisions --------------------------------------------------------------------
def snap(t, image):
    return FrameSnapshot(t, image, 1.0, 1.0)


def test_judge_keeps_the_same_view_and_redoes_a_changed_one():
    red, blue = scene((0, 0, 255)), scene((255, 0, 0))
    spec = Speculation(1.0, snap(1.2, red(1.2)), red(1.2), ("sys", ()), future=None)
    assert judge(spec, 1.0, snap(2.2, red(2.2)), ("sys", ()))[0] == "keep"  # the ball moved: same view
    assert judge(spec, 1.0, snap(2.2, blue(2.2)), ("sys", ()))[0] == "redo"
    assert judge(spec, 1.0, snap(2.2, red(2.2)), ("sys", (("q", "a"),)))[0] == "redo"  # a turn was added
    assert judge(spec, 4.0, snap(4.2, red(4.2)), ("sys", ()))[0] == "new"  # another utterance
    assert judge(None, 1.0, snap(2.2, red(2.2)), ("sys", ()))[0] == "new"
    assert judge(spec, 1.0, None, ("sys", ()))[0] == "none"


def test_same_view_tells_a_small_move_from_a_turned_head():
    red = scene((0, 0, 255))
    assert same_view(red(0.0), red(1.0))
    assert not same_view(red(0.0), turn_away_at(0.5)(1.0))


class CountingASR:
    def __init__(self):
        self.calls = []
        self.inner = ScriptedASR([(1.0, "what is this")])

    def process(self, utt):
        self.calls.append((utt.start, utt.end, utt.early))
        return self.inner.process(utt)


def utt(end, early, detected=0.0):
    return Utterance(0.8, end, detected, np.zeros(16000, np.float32), detected_perf=1.0, early=early)


def test_early_asr_is_reused_when_the_silence_holds():
    asr = CountingASR()
    early = EarlyASR(asr)
    assert early.process(utt(1.5, True)) is None  # kept, not passed on
    tr = early.process(utt(1.5, False, detected=2.1))
    assert tr.text == "what is this" and tr.early_asr == "reused" and tr.detected_at == 2.1
    assert len(asr.calls) == 1 and (early.reused, early.redone) == (1, 0)


def test_early_asr_is_redone_when_speech_resumes():
    asr = CountingASR()
    early = EarlyASR(asr)
    early.process(utt(1.5, True))  # a pause at 1.5 s, then the wearer went on to 2.4 s
    tr = early.process(utt(2.4, False))
    assert tr.early_asr == "redone" and [c[1] for c in asr.calls] == [1.5, 2.4] and early.redone == 1


# --- in the session, with fake models ----------------------------------------------------
def test_a_held_view_reuses_the_prepared_frame_and_the_early_transcript():
    (turn,), vlm, asr = run(scene((0, 0, 255)))
    assert turn["speculation"]["vision"] == "reused" and turn["speculation"]["asr"] == "reused"
    assert len(vlm.prepared) == 1 and vlm.prepared[0].image is not None
    (request,) = vlm.requests
    assert request.prefix is not None and request.image is vlm.prepared[0].image  # the prepared frame, as encoded
    assert len(asr.calls) == 1  # transcribed once, during the silence


def test_a_view_that_changes_while_speaking_is_prepared_again_at_the_pause():
    (turn,), vlm, _ = run(turn_away_at(2.2))  # the head turns while the question is still spoken
    spec = turn["speculation"]
    assert spec["vision"] == "reused" and spec["redone_while_speaking"] == 1 and len(vlm.prepared) == 2
    (request,) = vlm.requests
    assert request.image is vlm.prepared[1].image
    assert request.image.reshape(-1, 3).mean(axis=0)[2] > request.image.reshape(-1, 3).mean(axis=0)[0]  # RGB: blue


def blurred_then(t_sharp, draw_after):
    import cv2

    red = scene((0, 0, 255))
    return lambda t: cv2.GaussianBlur(red(t), (21, 21), 8) if t < t_sharp else draw_after(t)


def test_a_better_frame_after_the_pause_means_the_work_is_redone_for_the_question():
    # Blurred until just after speech ends (2.5 s), then a sharp, different view: the pick at the
    # pause (frames up to 2.5 s) is the blur, the question's pick takes the sharp frame after it.
    (turn,), vlm, _ = run(blurred_then(2.55, scene((255, 0, 0))))
    assert turn["speculation"]["vision"] == "redone" and turn["speculation"]["why"] == "the view changed"
    (request,) = vlm.requests
    assert request.prefix is None and all(request.image is not p.image for p in vlm.prepared)
    assert turn["frame_time"] >= 2.55


def test_answers_are_identical_with_and_without_speculation():
    for draw in (scene((0, 0, 255)), turn_away_at(2.2), blurred_then(2.55, scene((255, 0, 0)))):
        on, _, _ = run(draw)
        off, vlm_off, _ = run(draw, speculative_vision=False, early_asr=False)
        assert [t["answer"] for t in on] == [t["answer"] for t in off] and on
        assert [t["question"] for t in on] == [t["question"] for t in off]
        assert vlm_off.prepared == [] and off[0]["speculation"]["vision"] == "off"


def test_a_pause_inside_the_question_discards_the_early_transcript():
    # 0.3 s of silence inside the question: longer than the early-ASR tail, shorter than the endpoint
    script = [(1.2, "what colour"), (2.2, "is the square?")]
    bursts = ((1.0, 1.6), (1.9, 2.5))
    (turn,), _, asr = run(scene((0, 0, 255)), bursts=bursts, script=script)
    (s1, e1), (s2, e2) = asr.calls  # an early cut at the inner pause, then one at the real end
    assert s1 == s2 and e1 < 1.7 and e2 > 2.4  # the first was discarded when speech resumed
    assert turn["speculation"]["asr"] == "reused" and abs(turn["heard_at"] - e2) < 1e-9  # the second was kept
    (off,), _, asr_off = run(scene((0, 0, 255)), bursts=bursts, script=script, speculative_vision=False, early_asr=False)
    assert asr_off.calls == [(s2, e2)] and off["question"] == turn["question"]


# --- with the tiny random-weight model: the real prepare() and KV-cache continuation ------
def test_prepared_prefix_gives_the_same_greedy_answer_as_the_whole_prompt():
    import threading
    from dataclasses import replace

    from pipelines.tiny import ensure_tiny_models
    from pipelines.vlm import HFVLM, SYSTEM_PROMPT, VLMConfig
    from core.messages import VLMRequest

    vlm = HFVLM(VLMConfig(model=str(ensure_tiny_models()[0]), threads=2))
    vlm.setup()
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (288, 512, 3), dtype=np.uint8)
    other = rng.integers(0, 256, (288, 512, 3), dtype=np.uint8)
    for history in ((), (("what is this?", "A mug."),)):
        request = VLMRequest("What colour is the mug?", image, history, SYSTEM_PROMPT, 16)
        prefix = vlm.prepare(request)
        whole = vlm.inputs(request)["input_ids"]
        assert prefix.input_ids.shape[1] < whole.shape[1]  # only the question is left to pre-fill
        assert (whole[:, :prefix.input_ids.shape[1]] == prefix.input_ids).all()
        with_prefix = "".join(vlm.stream(replace(request, prefix=prefix), threading.Event()))
        assert prefix.used
        assert with_prefix == "".join(vlm.stream(request, threading.Event()))
        # generation ran on a copy: the prefix is as prepared, and a second answer on it is the same
        assert prefix.cache.get_seq_length() == prefix.input_ids.shape[1]
        assert "".join(vlm.stream(replace(request, prefix=prefix), threading.Event())) == with_prefix
    # told to stop, prepare() leaves the forward pass at the next layer; other work is not affected
    stop = threading.Event()
    stop.set()
    assert vlm.prepare(request, stop=stop) is None
    assert vlm.prepare(request, stop=threading.Event()) is not None
    # a prefix made for another frame is not used: the whole prompt is encoded
    stale = vlm.prepare(VLMRequest("", other, (), SYSTEM_PROMPT))
    request = VLMRequest("What colour is the mug?", image, (), SYSTEM_PROMPT, 16)
    assert "".join(vlm.stream(replace(request, prefix=stale), threading.Event())) == \
        "".join(vlm.stream(request, threading.Event()))
    assert not stale.used
    assert vlm.prepare(VLMRequest("", None, (), SYSTEM_PROMPT)) is None  # no image: nothing to speculate on


# --- the speculative answer (real time): begun on the early transcript, heard only once confirmed ----
def run_live(bursts, script, duration=4.0, prepare_delay=0.0, draw=None, **config):
    from core.clock import WallClock

    vlm = FakeVLM(reply=by_image)
    vlm.prepare_delay = prepare_delay
    speaker = MixSpeaker()
    log = SessionLog(None)
    session = Session(SessionConfig(wake_phrase=EVERY_UTTERANCE, **config),
                      source=ScriptedSource(tone_track(duration, list(bursts)), draw or scene((0, 0, 255))), vad=EnergyVAD(),
                      asr=ScriptedASR(list(script)), vlm=vlm, tts=FakeTTS(), speaker=speaker, clock=WallClock(),
                      log_=log)
    session.run()
    return log, vlm, speaker


def test_an_answer_begun_early_is_silent_until_the_endpointer_confirms_it():
    log, vlm, speaker = run_live([(1.0, 2.0)], [(1.5, "what colour is the square?")])
    (turn,) = log.turns()
    assert turn["speculation"]["answer"] == "begun on the early transcript"
    assert len(vlm.requests) == 1  # one generation, not one early and one after the decision
    decided = turn["heard_at"] + turn["latency"]["vad"]
    # the endpointer's 0.5 s still ends the question (less one 32 ms chunk: this source hands a chunk
    # over at its first sample's time, a microphone at its last)
    assert turn["latency"]["vad"] >= 0.5 - 0.033
    assert min(c.start for c in speaker.clips()) >= decided  # nothing was heard before the decision
    off, _, _ = run_live([(1.0, 2.0)], [(1.5, "what colour is the square?")], speculative_answer=False)
    assert off.turns()[0]["answer"] == turn["answer"]
    assert off.turns()[0]["speculation"]["answer"] == "after the decision"


def test_an_answer_begun_early_is_discarded_when_speech_resumes():
    # 0.3 s inside the question: the early transcript ("what colour") starts an answer, then speech resumes
    log, vlm, speaker = run_live([(1.0, 1.6), (1.9, 2.5)], [(1.2, "what colour"), (2.2, "is the square?")])
    discards = [r for r in log.records if r["type"] == "speculative_answer"]
    assert [d["why"] for d in discards] == ["speech resumed"] and discards[0]["end"] < 1.7
    (turn,) = log.turns()  # one answer, to the whole question, not to its first half
    assert turn["heard_at"] > 2.4 and not turn["cancelled"]
    assert len(speaker.clips()) == len(turn["spoken"])  # the discarded answer never reached the speaker


def test_an_answer_discarded_while_it_waits_for_the_prepared_frame_generates_nothing():
    # the frame takes 0.8 s to prepare: the answer begun at the 0.3 s pause is still waiting for it when
    # speech resumes, and a generation started then would only take the cores from the real question
    log, vlm, _ = run_live([(1.0, 1.6), (1.9, 2.5)], [(1.2, "what colour"), (2.2, "is the square?")],
                           prepare_delay=0.8)
    assert [r["why"] for r in log.records if r["type"] == "speculative_answer"] == ["speech resumed"]
    assert len(vlm.requests) == 1  # only the whole question's: the discarded answer never generated
    (turn,) = log.turns()
    assert turn["answer"] and not turn["cancelled"]


def test_a_hesitation_keeps_the_prepared_frame_for_the_whole_question():
    # the answer begun at the 0.3 s pause runs on the prepared prefix and is discarded when speech
    # resumes; the frame still holds, so the whole question reuses that preparation, not a new one
    log, vlm, _ = run_live([(1.0, 1.6), (1.9, 2.5)], [(1.2, "what colour"), (2.2, "is the square?")])
    assert [r["why"] for r in log.records if r["type"] == "speculative_answer"] == ["speech resumed"]
    (turn,) = log.turns()
    assert len(vlm.prepared) == 1 and turn["speculation"]["vision"] == "reused"


def test_a_head_turned_mid_question_is_prepared_again_while_the_wearer_still_speaks():
    # the view changes at 1.5 s and the question goes on to 2.5 s: looking again every 0.2 s of
    # speech, at the newest frames, starts the new preparation within 0.2 s of the turn, not at the pause
    class TimedVLM(FakeVLM):
        def prepare(self, request):
            self.times.append(clock.now())
            return super().prepare(request)

    from core.clock import WallClock

    clock = WallClock()
    vlm = TimedVLM(reply=by_image)
    vlm.times = []
    log = SessionLog(None)
    def moved_at(t_turn):  # the same square, as sharp, further left: another view, nothing sharper about it
        def draw(t):
            img = np.full((120, 160, 3), 128, np.uint8)
            x = 60 if t < t_turn else 10
            img[40:80, x:x + 40] = (0, 0, 255)
            return img
        return draw

    session = Session(SessionConfig(wake_phrase=EVERY_UTTERANCE), source=ScriptedSource(tone_track(4.0, [(1.0, 2.5)]),
                      moved_at(1.5)), vad=EnergyVAD(), asr=ScriptedASR(QUESTION), vlm=vlm, tts=FakeTTS(),
                      speaker=MixSpeaker(), clock=clock, log_=log)
    session.run()
    (turn,) = log.turns()
    assert len(vlm.times) == 2 and 1.5 < vlm.times[1] < 1.85  # redone while speaking, well before the pause
    assert turn["speculation"]["vision"] == "reused" and turn["speculation"]["redone_while_speaking"] == 1


def test_a_newer_speculation_stops_the_one_still_being_prepared():
    import threading
    import time

    from pipelines.speculate import Speculator

    class SlowVLM:
        """prepare() takes 2 s unless told to stop."""

        def __init__(self):
            self.stopped, self.done = [], []

        def prepare(self, request, stop=None):
            if stop.wait(2.0):
                self.stopped.append(request.image[..., 0].mean())  # RGB: red
                return None
            self.done.append(request.image[..., 0].mean())
            return "prefix"

    red, blue = scene((0, 0, 255)), scene((255, 0, 0))
    vlm = SlowVLM()
    spec = Speculator(vlm, enabled=True, image_side=160, max_new_tokens=8)
    spec.start(1.0, snap(1.2, red(1.2)), ("sys", ()))
    time.sleep(0.1)  # the red frame's preparation is under way
    t0 = time.perf_counter()
    spec.start(1.0, snap(1.6, blue(1.6)), ("sys", ()))  # the head turned: redo
    assert spec.current.future.result(timeout=5) == "prefix"
    assert time.perf_counter() - t0 < 2.5  # the new one did not wait out the old one's 2 s
    assert len(vlm.stopped) == 1 and len(vlm.done) == 1 and vlm.stopped[0] > vlm.done[0]  # red stopped, blue done
    spec.close()


def test_each_preparation_runs_in_a_thread_that_ends_one_at_a_time():
    import threading
    import time

    from pipelines.speculate import OneAtATime

    runner, running, most, ran = OneAtATime("prepare"), [], [0], []

    def job(n):
        running.append(n)
        most[0] = max(most[0], len(running))
        time.sleep(0.05)
        running.remove(n)
        ran.append(threading.current_thread())
        return n

    first, second = runner.submit(job, 1), runner.submit(job, 2)
    third = runner.submit(job, 3)
    assert third.cancel() or third.done()  # cancelled before its turn: it never runs
    assert (first.result(2), second.result(2)) == (1, 2) and most[0] == 1
    time.sleep(0.05)
    assert len(ran) == 2 and not any(t.is_alive() for t in ran)  # no long-lived torch thread
    runner.shutdown()
    assert runner.submit(job, 4).cancelled()

"""Live mode with fake ports and the real Session, in real time (WallClock): a scripted camera
and microphone, a speaker that records what it was asked to play and when it was cleared.

Each live run lasts a few seconds of wall time; the ports' own rules are tested without a session.
"""
import functools
import os
import threading
import time

import numpy as np
import pytest

from glasses.camera import Camera, CameraError
from glasses.echo import preload
from glasses.fakes import FakeCapture, FakeOutputStream, FakeWindow, RecordingSpeaker, scripted_microphone, tone_track
from glasses.live import Buttons, LiveDisplay, TypedQuestions
from glasses.speaker import SoundDeviceSpeaker
from glasses.microphone import CHUNK, PacedMicrophone, SelfHearingGate, array_chunks
from pipelines.app import LiveOptions, live
from core.clock import WallClock
from tests.fakes import EnergyVAD, FakeTTS, ScriptedASR
from core.messages import DisplayState, ModeSwitch, PushToTalk, SpeechAudio
from pipelines.session import NO_IMAGE_NOTE
from tests.fakes import FakeVLM

LONG = "This is a long answer that goes on. " * 6  # ~14 s of FakeTTS speech
preload()  # livekit's first import (~0.7 s) must not happen inside a session whose clock already runs


def scene(i: int) -> np.ndarray:
    img = np.full((120, 160, 3), 128, np.uint8)
    img[40:80, 60:100] = (255, 0, 0)
    img[5:10, i % 150 : i % 150 + 5] = 255  # something moves
    return img


class Answers:
    """A VLM that gives the next scripted answer to each request."""

    def __init__(self, *answers, delay=0.0):
        self.answers, self.delay, self.requests = answers, delay, []

    def stream(self, request, cancel):
        answer = self.answers[min(len(self.requests), len(self.answers) - 1)]
        self.requests.append(request)
        yield from FakeVLM(answer, delay=self.delay).stream(request, cancel)


def run_live(tmp_path, *, seconds, bursts=(), script=(), vlm=None, camera=None, echo=0.0, keys=(), mic=True,
             stdin=None, **opts):
    """One live session on fake ports; ends when the file camera does (or at a 'q' key).

    Without `echo` the microphone hears nothing of the speaker, as with headphones: then
    self-hearing is `off` (what the README says for headphones) unless a test says otherwise."""
    opts.setdefault("self_hearing", "aec" if echo else "off")
    clock = WallClock()
    speaker = RecordingSpeaker(clock.now)
    echo_fn = (lambda t, n: echo * speaker.sound(t, n)) if echo else None  # the laptop mic hears the speaker
    microphone = scripted_microphone(tone_track(seconds, list(bursts)), echo=echo_fn) if mic else None
    camera = camera or Camera(FakeCapture(scene, fps=30, frames=int(seconds * 30), paced=False), kind="file")
    window = FakeWindow()

    def press():
        window.started.wait(5)
        for t, key in keys:
            time.sleep(max(0.0, t - clock.now()))
            window.press(key)

    presser = threading.Thread(target=press)
    before = set(threading.enumerate())
    presser.start()
    vlm = vlm or FakeVLM("It is a red square.")
    result = live(LiveOptions(window=False, out=tmp_path / "out", mic=None if mic else "none", echo=False, **opts),
                  camera=camera, mic=microphone, speaker=speaker, window=window, asr=ScriptedASR(list(script)),
                  vlm=vlm, tts=FakeTTS(), vad=EnergyVAD(), stdin=stdin, clock=clock)
    presser.join()
    left = [th.name for th in threading.enumerate() if th not in before and th is not presser and th.is_alive()]
    return result, speaker, window, vlm, left


def records(result, kind):
    return [r for r in result.records if r["type"] == kind]


# --- the live loop ------------------------------------------------------------------------------
def test_a_wake_question_is_answered_and_the_session_ends_cleanly_with_the_file_camera(tmp_path):
    result, speaker, window, vlm, left = run_live(tmp_path, seconds=3.5, bursts=[(0.3, 1.2)],
                                                  script=[(0.7, "Hey glasses, what is this?")])
    (turn,) = result.turns
    assert turn["question"] == "what is this?" and turn["frame_time"] is not None
    assert vlm.requests[0].image is not None
    assert speaker.plays and speaker.plays[0]["text"] == "It is a red square."
    assert 0 <= speaker.plays[0]["start"] - turn["heard_at"] < 1.0  # voice to voice, in real time
    assert result.reason == "the camera file ended" and result.code == 0
    assert [r["type"] for r in result.records][0] == "session" and result.records[-1]["type"] == "end"
    assert result.figures["shutdown_s"] < 2.0 and left == []
    assert any(s.light for s in window.states) and any(s.status == "speaking" for s in window.states)
    assert (result.out / "session.jsonl").read_text().count("\n") == len(result.records)  # flushed


@pytest.mark.parametrize("mode,onset_within", [("gate", 0.1), ("aec", 0.2)])
def test_barge_in_pauses_playback_at_once_and_the_new_question_is_heard(tmp_path, mode, onset_within):
    # The user speaks over the answer, louder than its echo, which the canceller (or the gate)
    # keeps out. The canceller's suppressor takes a moment to let double talk through, so the
    # speech it hands on may start up to ~0.15 s late. The session clock starts before the
    # microphone does: times are measured from the first question's onset (0.2 s into the audio).
    # The answer pauses at the first hint of the wearer's voice (once the filter can be trusted).
    result, speaker, _, vlm, left = run_live(
        tmp_path, seconds=5.3, bursts=[(0.2, 1.0), (2.6, 3.4)], echo=0.5, vlm=Answers(LONG, "It is red.", delay=0.08),
        script=[(0.6, "Hey glasses, describe everything."), (3.0, "what colour is it?")], self_hearing=mode)
    origin = records(result, "heard")[0]["start"] - 0.2
    (barge,) = records(result, "barge_in")
    assert abs(barge["speech_start"] - origin - 2.6) < onset_within
    assert barge["t"] - barge["speech_start"] >= 0.4  # cancelled once 0.4 s of speech was heard
    if mode == "gate":
        (yielded,) = records(result, "yield")
        assert 0 <= speaker.clears[0] - yielded["t"] < 0.15  # silent from the pause: the barge-in only cancels
        assert speaker.clears[0] - barge["speech_start"] < 0.25  # the floor is the wearer's within a quarter second
    else:  # the canceller has heard under a second of the answer: not settled, so no hint, and the 0.4 s rule
        assert records(result, "yield") == [] and 0 <= speaker.clears[0] - barge["t"] < 0.15
    assert [t["question"] for t in result.turns] == ["describe everything.", "what colour is it?"]
    assert result.turns[0]["cancelled"] is True  # still generating (0.08 s a word) when the wearer spoke
    assert len(result.turns[0]["answer"].split()) < len(LONG.split())
    assert "It is red." in [p["text"] for p in speaker.plays]
    assert left == []


def test_a_backchannel_does_not_interrupt_and_a_follow_up_needs_no_wake_phrase(tmp_path):
    result, speaker, _, _, _ = run_live(
        tmp_path, seconds=5.8, bursts=[(0.2, 0.9), (2.3, 2.9), (4.2, 4.5)], vlm=Answers("A square.", LONG),
        script=[(0.5, "Hey glasses, what is this?"), (2.6, "and what colour is it?"), (4.3, "mm-hmm")])
    assert [t["question"] for t in result.turns] == ["what is this?", "and what colour is it?"]
    assert records(result, "barge_in") == [] and speaker.clears == []
    mm = [h for h in records(result, "heard") if h["text"] == "mm-hmm"]
    assert mm and mm[0]["action"] == "ignore" and "backchannel" in mm[0]["reason"]


@pytest.mark.parametrize("mode,self_interrupts", [("aec", False), ("gate", False), ("off", True)])
def test_the_assistant_does_not_answer_its_own_voice(tmp_path, mode, self_interrupts):
    # The microphone hears the speaker at half its level; nobody else speaks after the question.
    result, speaker, _, _, _ = run_live(tmp_path, seconds=3.3, bursts=[(0.2, 0.9)], echo=0.5, vlm=FakeVLM(LONG),
                                        script=[(0.5, "Hey glasses, describe everything.")], self_hearing=mode)
    assert bool(records(result, "yield")) is self_interrupts  # hearing itself, it pauses for its own voice
    if not self_interrupts:
        assert not records(result, "barge_in") and not speaker.clears


def test_push_to_talk_photo_mode_and_quit_keys(tmp_path):
    camera = Camera(FakeCapture(scene, fps=30), kind="device")  # endless: only 'q' ends it
    result, _, _, _, left = run_live(tmp_path, seconds=5.0, bursts=[(0.6, 1.4)], script=[(1.0, "what is this")],
                                     camera=camera, keys=[(0.5, " "), (1.6, " "), (2.0, "m"), (2.2, "p"), (3.0, "q")])
    (turn,) = result.turns  # no wake phrase: the button made it a question
    assert turn["question"] == "what is this" and abs(turn["speech_start"] - 0.5) < 0.1 and abs(turn["heard_at"] - 1.6) < 0.1
    assert records(result, "mode")
    (photo,) = records(result, "photo")
    assert (result.out / photo["path"]).stat().st_size > 0 and photo["path"].startswith("photos/photo-")
    assert result.reason == "quit" and result.figures["shutdown_s"] < 2.0 and left == []
    assert camera.capture.released


def test_a_camera_that_dies_is_shown_and_answers_go_on_without_an_image(tmp_path):
    camera = Camera(FakeCapture(scene, fps=30, die_after=0.5), kind="device")
    result, _, window, vlm, left = run_live(tmp_path, seconds=4.0, camera=camera, asks=((2.8, "what is this?"),),
                                            keys=[(3.4, "q")])
    (turn,) = result.turns
    assert turn["frame_time"] is None and vlm.requests[0].image is None
    assert NO_IMAGE_NOTE.strip() in vlm.requests[0].system
    assert any("camera: no frames" in s.banner for s in window.states)
    assert [r["stage"] for r in records(result, "error")] == ["camera"]
    assert left == []


def test_typed_questions_without_a_microphone(tmp_path):
    read, write = os.pipe()
    try:
        os.write(write, b"what is this?\n")
        result, _, _, _, left = run_live(tmp_path, seconds=2.5, mic=False, stdin=read)
    finally:
        os.close(write)
        os.close(read)
    (turn,) = result.turns
    assert turn["question"] == "what is this?" and records(result, "ask")[0]["text"] == "what is this?"
    assert 0 < turn["latency"]["voice_to_voice"] < 1.0  # from the moment it was typed (fake models answer at once)
    assert left == []


# --- the ports' own rules -----------------------------------------------------------------------
def test_camera_keeps_the_newest_frame_measures_its_rate_and_releases_the_device():
    capture = FakeCapture(scene, fps=30)
    camera = Camera(capture, kind="device").start(time.perf_counter)
    time.sleep(0.7)
    first = camera.latest()
    time.sleep(0.3)  # nobody reads: frames are replaced, never queued
    second = camera.latest()
    assert 6 <= second.seq - first.seq <= 12 and 25 <= camera.fps <= 35
    t0 = time.perf_counter()
    camera.close()
    assert capture.released and time.perf_counter() - t0 < 0.5


def test_a_file_camera_plays_at_its_own_rate_and_ends():
    camera = Camera(FakeCapture(scene, fps=30, frames=15, paced=False), kind="file").start(time.perf_counter)
    time.sleep(0.25)
    assert not camera.ended  # 15 frames at 30 fps take half a second, not an instant
    time.sleep(0.5)
    # every frame, unless the machine is loaded: then a late frame is skipped (the file keeps its rate)
    assert camera.ended and 10 <= camera.frames <= 15 and camera.capture.released


class Closed:
    def isOpened(self):  # noqa: N802
        return False

    def grab(self):
        return False

    def release(self):
        """A camera that never opened has nothing to release."""


def test_a_missing_camera_lists_the_ones_that_work(tmp_path):
    open_ = lambda src: FakeCapture(scene, paced=False) if src == 1 else Closed()  # noqa: E731
    with pytest.raises(CameraError, match=r"no camera at index 4 \(cameras that work: 1\)"):
        Camera.open(4, open_=open_)
    with pytest.raises(CameraError, match="no such file"):
        Camera.open(str(tmp_path / "none.mp4"))


def test_microphone_plays_in_real_time_and_counts_what_it_drops():
    mic = PacedMicrophone(array_chunks(np.ones(16000, np.float32) * 0.1), maxsize=4).start(time.perf_counter)
    time.sleep(0.5)  # nobody reads: ~15 chunks arrive, 4 fit
    got = [mic.read(0.1) for _ in range(4)]
    mic.close()
    assert 8 <= mic.dropped <= 14
    times = [t for t, _ in got]
    assert np.allclose(np.diff(times), CHUNK / 16000) and all(len(s) == CHUNK for _, s in got)


def test_the_gate_passes_the_wearer_and_keeps_out_the_echo():
    playing = lambda t0, t1: 0.2 if t1 > 1.0 else 0.0  # noqa: E731 - the speaker plays at peak 0.2 from 1 s
    echo, voice = np.full(512, 0.1, np.float32), np.full(512, 0.4, np.float32)
    gate = SelfHearingGate("gate", playing)
    assert gate(0.0, echo) is echo  # nothing playing: everything passes
    assert not gate(2.0, echo).any()  # only the echo: silence
    assert gate(3.0, voice).any() and gate(3.1, echo).any()  # the wearer, and a moment after (hangover)
    assert not gate(3.5, echo).any()
    mute = SelfHearingGate("mute", playing)
    assert not mute(2.0, voice).any() and mute(0.0, voice).any()
    assert SelfHearingGate("off", playing)(2.0, echo) is echo


def test_the_speaker_goes_silent_within_one_block_of_clear():
    clock = WallClock()
    factory = functools.partial(FakeOutputStream, now=clock.now)
    speaker = SoundDeviceSpeaker(None, clock.now, rate=16000, block_s=0.01, stream_factory=factory)
    tone = SpeechAudio("a", (0.3 * np.sin(np.arange(32000) / 5)).astype(np.float32), 16000)
    start, end = speaker.play(tone, clock.now())
    assert abs(end - start - 2.0) < 1e-6 and speaker.busy_until() == end
    time.sleep(0.3)
    assert speaker.played(clock.now() - 0.2, clock.now()) > 0.25  # the gate's far end
    speaker.clear(clock.now())
    time.sleep(0.1)
    stream = speaker._stream
    speaker.close()
    assert speaker.busy_until() <= clock.now()
    assert 0 <= speaker.silenced[0] - speaker.clears[0] <= 0.012  # the next 10 ms block is silence
    assert not any(b.any() for t, b in stream.blocks if t >= speaker.silenced[0])
    assert any(b.any() for t, b in stream.blocks if t < speaker.clears[0])


def test_buttons_toggle_hold_photo_mode_and_quit():
    now = [0.0]
    sent, calls = [], []
    buttons = Buttons(lambda: now[0], sent.append, lambda: calls.append("photo"), lambda: calls.append("quit"))
    for t, key in [(1.0, 32), (2.0, 32), (2.5, ord("m")), (2.6, ord("p")), (2.7, 27)]:
        now[0] = t
        buttons.key(key)
    assert sent == [PushToTalk(1.0, True), PushToTalk(2.0, False), ModeSwitch(2.5, "next")] and calls == ["photo", "quit"]

    sent.clear()
    hold = Buttons(lambda: now[0], sent.append, lambda: None, lambda: None, ptt="hold")
    for t in [5.0, 5.5, 5.53, 5.56, 5.6]:  # pressed, then auto-repeat
        now[0] = t
        hold.key(32)
        hold.tick()
    now[0] = 6.0
    hold.tick()
    assert sent == [PushToTalk(5.0, True)]
    now[0] = 6.3
    hold.tick()
    assert sent == [PushToTalk(5.0, True), PushToTalk(pytest.approx(5.65), False)]


def test_typed_lines_become_questions_and_closing_never_waits_on_the_terminal():
    read, write = os.pipe()
    got = []
    typed = TypedQuestions(read, got.append).start()
    os.write(write, b"what is this?\n\npart")
    time.sleep(0.3)
    t0 = time.perf_counter()
    typed.close()  # the writer is still open: a blocking read would hang here
    assert got == ["what is this?"] and time.perf_counter() - t0 < 0.5
    os.close(write)
    os.close(read)


def test_the_display_reads_speaking_while_the_speaker_still_sounds():
    class Busy:
        until = 10.0

        def busy_until(self):
            return self.until

    lines = []
    display = LiveDisplay(Busy(), lambda: 5.0, echo=lines.append)
    display.show(DisplayState(caption="what is this?", status="thinking", light=True))
    display.show(DisplayState(caption="what is this?", answer="A square.", status="idle"))
    assert display.current().status == "speaking" and display.current().light
    assert lines == ["heard:  what is this?", "answer: A square."]
    Busy.until = 0.0
    assert display.current().status == "idle"

"""The replay command: a recorded clip through the loop, then the turn table and the annotated video."""
from __future__ import annotations

import functools
import math
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import av

from core.clock import MediaClock, WallClock
from glasses.recorded import MediaError, RecordedSource
from glasses.render import NoSpace, render_annotated
from glasses.speaker import MixSpeaker
from pipelines.app.common import (RANDOM_BANNER, AssistantOptions, UsageError, _print_turns, default_out,
                                  open_session, prepare_out, privacy_badge, session_config, stages)
from pipelines.app.memory import open_memory, summary_line
from pipelines.app.skills import build_skills, open_catalog
from pipelines.vision import CAMERA_SIDE
from pipelines.private_video import BlurConfig, FaceBlur, load_detector
from pipelines.session import Session
from pipelines.vad import SileroVAD


@dataclass(frozen=True)
class ReplayOptions(AssistantOptions):
    clip: Path
    pace: str = "fast"
    render: bool = True
    progress: bool = True


@dataclass
class ReplayResult:
    out: Path
    turns: list[dict]
    records: list[dict]
    warnings: list[str]
    video: Path | None
    timings: dict = field(default_factory=dict)  # wall seconds: load, session, render


def replay(opts: ReplayOptions, *, asr=None, vlm=None, tts=None) -> ReplayResult:
    """Replay a clip through the loop; stages may be injected (tests pass fakes)."""
    timings = {}
    t_load = time.perf_counter()
    if not opts.clip.exists():
        raise UsageError(f"no such file: {opts.clip}")
    try:
        source = RecordedSource(opts.clip, max_side=CAMERA_SIDE)  # the ring keeps 640 px and the newest at 1280
    except MediaError as err:
        raise UsageError(str(err)) from err
    duration = source.info.duration
    for t, _ in opts.asks:
        if t > duration + 1e-6:
            raise UsageError(f"--ask at {t:g} s is past the end of the clip ({duration:.1f} s)")
    warnings = list(source.warnings)
    catalog = open_catalog(opts.catalog)  # before the models load: a bad catalog costs a line, not a minute
    memory = open_memory(opts.memory, opts.memory_days, warnings) if opts.memory else None  # before the models load
    try:
        asr, vlm, models = stages(opts, asr, vlm)
        if memory is not None:
            memory.prepare(vlm, replay=True)
        # Skills before the folder: a timers file that cannot be read is one line, and leaves no folder behind
        out = opts.out or default_out(opts.clip)
        skills = build_skills(opts, out, catalog, memory, blur=opts.blur_faces, realtime=opts.pace == "realtime")
        out = prepare_out(out)  # after loading: a failed start leaves nothing behind
    except BaseException:
        if memory is not None:
            memory.close()
        raise
    blur = None  # the saved video's faces, blurred unless --no-blur-faces (recorded in the session record)
    if opts.render and opts.blur_faces and source.info.has_video:  # an audio-only clip's video is black
        detector, why = load_detector(BlurConfig.side)
        blur, warnings = FaceBlur(detector), warnings + ([why] if why else [])
    session_log, tts, own_tts = open_session(out, opts, models, warnings, tts, "replay", clip=str(opts.clip),
                                             pace=opts.pace, duration=duration,
                                             memory=memory.describe() if memory is not None else None,
                                             blur_faces=opts.blur_faces,
                                             face_detector=blur.figures()["detector"] if blur else None,
                                             skills=skills.describe())
    skills.log = session_log
    # A still picture is what the glasses see for the whole clip: the stale-frame rule (a camera that
    # stopped) must not drop the only frame.
    config = session_config(opts, models, asks=tuple(opts.asks),
                            **({"stale_frame": math.inf} if source.info.still else {}))
    speaker = MixSpeaker(out if opts.render else None)  # without a video, no answer's audio is kept
    clock = WallClock() if opts.pace == "realtime" else MediaClock()
    bar = _progress_bar(duration) if opts.progress and opts.pace == "fast" else None
    session = Session(config, source=source, vad=SileroVAD(), asr=asr, vlm=vlm, tts=tts, speaker=speaker,
                      clock=clock, log_=session_log, on_progress=functools.partial(_advance, bar) if bar else None,
                      **{**(memory.session_kwargs() if memory is not None else {}), "skills": skills.skills})
    if memory is not None:
        memory.attach(session, session_log)
    banner = RANDOM_BANNER if models.get("random_weights") else ""
    if not source.info.has_video:
        banner = (banner + " | " if banner else "") + "audio only: no frames to look at"
    badge = privacy_badge(models, blur is not None or memory is not None)  # memory's thumbnails are always blurred
    session.show(0.0, banner=banner, **({"badge": badge} if badge else {}))
    timings["load"] = time.perf_counter() - t_load
    t_session = time.perf_counter()
    try:
        try:
            session.run()
            if bar:
                _advance(bar, duration)  # the last chunk starts a little before the end
        finally:
            timings["session"] = time.perf_counter() - t_session
            if bar:
                bar.close()
            if own_tts:
                tts.close()
            source.close()
            skills.close()
            if memory is not None:
                memory.close()
            session_log.close()
        t_render = time.perf_counter()
        video = _render(opts, out, session.timeline(), speaker, blur) if opts.render else None
        timings["render"] = time.perf_counter() - t_render
        if blur is not None:
            timings["faces"] = blur.seconds
            logging.getLogger("replay").info("faces in annotated.mp4: %s", blur.figures())
    finally:
        speaker.close()  # frees the answers' spool
    return ReplayResult(out, session_log.turns(), session_log.records, warnings, video, timings)


def _render(opts: ReplayOptions, out: Path, timeline, speaker: MixSpeaker, blur: FaceBlur | None) -> Path | None:
    """annotated.mp4, or None with one warning line when the media cannot be rendered; a full
    disk is the user's to fix (UsageError). Nothing is left at annotated.mp4 unless it is whole."""
    speech = [(c.start, functools.partial(speaker.samples, c), c.rate)
              for c in speaker.clips() if c.length > 0 and c.offset is not None]
    path = out / "annotated.mp4"
    try:
        return render_annotated(opts.clip, path, timeline, speech, progress=opts.progress, camera=blur)
    except NoSpace as err:
        raise UsageError(f"no space left on {out} for annotated.mp4 "
                         f"(about {max(1, math.ceil(err.needed / 1e6))} MB needed)") from err
    except (MediaError, ValueError, av.FFmpegError) as err:
        logging.getLogger("replay").warning("annotated video not written: %s", err, exc_info=True)
    except BaseException as err:  # Ctrl+C or a bug: say so in one line, then let it go on up
        why = "interrupted" if isinstance(err, KeyboardInterrupt) else f"{type(err).__name__}: {err}"
        logging.getLogger("replay").warning("annotated video not written (%s)", why)
        raise
    return None


def _advance(bar, t: float) -> None:
    """Move the replay bar to media time `t`, never past its total: the last chunk is padded
    beyond the clip's end, and tqdm warns (in the middle of the bar) when n > total. The bar
    counts whole milliseconds, so no float sum drifts past the total either."""
    bar.update(max(0, min(round(t * 1000), bar.total) - bar.n))


def _progress_bar(duration: float, **kwargs):
    from tqdm import tqdm

    return tqdm(total=round(duration * 1000), unit="s", unit_scale=0.001, desc="replay",
                bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s media [{elapsed}<{remaining}]", **kwargs)


def print_summary(result: ReplayResult) -> None:
    _print_turns(result)
    kept = summary_line(result.records)
    if kept:
        print(kept)
    duration = next((r.get("duration", 0.0) for r in result.records if r["type"] == "session"), 0.0)
    took = result.timings.get("session", 0.0)
    if took > 0:
        print(f"replayed {duration:.1f} s of media in {took:.1f} s ({duration / took:.1f}x real time); "
              f"models loaded in {result.timings.get('load', 0.0):.1f} s, video written in {result.timings.get('render', 0.0):.1f} s")
    print(f"log:   {result.out / 'session.jsonl'}")
    if result.video:
        faces = result.timings.get("faces")
        print(f"video: {result.video}" + (f" (faces blurred: {faces:.1f} s)" if faces is not None else ""))


# --- live: the laptop plays the glasses ----------------------------------------------------------

"""Generated clips: known speech at known times over known frames, in any container.

The project ships no media, yet tests, benchmarks and `make demo` need clips whose content
is known exactly: what was said and when (espeak-ng), what each frame shows (OpenCV), and a
sound and a picture that happen together (to check A/V sync). PyAV muxes them, so the same
code writes every container the recorded source has to read (mp4, mov, mkv, webm, and
audio-only files), with rotation metadata like a phone held upright. Everything is seeded:
the same call writes the same clip.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from core.audio import read_wav, resample, write_wav  # re-exported: tests use them from here

__all__ = ["SAMPLE_QUESTION", "make_clip", "make_sample_clip", "read_wav", "speak_to_wav", "write_wav"]

SAMPLE_QUESTION = "hey glasses, what colour is the square?"

# container_codecs -> (muxer, video codec, audio codec); opus and vp8 are what webm allows.
CONTAINERS = {
    "mp4": ("mp4", "libx264", "aac"),
    "mov": ("mov", "libx264", "aac"),
    "mkv": ("matroska", "libx264", "libopus"),
    "webm": ("webm", "libvpx", "libopus"),
}
# audio-only files are chosen by extension
AUDIO_ONLY = {
    ".m4a": ("ipod", "aac"),
    ".wav": ("wav", "pcm_s16le"),
    ".flac": ("flac", "flac"),
    ".mp3": ("mp3", "libmp3lame"),
    ".ogg": ("ogg", "libopus"),
    ".opus": ("ogg", "libopus"),
    ".mka": ("matroska", "libopus"),
}
OPUS_RATES = (48000, 24000, 16000, 12000, 8000)  # libopus accepts nothing else
VIDEO_OPTIONS = {
    "libx264": {"preset": "veryfast", "crf": "23"},
    "libvpx": {"deadline": "realtime", "cpu-used": "8", "b": "1M"},
}


def speak_to_wav(text: str, path, voice: str = "en", speed_wpm: int = 160) -> Path:
    """Speak `text` into a WAV file with espeak-ng (22.05 kHz mono)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng not found: install it (apt-get install espeak-ng) to generate speech")
    done = subprocess.run(
        [exe, "-v", voice, "-s", str(speed_wpm), "-w", str(path), text], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"espeak-ng failed on {text!r}: {done.stderr.strip()}")
    return Path(path)


def default_scene(size: tuple[int, int], fps: float) -> Callable[[np.ndarray, float], None]:
    """Grey background, a big red square in the middle, a moving blue ball, frame number and time."""
    w, h = size

    def draw(frame: np.ndarray, t: float) -> None:
        frame[:] = 128
        side = min(w, h) // 2
        x0, y0 = (w - side) // 2, (h - side) // 2
        frame[y0 : y0 + side, x0 : x0 + side] = (0, 0, 255)
        ball_x = int((t * w / 4) % w)  # crosses the frame every 4 s, so frames differ
        cv2.circle(frame, (ball_x, h - h // 8), max(4, h // 16), (255, 0, 0), -1)
        scale = h / 720
        text = f"frame {round(t * fps)}  t={t:.2f}s"
        # Left of the square, mid-height: clear of the display overlay's top and bottom boxes.
        cv2.putText(frame, text, (10, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.2 * scale, (255, 255, 255), 2)

    return draw


def soundtrack(duration: float, rate: int, channels: int, *, speech=(), beeps=(), noise_db=-60.0, seed=0):
    """(N, channels) float32: faint noise (None: digital silence), speech and 1 kHz beeps at their times."""
    n = int(round(duration * rate))
    mono = np.zeros(n, np.float32)
    if noise_db is not None:
        mono += np.random.default_rng(seed).standard_normal(n).astype(np.float32) * 10 ** (noise_db / 20)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (start, text) in enumerate(speech):
            voice, voice_rate = read_wav(speak_to_wav(text, Path(tmp) / f"{i}.wav"))
            _add(mono, resample(voice, voice_rate, rate), int(round(start * rate)))
    for start, length in beeps:
        k = np.arange(int(round(length * rate)))
        _add(mono, 0.5 * np.sin(2 * np.pi * 1000 * k / rate).astype(np.float32), int(round(start * rate)))
    return np.repeat(np.clip(mono, -1, 1)[:, None], channels, axis=1)


def _add(track: np.ndarray, sound: np.ndarray, at: int) -> None:
    sound = sound[: max(0, len(track) - at)]
    track[at : at + len(sound)] += sound


def make_clip(
    path,
    *,
    duration: float,
    speech: Sequence[tuple[float, str]] = (),
    size=(640, 360),
    fps: float = 15.0,
    container_codecs: str = "mp4",
    rotate: int = 0,
    audio: bool = True,
    video: bool = True,
    audio_rate: int = 44100,
    audio_channels: int = 2,
    noise_db: float | None = -60.0,
    draw: Callable[[np.ndarray, float], np.ndarray | None] | None = None,
    beeps: Sequence[tuple[float, float]] = (),
    seed: int = 0,
) -> Path:
    """Write a clip of `duration` s; `speech` is [(start_s, text)], `beeps` is [(start_s, length_s)].

    `size` is (width, height) as stored; `rotate` (clockwise degrees, like a phone's "rotate"
    tag) is written as a display matrix, so a player shows it turned. `draw(frame_bgr, t)`
    paints a frame in place (or returns one). `video=False` writes an audio-only file whose
    format follows the extension (.m4a .wav .flac .mp3 .ogg .opus .mka, or the container's).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if container_codecs not in CONTAINERS:
        raise ValueError(f"container_codecs must be one of {sorted(CONTAINERS)}, not {container_codecs!r}")
    if rotate % 90 or not (audio or video):
        raise ValueError("rotate must be a multiple of 90, and a clip needs audio or video")
    muxer, vcodec, acodec = CONTAINERS[container_codecs]
    if not video and path.suffix.lower() in AUDIO_ONLY:
        muxer, acodec = AUDIO_ONLY[path.suffix.lower()]

    with av.open(str(path), "w", format=muxer) as out:
        vstream = astream = None
        if video:
            vstream = out.add_stream(vcodec, rate=Fraction(fps).limit_denominator(1001), options=VIDEO_OPTIONS[vcodec])
            vstream.width, vstream.height = size
            vstream.pix_fmt = "yuv420p"
            if rotate % 360:
                vstream.set_display_rotation(-rotate)  # PyAV's angle is counter-clockwise
        if audio:
            enc_rate = audio_rate if acodec != "libopus" or audio_rate in OPUS_RATES else 48000
            astream = out.add_stream(acodec, rate=enc_rate, layout=av.AudioLayout(f"{audio_channels}c").name)
            track = soundtrack(duration, audio_rate, audio_channels, speech=speech, beeps=beeps,
                               noise_db=noise_db, seed=seed)
        paint = draw or default_scene(size, fps)
        n_frames = int(round(duration * fps)) if video else 0
        sent = 0  # audio samples encoded so far
        for i in range(max(n_frames, 1)):
            if video:
                canvas = np.zeros((size[1], size[0], 3), np.uint8)
                image = paint(canvas, i / fps)
                frame = av.VideoFrame.from_ndarray(canvas if image is None else image, format="bgr24")
                frame.pts = i
                out.mux(vstream.encode(frame))
            if audio:  # keep the audio level with the video, so the file is interleaved
                until = len(track) if i == max(n_frames, 1) - 1 else int((i + 1) / fps * audio_rate)
                sent = _encode_audio(out, astream, track, sent, until, audio_rate)
        for stream in (vstream, astream):
            if stream is not None:
                out.mux(stream.encode(None))
    return path


def _encode_audio(out, stream, track: np.ndarray, start: int, stop: int, rate: int, block: int = 1024) -> int:
    layout = av.AudioLayout(f"{track.shape[1]}c").name
    for at in range(start, stop, block):
        chunk = np.ascontiguousarray(track[at : min(at + block, stop)])
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="flt", layout=layout)
        frame.sample_rate, frame.pts = rate, at  # PyAV converts to the encoder's rate/format
        out.mux(stream.encode(frame))
    return max(start, stop)


def make_sample_clip(path, overwrite: bool = True) -> Path:
    """The `make demo` clip: 8 s, 640x360 mp4, the sample question asked at 1.5 s, then quiet.

    `overwrite=False` (the command line) never replaces a file: FileExistsError instead. The
    name is claimed before writing (open mode "x"), so no file can slip in between."""
    path = Path(path)
    if not overwrite:
        path.parent.mkdir(parents=True, exist_ok=True)
        open(path, "x").close()  # FileExistsError when there is one
    try:
        return make_clip(path, duration=8.0, speech=[(1.5, SAMPLE_QUESTION)], size=(640, 360), fps=15.0)
    except BaseException:
        if not overwrite:
            path.unlink(missing_ok=True)  # ours, half written: leave nothing behind
        raise

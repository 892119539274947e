"""The echo benchmark's sounds: the assistant's own answers, a simulated room, and the wearer.

- Answers: sentences a glasses assistant says, rendered by the session's own TTS
  (pipelines.tts.Pyttsx3TTS, espeak-ng) at three speaking rates.
- Room: a synthetic impulse response (direct path, early reflections off the table and
  the lid, an exponentially decaying diffuse tail), a laptop speaker's missing bass
  (high-pass), soft clipping (a small speaker driven hard) and a gain.
- The wearer: real speech from ../shared/media (audio/speech, audio/vad), cut at the
  onsets the session's VAD finds: 1.3 s pieces for barge-ins, 0.3 s pieces for
  backchannels ("mm-hmm", "ok": too short to interrupt).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.messages import SAMPLE_RATE, SpeechAudio

MEDIA = Path(__file__).resolve().parents[1] / ".." / "shared" / "media" / "audio"
SPEECH = ["speech/jfk.flac", "speech/fw_multilingual_en_de.mp3", "speech/fw_hotwords.mp3",
          "speech/fw_stereo_diarization.wav", "speech/sb_french_example2.flac", "vad/sb_vad_valid.wav",
          "vad/sb_vad_train.wav"]
NOISE = "noise/sb_noise2.wav"

SENTENCES = [
    "It is a red square on a grey table.", "There is a blue cup to the left of it, about half full.",
    "The sign above the door says all year round, in white letters.", "I can see a cat sitting on a wooden chair.",
    "The receipt shows a total of twelve dollars and fifty cents.", "That looks like a cup of coffee with a saucer.",
    "The light is coming from a window on your right.", "The plaque is blue and round, like the heritage plaques in London.",
    "The bus stop is across the street, next to the bakery.", "It says the store opens at nine in the morning.",
    "The barcode belongs to a packet of biscuits.", "There are three people standing near the entrance.",
    "The car parked in front is silver and quite small.", "I think it is late afternoon, because the shadows are long.",
    "The label says the medicine should be taken twice a day with food.", "The plant on the shelf has broad green leaves.",
    "Your keys are on the table, next to the laptop.", "The page is a test sheet with several lines of printed text.",
    "The lift lobby sign points to floors one to five.", "The menu lists soup, a sandwich and three kinds of salad.",
    "The door on your left is marked staff only.", "There is a stop sign at the end of the road.",
    "The screen shows a weather forecast with rain tomorrow.", "The bottle is made of glass and the cap is green.",
    "I would say the room is a small kitchen.", "The clock on the wall reads a quarter past four.",
    "The poster advertises a concert on Saturday evening.", "Would you like me to read the rest of the text?",
    "The painting shows a boat on a calm lake.", "The box says it contains twelve eggs, free range.",
    "The train leaves from platform two in ten minutes.", "There is a small step down just in front of you.",
]


def render_answers(seed: int = 0, rates=(160, 185, 210)) -> list[SpeechAudio]:
    """Answers of one to three sentences, rendered by pyttsx3 (espeak-ng) at each rate."""
    from pipelines.tts import Pyttsx3TTS

    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(len(SENTENCES)):
        k = int(rng.integers(1, 4))
        texts.append(" ".join(rng.choice(SENTENCES, k, replace=False)))
    answers = []
    for rate in rates:
        tts = Pyttsx3TTS(rate_wpm=rate)
        tts.setup()
        try:
            for text in texts:
                for _ in range(3):  # espeak now and then hands back a WAV before writing it: render again
                    audio = tts.submit(text).result(timeout=60)
                    if len(audio.samples) > audio.rate // 2:
                        answers.append(audio)
                        break
        finally:
            tts.close()
    return answers


@dataclass(frozen=True)
class Room:
    """A laptop on a desk: what the microphone hears of what the speaker plays."""

    gain: float = 0.5  # echo level at the microphone relative to what is played (before clipping)
    drive: float = 1.5  # soft clipping: tanh(drive * x) / drive, a small speaker near its limit
    rt60: float = 0.3  # seconds for the diffuse tail to fall by 60 dB
    tail: float = 0.02  # the diffuse tail's level: a microphone a hand away from the speaker hears mostly the direct sound
    seed: int = 0

    def response(self) -> np.ndarray:
        """The impulse response at 16 kHz, unit energy, with the speaker's missing bass."""
        rng = np.random.default_rng(self.seed)
        n = int(1.2 * self.rt60 * SAMPLE_RATE)
        h = np.zeros(n)
        h[int(0.0008 * SAMPLE_RATE)] = 1.0  # direct path: ~0.3 m through the air
        for _ in range(8):  # early reflections: desk, lid, the wearer, nearby walls
            at = int(rng.uniform(0.002, 0.025) * SAMPLE_RATE)
            h[at] += rng.choice([-1, 1]) * rng.uniform(0.15, 0.5) * np.exp(-at / (0.02 * SAMPLE_RATE))
        start = int(0.005 * SAMPLE_RATE)
        t = np.arange(n - start) / SAMPLE_RATE
        h[start:] += self.tail * rng.standard_normal(n - start) * np.exp(-6.9 * t / self.rt60)
        bass = np.ones(48) / 48  # laptop speakers give little below ~300 Hz
        h = h - np.convolve(h, bass)[: len(h)]
        return (h / np.sqrt(np.sum(h**2))).astype(np.float32)

    def echo(self, played: np.ndarray) -> np.ndarray:
        """Played samples (16 kHz) -> what reaches the microphone from the speaker."""
        driven = np.tanh(self.drive * played) / self.drive
        return (self.gain * fft_convolve(driven, self.response())[: len(played)]).astype(np.float32)


def fft_convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    n = len(x) + len(h) - 1
    size = 1 << (n - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[:n]


def load(path: Path) -> np.ndarray:
    """Any audio file as 16 kHz mono, decoded by the project's own reader (PyAV)."""
    from core.messages import AudioChunk
    from glasses.recorded import RecordedSource

    source = RecordedSource(path)
    return np.concatenate([ev.samples for ev in source.events() if isinstance(ev, AudioChunk)]).astype(np.float32)


@dataclass(frozen=True)
class Piece:
    name: str
    samples: np.ndarray
    onset: float  # seconds into `samples` where the speech begins


def onsets(audio: np.ndarray, voiced: float, span: float, quiet: float = 0.15) -> list[float]:
    """Where speech starts after `quiet` s without it and is voiced `voiced` s of the next
    `span` s, by the session's VAD (Silero, its 0.5 / 0.35 thresholds)."""
    from pipelines.vad import WINDOW, SileroVAD

    window = WINDOW / SAMPLE_RATE
    probs = np.array(SileroVAD()(audio))
    before, ahead = int(round(quiet / window)), int(round(span / window))
    found, i = [], before
    while i < len(probs) - ahead:
        if probs[i] >= 0.5 and np.all(probs[i - before : i] < 0.35) and np.sum(probs[i : i + ahead] >= 0.5) * window >= voiced:
            found.append(i * window)
            i += ahead
        else:
            i += 1
    return found


def energy_onset(piece: np.ndarray, before: float) -> float:
    """Where the speech starts by its energy: the first 10 ms above -20 dB of the loudest."""
    frames = np.sqrt(np.mean(piece[: len(piece) // 160 * 160].reshape(-1, 160) ** 2, axis=1)) + 1e-9
    first = int(np.argmax(frames > frames.max() * 0.1))
    return min(first * 0.01, before)


def wearer_pieces(length: float, voiced: float, pre: float = 0.15) -> list[Piece]:
    """Real speech cut `pre` s before each onset found, `length` s long; its onset is the
    earlier of the VAD's and the energy's."""
    pieces = []
    for rel in SPEECH:
        path = MEDIA / rel
        if not path.exists():
            continue
        audio = load(path)
        for start in onsets(audio, voiced, span=length - pre):
            a = int((start - pre) * SAMPLE_RATE)
            piece = audio[a : a + int(length * SAMPLE_RATE)]
            fade = np.minimum(1.0, np.minimum(np.arange(len(piece)), np.arange(len(piece))[::-1]) / 80)
            piece = (piece * fade).astype(np.float32)
            pieces.append(Piece(f"{path.name}@{start:.2f}", piece, energy_onset(piece, pre)))
    return pieces


def wearer() -> tuple[list[Piece], list[Piece]] | None:
    """The wearer's barge-in pieces and backchannel snippets, None without the real speech."""
    pieces, snippets = wearer_pieces(1.3, voiced=0.8), wearer_pieces(0.35, voiced=0.15, pre=0.05)
    return (pieces, snippets) if pieces and snippets else None


NO_SPEECH = f"the wearer's real speech is not there ({MEDIA}): put ../shared/media beside the clone"


def noise_floor(seconds: float, level_db: float = -55.0) -> np.ndarray:
    """Recorded background noise looped to length, at `level_db` dBFS RMS (white if absent)."""
    n = int(seconds * SAMPLE_RATE)
    path = MEDIA / NOISE
    base = load(path) if path.exists() else np.random.default_rng(1).standard_normal(SAMPLE_RATE).astype(np.float32)
    out = np.resize(base, n)
    return (out / (np.sqrt(np.mean(out**2)) + 1e-12) * 10 ** (level_db / 20)).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def active_rms(x: np.ndarray, floor_db: float = -40.0) -> float:
    """RMS over the 10 ms frames within 40 dB of the loudest: speech level without its pauses."""
    frames = np.sqrt(np.mean(x[: len(x) // 160 * 160].reshape(-1, 160) ** 2, axis=1))
    keep = frames > frames.max() * 10 ** (floor_db / 20) if len(frames) else frames
    return float(np.sqrt(np.mean(frames[keep] ** 2))) if keep.any() else 0.0

"""Translation mode with real Whisper base on real German speech (../shared/media).

"Translate what they say" sets `ASRStage.translating`: the speech's language is detected and
Whisper's translate task gives English. Without it, the same audio with the language left to
detection comes out German.
"""
import av
import numpy as np

from core.messages import Utterance
from pipelines.asr import ASRConfig, ASRStage, FasterWhisper

GERMAN = {"die", "der", "und", "das", "zu", "ist", "dies", "recht"}
ENGLISH = {"the", "to", "and", "this", "is", "of", "right"}


def german_speech(shared_media, start: float = 38.0, seconds: float = 8.0) -> np.ndarray:
    path = shared_media / "audio" / "speech" / "fw_multilingual_en_de.mp3"  # MIT licence read in English, then German
    chunks = []
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        for frame in container.decode(audio=0):
            chunks += [f.to_ndarray()[0] for f in resampler.resample(frame)]
    audio = np.concatenate(chunks)
    return audio[int(start * 16000):int((start + seconds) * 16000)].astype(np.float32)


def words(text: str) -> set[str]:
    return {w.strip(".,!?;:").lower() for w in text.split()}


def test_translation_mode_turns_german_speech_into_english(shared_media, real_whisper, real_whisper_dir):
    audio = german_speech(shared_media)
    utterance = Utterance(0.0, 8.0, 8.2, audio, 1.0)
    detect = ASRStage(FasterWhisper(ASRConfig(model=str(real_whisper_dir), language=None), model=real_whisper))
    heard = detect.process(utterance).text
    assert len(words(heard) & GERMAN) >= 2, heard  # as said: German
    stage = ASRStage(FasterWhisper(ASRConfig(model=str(real_whisper_dir)), model=real_whisper))
    stage.translating = True
    english = stage.process(utterance).text
    assert "software" in english.lower() and len(words(english) & ENGLISH) >= 2, english
    assert not words(english) & {"die", "und", "der", "das"}, english

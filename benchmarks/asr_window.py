"""Whisper on a shorter window: WER and time per utterance, full 30 s window against shorter ones.

    python -m benchmarks.asr_window [--out DIR] [--model DIR] [--threads N] [--repeat N]

faster-whisper pads every utterance to Whisper's 30 s window (3000 mel frames); encoding that
window is most of ASR's cost for a short question. `pipelines.asr.FasterWhisper` can encode a
shorter window instead (`ASRConfig.window`), and redoes at 30 s a text that looks like a decoding
loop. This measures what each window costs in words and gains in time, with real Whisper base
(`--model`, default $GLASSES_TEST_WHISPER or ~/.cache/glasses-assistant/whisper-base, which
../shared/models/whisper-base.sh assembles).

The speech is all the real speech in ../shared/media, cut into utterances the way the app cuts
them: the session's own Hearing (Silero VAD and the endpointer: 0.5 s of silence, 20 s at most)
over each whole file. Every utterance goes through the app's ASRStage (guard included) at every
window, one window after the other, so load from other processes falls on all alike. WER is
counted per file, its utterances' texts joined against the file's reference, so references need
no alignment to pieces:
- with a reference in refs/transcripts.tsv: JFK, both stereo channels, the English half of the
  licence reading (the tsv's text is tiny Whisper's output; the errors the tsv itself notes are
  put back to the MIT licence's words);
- without one (the German half, whose tsv text is tiny-model output with misspellings, the short
  phrases, the labelled VAD clips and the film dialogue), the full window's own transcript is the
  reference: there the full window scores 0 by construction and a short window its disagreement.
The utterances a wearer makes are short, and the real set has few: 18 generated questions
(espeak-ng, en-us and en-gb, 140/175/210 wpm) are a third set, their text the reference. Noise
and silence clips, cut in 5 s pieces without VAD, count the texts that get through the guard.

A window is adopted only if none of the three WERs is more than 1 point above the full window's.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.messages import SAMPLE_RATE
from benchmarks.machine import machine

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
DEFAULT_MODEL = "~/.cache/glasses-assistant/whisper-base"
# (window, margin in frames, loop fallback): faster-whisper's own 30 s path; windows fitted to the
# utterance with 0-3 s of silence after it; fixed minimums (grown to fit a longer utterance); each
# redoing a looping text at the full window, and the default fitted one once without that.
WINDOWS = (("full", 0, True), ("fit", 0, True), ("fit", 100, True), ("fit", 200, True), ("1000", 200, True),
           ("1500", 200, True), ("2000", 200, True), ("1500", 200, False))
GERMAN_FROM = 28.9  # s: the licence reading switches to German here (a pause; Whisper's segment edge 28.96 s)
NOISE_PIECE = 5.0  # s
QUESTIONS = ("Hey glasses, what is this?", "Hey glasses, read the sign for me.",
             "Hey glasses, how much does this cost?")
VOICES = (("en-us", 140), ("en-us", 175), ("en-us", 210), ("en-gb", 140), ("en-gb", 175), ("en-gb", 210))


@dataclass(frozen=True)
class Source:
    name: str
    path: str  # under the media folder
    channel: int | None = None  # one channel of a stereo file, or the mono mix
    span: tuple[float, float] = (0.0, float("inf"))  # the part of the file, seconds
    language: str | None = "en"  # None: detected, as with --language auto
    reference: str = ""  # key in refs/transcripts.tsv; "" means the full window's transcript


SPEECH = (
    Source("jfk", "audio/speech/jfk.flac", reference="audio/speech/jfk.flac"),
    Source("stereo left", "audio/speech/fw_stereo_diarization.wav", 0,
           reference="audio/speech/fw_stereo_diarization.wav [left channel]"),
    Source("stereo right", "audio/speech/fw_stereo_diarization.wav", 1,
           reference="audio/speech/fw_stereo_diarization.wav [right channel]"),
    Source("licence (en)", "audio/speech/fw_multilingual_en_de.mp3", span=(0.0, GERMAN_FROM),
           reference="audio/speech/fw_multilingual_en_de.mp3 [segment 1, English]"),
    Source("licence (de, auto)", "audio/speech/fw_multilingual_en_de.mp3", span=(GERMAN_FROM, float("inf")),
           language=None),
    Source("hotwords", "audio/speech/fw_hotwords.mp3"),
    Source("sb example2 (auto)", "audio/speech/sb_french_example2.flac", language=None),
    Source("sb vad valid", "audio/vad/sb_vad_valid.wav"),
    Source("sb vad train", "audio/vad/sb_vad_train.wav"),
    Source("friday dialogue", "video/mdn_friday_dialogue.mp4"),
)
NOISE = ("audio/noise/sb_noise2.wav", "audio/noise/moviepy_rain.mp3", "audio/vad/silero_test_nonspeech.opus",
         "video/moviepy_chaplin.mp4", "video/mdn_flower_silent_audio.mp4")
# The tsv's English licence text is tiny Whisper's output, and the tsv says so ("contains model
# errors, e.g. 'cell copies'; real text = MIT license"): those words are put back to the licence's.
REFERENCE_FIXES = {"audio/speech/fw_multilingual_en_de.mp3 [segment 1, English]": (
    ("a copy of the software", "a copy of this software"), ("sublicence", "sublicense"), ("cell copies", "sell copies"))}


# --- WER: pure functions -----------------------------------------------------------------------
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def spell_number(n: int) -> str:
    """An integer in words, as the references write numbers ("1961" -> "one thousand nine hundred sixty one")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + spell_number(n % 100))
    if n < 1_000_000:
        return spell_number(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + spell_number(n % 1000))
    return " ".join(_ONES[int(d)] for d in str(n))  # longer numbers (phone, codes) are read digit by digit


def words(text: str) -> list[str]:
    """Words for WER: numbers spelled out, then case, punctuation and accents dropped (as the wake
    phrase is matched: "Hey, glasses!" and "hey glasses" are the same two words)."""
    from pipelines.wake import normalise

    return normalise(re.sub(r"\d+", lambda m: f" {spell_number(int(m.group()))} ", text)).split()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, words in the reference): word-level Levenshtein."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1], len(ref)


def wer(reference: str, hypothesis: str) -> float:
    edits, n = word_errors(reference, hypothesis)
    return edits / n if n else float(bool(words(hypothesis)))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# --- media ---------------------------------------------------------------------------------------
def references(media: Path) -> dict[str, str]:
    """refs/transcripts.tsv as {key: text}, with the documented fixes applied."""
    out = {}
    for line in (media / "refs" / "transcripts.tsv").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or "\t" not in line:
            continue
        key, text = line.split("\t")[:2]
        for wrong, right in REFERENCE_FIXES.get(key, ()):
            text = text.replace(wrong, right)
        out[key] = text
    return out


def load(media: Path, source: Source) -> np.ndarray:
    from benchmarks.endpoint import load_audio

    audio = load_audio(media / source.path, source.channel)
    a, b = source.span
    return audio[int(a * SAMPLE_RATE): None if b == float("inf") else int(b * SAMPLE_RATE)]


def utterances(audio: np.ndarray) -> list:
    """The final Utterances the session's Hearing cuts from a whole file (early cuts left out)."""
    from core.clock import MediaClock
    from core.messages import AudioChunk, Utterance
    from pipelines.hearing import Hearing, HearingConfig
    from pipelines.vad import WINDOW, SileroVAD

    hearing = Hearing(HearingConfig(), SileroVAD(), MediaClock())
    out = []
    for i in range(0, len(audio), WINDOW):
        out += list(hearing.feed(AudioChunk(i / SAMPLE_RATE, audio[i:i + WINDOW])))
    out += list(hearing.finish(len(audio) / SAMPLE_RATE))
    return [m for m in out if isinstance(m, Utterance) and not m.early]


def pieces(audio: np.ndarray, seconds: float = NOISE_PIECE) -> list:
    """Fixed pieces, no VAD: the guard alone must keep noise out."""
    from core.messages import Utterance

    n = int(seconds * SAMPLE_RATE)
    return [Utterance(i / SAMPLE_RATE, min(i + n, len(audio)) / SAMPLE_RATE, 0.0, audio[i:i + n])
            for i in range(0, len(audio), n) if len(audio[i:i + n]) > SAMPLE_RATE // 2]


def window_label(window: str, margin: int, fallback: bool) -> str:
    if window == "full":
        return "full (3000)"
    label = f"fit +{margin}" if window == "fit" else f">={window} +{margin}"
    return label + ("" if fallback else ", no fallback")


def asr_stages(model, threads: int) -> dict:
    """{(window, margin, fallback, language): ASRStage} sharing one loaded WhisperModel, configured as
    the app configures it otherwise."""
    from pipelines.asr import ASRConfig, ASRStage, FasterWhisper

    out = {}
    for window, margin, fallback in WINDOWS:
        for language in ("en", None):
            config = ASRConfig(model="(loaded)", language=language, cpu_threads=threads, window=window,
                               window_margin=margin, fallback_compression=ASRConfig.fallback_compression if fallback else None)
            out[window, margin, fallback, language] = ASRStage(FasterWhisper(config, model), config)
    return out


# --- the run -----------------------------------------------------------------------------------------
@dataclass
class Item:
    """Speech whose utterances are transcribed at every window."""

    name: str
    group: str  # "real" (../shared/media) or "generated" (espeak-ng questions)
    language: str | None
    reference: str | None  # None: the full window's transcript is the reference
    utterances: list


def real_items(media: Path) -> list[Item]:
    refs = references(media)
    return [Item(s.name, "real", s.language, refs.get(s.reference) if s.reference else None, utterances(load(media, s)))
            for s in SPEECH if (media / s.path).exists()]


def generated_items() -> list[Item]:
    """Short spoken questions, the utterances a wearer makes: espeak-ng, two accents, three speeds."""
    import shutil
    import tempfile

    from core.audio import read_wav, resample
    from glasses.sample import speak_to_wav

    if not shutil.which("espeak-ng"):
        return []
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for text in QUESTIONS:
            for voice, speed in VOICES:
                samples, rate = read_wav(speak_to_wav(text, Path(tmp) / "q.wav", voice, speed))
                audio = np.concatenate([np.zeros(SAMPLE_RATE // 2, np.float32), resample(samples, rate, SAMPLE_RATE),
                                        np.zeros(SAMPLE_RATE, np.float32)])
                out.append(Item(f"{voice} {speed}: {text}", "generated", "en", text, utterances(audio)))
    return out


def run(media: Path, model_dir: Path, threads: int, repeat: int) -> dict:
    from faster_whisper import WhisperModel

    from pipelines.asr import HOP, window_frames

    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)
    stages = asr_stages(model, threads)
    items = real_items(media) + generated_items()
    noise = [(p, pieces(load(media, Source(p, p)))) for p in NOISE if (media / p).exists()]
    for w in WINDOWS:  # warm-up: the first call of each shape allocates
        stages[(*w, "en")].process(items[0].utterances[0])
    rows = {w: {"texts": {}, "seconds": {"real": [], "generated": []}, "frames": [], "noise_through": [],
                "fallbacks": 0} for w in WINDOWS}
    for item in items:
        for w in WINDOWS:
            rows[w]["texts"][item.name] = []
        for utt in item.utterances:
            for w in WINDOWS:  # interleaved: other load on the machine falls on every window alike
                times, stage = [], stages[(*w, item.language)]
                before = stage.model.fallbacks
                for _ in range(repeat):
                    tr = stage.process(utt)
                    times.append(tr.asr_s)
                rows[w]["fallbacks"] += (stage.model.fallbacks - before) // repeat  # decoding is deterministic
                rows[w]["texts"][item.name].append("" if tr.dropped else tr.text)
                rows[w]["seconds"][item.group].append(statistics.median(times))
                rows[w]["frames"].append(window_frames(len(utt.audio) // HOP, *w[:2]))
    for name, utts in noise:
        for utt in utts:
            for w in WINDOWS:
                before = stages[(*w, "en")].model.fallbacks
                tr = stages[(*w, "en")].process(utt)
                rows[w]["fallbacks"] += stages[(*w, "en")].model.fallbacks - before
                if not tr.dropped:
                    rows[w]["noise_through"].append(f"{name} @{utt.start:.0f}s: {tr.text!r}")
    return summarise(items, noise, rows)


def summarise(items: list[Item], noise, rows: dict) -> dict:
    """Per window: WER (real speech with tsv references; all real speech; generated questions), time per
    utterance, wake phrase heard; per item details."""
    from pipelines.wake import match_wake

    full = rows[WINDOWS[0]]["texts"]
    out = []
    for w, r in rows.items():
        counts = {"refs": [0, 0], "real": [0, 0], "generated": [0, 0]}
        details, woken = {}, 0
        for item in items:
            hyp = " ".join(t for t in r["texts"][item.name] if t)
            reference = item.reference if item.reference is not None else " ".join(t for t in full[item.name] if t)
            e, n = word_errors(reference, hyp)
            for key in [item.group] + (["refs"] if item.group == "real" and item.reference is not None else []):
                counts[key][0] += e
                counts[key][1] += n
            woken += item.group == "generated" and match_wake(hyp).matched
            details[item.name] = {"wer": e / n if n else None, "utterances": len(r["texts"][item.name]), "text": hyp,
                                  "reference": "given" if item.reference is not None else "full window"}
        real, gen = r["seconds"]["real"], r["seconds"]["generated"]
        out.append({"window": w[0], "margin": w[1], "fallback": w[2], "label": window_label(*w),
                    "fallbacks": r["fallbacks"], **{f"wer_{k}": (e / n if n else None) for k, (e, n) in counts.items()},
                    "words": {k: n for k, (_, n) in counts.items()},
                    "woken": woken, "questions": sum(i.group == "generated" for i in items),
                    "median_s": statistics.median(real + gen), "p95_s": percentile(real + gen, 95),
                    "median_real_s": statistics.median(real) if real else None,
                    "median_questions_s": statistics.median(gen) if gen else None,
                    "mean_frames": float(np.mean(r["frames"])), "noise_through": r["noise_through"], "items": details})
    base = out[0]
    for row in out:  # the adoption rule: no WER more than 1 point above the full window's
        row["within_1_point"] = all(row[k] is None or row[k] - base[k] <= 0.01 for k in ("wer_refs", "wer_real", "wer_generated"))
    real = [u for i in items if i.group == "real" for u in i.utterances]
    return {"rows": out, "utterances": {g: sum(len(i.utterances) for i in items if i.group == g) for g in ("real", "generated")},
            "real_speech_seconds": sum(len(u.audio) for u in real) / SAMPLE_RATE,
            "noise_pieces": sum(len(u) for _, u in noise)}


def table(report: dict) -> str:
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    lines = ["| window (frames) | WER tsv refs | WER all real | WER questions | wake heard | median s | p95 s "
             "| median s real / questions | mean frames | redone at full | noise through guard | within 1 point |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['label']} | {pct(r['wer_refs'])} | {pct(r['wer_real'])} | {pct(r['wer_generated'])} "
                     f"| {r['woken']}/{r['questions']} | {r['median_s']:.3f} | {r['p95_s']:.3f} "
                     f"| {r['median_real_s'] or 0:.3f} / {r['median_questions_s'] or 0:.3f} | {r['mean_frames']:.0f} "
                     f"| {r['fallbacks']} | {len(r['noise_through'])} | {'yes' if r['within_1_point'] else 'no'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.asr_window", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench_asr_window"))
    p.add_argument("--model", default=os.environ.get("GLASSES_TEST_WHISPER") or DEFAULT_MODEL,
                   help="a real Whisper CTranslate2 folder (default $GLASSES_TEST_WHISPER or %(default)s)")
    p.add_argument("--media", type=Path, default=MEDIA, help="the shared media folder (default ../shared/media)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1, help="runs per utterance and window; the median counts")
    a = p.parse_args(argv)
    model_dir = Path(a.model).expanduser()
    if not (model_dir / "model.bin").is_file():
        print(f"skipped: no real Whisper at {model_dir} (bash ../shared/models/whisper-base.sh {model_dir} makes one)")
        return 0
    if not (a.media / "refs" / "transcripts.tsv").is_file():
        print(f"skipped: no real speech at {a.media} (a user's clone has no ../shared/media)")
        return 0
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    report = run(a.media, model_dir, a.threads, a.repeat)
    report.update(command="python -m benchmarks.asr_window " + " ".join(argv if argv is not None else sys.argv[1:]),
                  machine=machine(), date=dt.datetime.now().isoformat(timespec="seconds"), threads=a.threads,
                  repeat=a.repeat, model=str(model_dir), wall_s=time.perf_counter() - t0,
                  load_average={"before": load_before, "after": os.getloadavg()})
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "asr_window.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"{report['command']}\n{report['machine']}, {a.threads} threads, {report['date']}; load average "
          f"{load_before[0]:.1f} before, {report['load_average']['after'][0]:.1f} after")
    print(f"{report['utterances']['real']} utterances of real speech ({report['real_speech_seconds']:.0f} s), "
          f"{report['utterances']['generated']} generated questions, {report['noise_pieces']} noise pieces\n")
    print(table(report))
    for r in report["rows"]:
        for line in r["noise_through"]:
            print(f"  {r['label']}: noise through the guard: {line}")
    print(f"\nreport: {a.out / 'asr_window.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

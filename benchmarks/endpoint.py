"""Endpointing from data: what should end a question (issue 5, step 4; issue 10, part 2).

    python -m benchmarks.endpoint [--out DIR] [--media DIR]

A short silence answers sooner but cuts a speaker off at a pause inside a sentence (a false
end); a long one never cuts but makes every answer wait. This runs the session's own VAD
(Silero, window by window) over real speech and counts both sides for two policies:

- silence alone: the Endpointer with silences 0.2 .. 1.2 s;
- smart: Smart Turn judges each pause through the session's own Hearing, for a grid of
  operating points (threshold, short and long silence; benchmarks/endpoint_smart.py).

The speech and its reference:
- the labelled clips in ../shared/media/audio/vad: their human labels (speechbrain format:
  per 2 s chunk, speech "start end" pairs relative to the chunk) give the speech segments,
  merged where they run across a chunk boundary; each segment is one utterance;
- the other speech clips in ../shared/media/audio/speech have no time labels, only texts.
  Their reference is conservative: speech regions are where Silero itself hears speech
  (the endpointer at its shortest silence), and the number of sentences comes from the
  transcript; a clip of one sentence is one utterance from its first to its last region
  (every pause inside is a pause inside the sentence), and a clip of N sentences is split
  at the pauses nearest its sentence ends where they are given, else at its N-1 longest;
- hesitant copies of those utterances: a 0.4, 0.7 or 1.0 s pause put in at a word gap
  (benchmarks/endpoint_hesitation.py), since the media hold no hesitant question.

An end is false when the speech it ends lies inside an utterance, more than TOLERANCE before
the utterance's end: the speaker was not done. The wait of a true end runs from the
utterance's end to the moment the endpointer decided. The silence is chosen on the fluent
clips as before; the smart point against that silence, on all of them.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.messages import SAMPLE_RATE

THRESHOLDS = tuple(round(0.2 + 0.1 * i, 1) for i in range(11))  # 0.2 .. 1.2 s
TOLERANCE = 0.25  # s: label edges and Silero's edges differ by about this much
MAX_FALSE_END_RATE = 0.10  # the knee: the shortest silence that cuts at most 1 utterance in 10 ...
MARGIN = 0.1  # ... and the chosen point one step longer: few utterances, read speech, no hesitations
MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
# Unlabelled clips: (file, channel or None, sentences in the reference transcript (refs/transcripts.tsv)).
# A clip of several sentences may say near which times they end: its split is then the pause
# nearest each time, not its longest pauses (a reader may pause longer inside a sentence).
SPEECH = (
    ("jfk.flac", None, 1, ()),
    ("fw_stereo_diarization.wav", 0, 1, ()),
    ("fw_stereo_diarization.wav", 1, 1, ()),
    # Two English sentences, then two German ones. Where they end ("conditions.", "software.",
    # "zu verfahren.") comes from Whisper base's word times on this clip; its longest pauses
    # would instead put a sentence end inside the second one ("... this permission notice |
    # shall be included ...") and call the real end after "conditions." a pause inside.
    ("fw_multilingual_en_de.mp3", None, 4, (22.6, 28.9, 41.1)),
    ("fw_hotwords.mp3", None, 1, ()),  # one short phrase (4 s)
    ("sb_french_example2.flac", None, 1, ()),  # one short utterance (2 s)
)


@dataclass(frozen=True)
class Clip:
    name: str
    audio: np.ndarray  # 16 kHz mono float32
    utterances: tuple[tuple[float, float], ...]  # reference (start, end), seconds
    span: tuple[float, float]  # the part of the clip the reference covers
    reference: str  # "labels" or how the reference was made
    hesitant: bool = False  # made with a pause put inside (benchmarks/endpoint_hesitation.py)


Span = tuple[float, float]


def parse_labels(data: dict, rate: int = SAMPLE_RATE, join: float = 0.02) -> tuple[list[Span], Span]:
    """Speechbrain VAD labels -> (speech segments in clip seconds, labelled span).

    Each example is one chunk of the wav (samples start..stop) with "a b c d" meaning speech
    from a to b and from c to d seconds into the chunk. A segment that ends at a chunk's edge
    and one that starts at the next chunk's edge are one segment.
    """
    segments, lo, hi = [], float("inf"), 0.0
    for ex in sorted(data.values(), key=lambda e: e["wav"]["start"]):
        offset = ex["wav"]["start"] / rate
        lo, hi = min(lo, offset), max(hi, ex["wav"]["stop"] / rate)
        values = [float(v) for v in ex.get("speech", "").split()]
        if len(values) % 2:
            raise ValueError(f"odd number of label times: {ex.get('speech')!r}")
        segments += [(offset + a, offset + b) for a, b in zip(values[::2], values[1::2])]
    merged: list[tuple[float, float]] = []
    for a, b in sorted(segments):
        if merged and a - merged[-1][1] <= join:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged, (0.0 if lo == float("inf") else lo, hi)


def split_sentences(regions: list[tuple[float, float]], sentences: int) -> list[tuple[float, float]]:
    """Speech regions -> utterances: one span, cut at the `sentences - 1` longest pauses."""
    if not regions:
        return []
    gaps = sorted(range(1, len(regions)), key=lambda i: regions[i][0] - regions[i - 1][1], reverse=True)
    cuts = sorted(gaps[: max(0, sentences - 1)])
    out, first = [], 0
    for i in cuts + [len(regions)]:
        out.append((regions[first][0], regions[i - 1][1]))
        first = i
    return out


def split_near(regions: list[tuple[float, float]], ends: tuple[float, ...]) -> list[tuple[float, float]]:
    """Speech regions -> utterances, cut at the pause nearest each of the given sentence ends."""
    if not regions:
        return []
    gaps = range(1, len(regions))
    cuts = sorted({min(gaps, key=lambda i: abs((regions[i - 1][1] + regions[i][0]) / 2 - t)) for t in ends if gaps})
    out, first = [], 0
    for i in cuts + [len(regions)]:
        out.append((regions[first][0], regions[i - 1][1]))
        first = i
    return out


def endpoint(probs: list[float], silence: float) -> list:
    """The session's Endpointer over a clip's window probabilities: its "end" events.

    Its 20 s cap on one utterance is lifted: the read licence text runs on for longer than
    that without a long pause, and a forced end there says nothing about the silence. The
    end of the file is not an endpointing decision either, so nothing is flushed there.
    """
    from pipelines.vad import WINDOW, EndpointConfig, Endpointer

    ep = Endpointer(EndpointConfig(silence=silence, max_utterance=float("inf")))
    w = WINDOW / SAMPLE_RATE
    return [e for i, p in enumerate(probs) for e in ep.update(p, i * w) if e.kind == "end"]


def score_ends(ends: list[tuple[float, float]], utterances, span=(0.0, float("inf")), tol: float = TOLERANCE) -> dict:
    """Count false ends and the waits of true ones.

    `ends`: (end of speech, decided at) per declared end. An end whose speech end lies
    inside an utterance, more than `tol` before its end, is false (the speaker was cut off).
    Any other end inside the span is true, for the last utterance that ended before it.
    """
    false, waits, cut = 0, [], set()
    for e, decided in ends:
        if not span[0] <= e <= span[1]:
            continue
        inside = [i for i, (a, b) in enumerate(utterances) if a <= e < b - tol]
        if inside:
            false += 1
            cut.add(inside[0])
            continue
        before = [b for a, b in utterances if b - tol <= e]
        if before:
            waits.append(decided - max(before))
    return {"utterances": len(utterances), "false_ends": false, "cut_utterances": len(cut), "waits": waits}


def load_audio(path: Path, channel: int | None = None) -> np.ndarray:
    """Any file PyAV reads -> 16 kHz float32; one channel of it, or the mono mix."""
    import av

    parts = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        layout = "mono" if channel is None else stream.layout.name
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=SAMPLE_RATE)
        for frame in container.decode(stream):
            parts += [f.to_ndarray() for f in resampler.resample(frame)]
        parts += [f.to_ndarray() for f in resampler.resample(None)]
    audio = np.concatenate(parts, axis=1)  # (channels, n)
    return audio[0 if channel is None else channel].astype(np.float32)


def probabilities(audio: np.ndarray) -> list[float]:
    from pipelines.vad import SileroVAD

    return SileroVAD()(audio)


def clips(media: Path) -> list[tuple[Clip, list[float]]]:
    """Every clip with its reference utterances and its Silero probabilities."""
    from pipelines.vad import WINDOW, EndpointConfig, Endpointer

    out = []
    for labels in sorted((media / "audio" / "vad").glob("*.labels.json")):
        wav = labels.with_name(labels.name.replace(".labels.json", ".wav"))
        audio = load_audio(wav)
        segments, span = parse_labels(json.loads(labels.read_text()))
        out.append((Clip(wav.name, audio, tuple(segments), span, "labels"), probabilities(audio)))
    for name, channel, sentences, ends in SPEECH:
        path = media / "audio" / "speech" / name
        if not path.exists():
            continue
        audio = load_audio(path, channel)
        probs = probabilities(audio)
        ep = Endpointer(EndpointConfig(silence=0.1, max_utterance=float("inf")))
        w = WINDOW / SAMPLE_RATE
        regions = [(e.start, e.end) for i, p in enumerate(probs) for e in ep.update(p, i * w) if e.kind == "end"]
        regions += [(e.start, e.end) for e in ep.flush(len(probs) * w)]  # speech running to the file's end
        label = name + ("" if channel is None else f" [{'left' if channel == 0 else 'right'}]")
        how = f"Silero regions, {sentences} sentence{'s' * (sentences > 1)}" + (" (ends given)" if ends else "")
        utterances = tuple(split_near(regions, ends) if ends else split_sentences(regions, sentences))
        out.append((Clip(label, audio, utterances, (0.0, len(audio) / SAMPLE_RATE), how), probs))
    return out


def score(data: list[tuple[Clip, list[float]]], ends_of) -> dict:
    """False ends and waits of one policy over the clips, in all and for the fluent and the
    hesitant ones apart; `ends_of(clip, probs)` -> [(end of speech, decided at)] per end."""
    parts = {}
    for name in ("fluent", "hesitant"):
        n = false = cut = 0
        waits: list[float] = []
        for clip, probs in data:
            if clip.hesitant == (name == "hesitant"):
                r = score_ends(ends_of(clip, probs), clip.utterances, clip.span)
                n, false, cut = n + r["utterances"], false + r["false_ends"], cut + r["cut_utterances"]
                waits += r["waits"]
        parts[name] = {"utterances": n, "false_ends": false, "cut_utterances": cut, "waits": waits,
                       "mean_wait": float(np.mean(waits)) if waits else None}
    n, waits = sum(p["utterances"] for p in parts.values()), [w for p in parts.values() for w in p.pop("waits")]
    cut = sum(p["cut_utterances"] for p in parts.values())
    return {"utterances": n, "false_ends": sum(p["false_ends"] for p in parts.values()), "cut_utterances": cut,
            "false_end_rate": cut / n if n else None,
            "mean_wait": float(np.mean(waits)) if waits else None,
            "p50_wait": float(np.median(waits)) if waits else None, **parts}


def sweep(data: list[tuple[Clip, list[float]]], thresholds=THRESHOLDS) -> list[dict]:
    """One row per silence: false-end rate (utterances cut / utterances) and the wait of true ends."""
    return [{"silence": s, **score(data, lambda clip, probs: [(e.end, e.detected_at) for e in endpoint(probs, s)])}
            for s in thresholds]


def knee(rows: list[dict], max_rate: float = MAX_FALSE_END_RATE) -> dict | None:
    """The shortest silence whose false-end rate is at most `max_rate` and stays there for
    every longer one (a lucky dip at a short silence is not a knee)."""
    ok = [r["false_end_rate"] is not None and r["false_end_rate"] <= max_rate for r in rows]
    return next((row for i, row in enumerate(rows) if all(ok[i:])), None)


def choose(rows: list[dict], max_rate: float = MAX_FALSE_END_RATE, margin: float = MARGIN) -> dict | None:
    """The knee plus `margin`: the data are a few clips of fluent speech, while a wearer
    asking a question hesitates ("what's ... this"), so the knee itself would sit right at
    the edge of the longest pauses measured inside sentences."""
    k = knee(rows, max_rate)
    if k is None:
        return None
    later = [r for r in rows if r["silence"] >= k["silence"] + margin - 1e-9]
    return later[0] if later else k


def main(argv=None) -> int:
    from benchmarks import endpoint_hesitation, endpoint_report, endpoint_smart

    p = argparse.ArgumentParser(prog="python -m benchmarks.endpoint", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench_endpoint"))
    p.add_argument("--media", type=Path, default=MEDIA, help="the shared media folder (default ../shared/media)")
    a = p.parse_args(argv)
    if not (a.media / "audio" / "vad").is_dir():
        print(f"skipped: no labelled speech at {a.media / 'audio' / 'vad'} (a user's clone has no ../shared/media)")
        return 0
    fluent = clips(a.media)
    data = fluent + endpoint_hesitation.clips(fluent)
    fluent_rows = sweep(fluent)  # the silence is chosen on fluent speech, as before
    chosen, bend = choose(fluent_rows), knee(fluent_rows)
    rows = sweep(data)
    baseline = next((r for r in rows if chosen and abs(r["silence"] - chosen["silence"]) < 1e-9), None)
    smart = endpoint_smart.run(data, baseline)  # None (and one line saying why) without the model
    a.out.mkdir(parents=True, exist_ok=True)
    chart = endpoint_report.plot(rows, baseline, smart, a.out / "endpoint_curve.png")
    report = {"command": "python -m benchmarks.endpoint " + " ".join(argv or sys.argv[1:]),
              "tolerance": TOLERANCE, "max_false_end_rate": MAX_FALSE_END_RATE,
              "clips": [{"name": c.name, "seconds": len(c.audio) / SAMPLE_RATE, "reference": c.reference,
                         "hesitant": c.hesitant, "utterances": [list(u) for u in c.utterances]} for c, _ in data],
              "silence_fluent": fluent_rows, "knee": bend["silence"] if bend else None,
              "chosen": chosen["silence"] if chosen else None, "silence": rows, "smart": smart}
    (a.out / "endpoint.json").write_text(json.dumps(report, indent=2))
    print("Silence alone, fluent speech (the silence is chosen here):")
    print(endpoint_report.silence_table(fluent_rows, chosen, sets=False))
    print(f"knee: {bend['silence']:.1f} s; chosen silence (knee + {MARGIN:g} s): {chosen['silence']:.1f} s" if chosen
          else "no silence meets the false-end bound")
    print("\nSilence alone, all clips (fluent and hesitant):")
    print(endpoint_report.silence_table(rows, baseline))
    if smart:
        print("\nSmart Turn, the points no other point beats on both counts, all clips:")
        print(endpoint_report.smart_table(smart))
        print(endpoint_report.verdict(smart, baseline))
    print(f"report: {a.out / 'endpoint.json'}" + (f"\nchart:  {chart}" if chart else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

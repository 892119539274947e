"""Endpointing from data: how much silence should end a question (issue 5, step 4).

    python -m benchmarks.endpoint [--out DIR] [--media DIR]

A short silence answers sooner but cuts a speaker off at a pause inside a sentence (a false
end); a long one never cuts but makes every answer wait. This runs the session's own VAD
(Silero, window by window) and Endpointer over real speech for silences 0.2 .. 1.2 s, and
counts both sides:

- the labelled clips in ../shared/media/audio/vad: their human labels (speechbrain format:
  per 2 s chunk, speech "start end" pairs relative to the chunk) give the speech segments,
  merged where they run across a chunk boundary; each segment is one utterance;
- the other speech clips in ../shared/media/audio/speech have no time labels, only texts.
  Their reference is conservative: speech regions are where Silero itself hears speech
  (the endpointer at its shortest silence), and the number of sentences comes from the
  transcript; a clip of one sentence is one utterance from its first to its last region
  (every pause inside is a pause inside the sentence), and a clip of N sentences is split
  at its N-1 longest pauses.

An end is false when the speech it ends lies inside an utterance, more than TOLERANCE before
the utterance's end: the speaker was not done. The wait of a true end runs from the
utterance's end to the moment the endpointer decided.
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
SPEECH = (
    ("jfk.flac", None, 1),
    ("fw_stereo_diarization.wav", 0, 1),
    ("fw_stereo_diarization.wav", 1, 1),
    ("fw_multilingual_en_de.mp3", None, 4),  # two English sentences, then two German ones
    ("fw_hotwords.mp3", None, 1),  # one short phrase (4 s)
    ("sb_french_example2.flac", None, 1),  # one short utterance (2 s)
)


@dataclass(frozen=True)
class Clip:
    name: str
    audio: np.ndarray  # 16 kHz mono float32
    utterances: tuple[tuple[float, float], ...]  # reference (start, end), seconds
    span: tuple[float, float]  # the part of the clip the reference covers
    reference: str  # "labels" or how the reference was made


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
    for name, channel, sentences in SPEECH:
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
        how = f"Silero regions, {sentences} sentence{'s' * (sentences > 1)}"
        utterances = tuple(split_sentences(regions, sentences))
        out.append((Clip(label, audio, utterances, (0.0, len(audio) / SAMPLE_RATE), how), probs))
    return out


def sweep(data: list[tuple[Clip, list[float]]], thresholds=THRESHOLDS) -> list[dict]:
    """One row per silence: false-end rate (utterances cut / utterances) and the wait of true ends."""
    rows = []
    for s in thresholds:
        n = false = cut = 0
        waits: list[float] = []
        for clip, probs in data:
            r = score_ends([(e.end, e.detected_at) for e in endpoint(probs, s)], clip.utterances, clip.span)
            n, false, cut = n + r["utterances"], false + r["false_ends"], cut + r["cut_utterances"]
            waits += r["waits"]
        rows.append({"silence": s, "utterances": n, "false_ends": false, "cut_utterances": cut,
                     "false_end_rate": cut / n if n else None,
                     "mean_wait": float(np.mean(waits)) if waits else None,
                     "p50_wait": float(np.median(waits)) if waits else None})
    return rows


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


def plot(rows: list[dict], chosen: dict | None, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    waits = [r["mean_wait"] for r in rows]
    rates = [100 * r["false_end_rate"] for r in rows]
    ax.plot(waits, rates, "o-", color="tab:blue")
    for r, x, y in zip(rows, waits, rates):
        ax.annotate(f"{r['silence']:.1f}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if chosen:
        ax.plot([chosen["mean_wait"]], [100 * chosen["false_end_rate"]], "o", ms=12, mfc="none", color="tab:red")
        ax.annotate(f"chosen: {chosen['silence']:.1f} s", (chosen["mean_wait"], 100 * chosen["false_end_rate"]),
                    textcoords="offset points", xytext=(8, 14), color="tab:red")
    ax.set_xlabel("mean wait after the end of speech, s (labels: silence threshold next to each point)")
    ax.set_ylabel("utterances cut off mid-sentence, %")
    ax.set_title(f"Endpointing: false ends vs wait ({rows[0]['utterances']} utterances)", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def table(rows: list[dict], chosen: dict | None) -> str:
    out = ["| silence s | utterances cut | false ends | false-end rate | mean wait s | p50 wait s |",
           "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        mark = " (chosen)" if chosen is r else ""
        out.append(f"| {r['silence']:.1f}{mark} | {r['cut_utterances']}/{r['utterances']} | {r['false_ends']} | "
                   f"{100 * r['false_end_rate']:.0f}% | {r['mean_wait']:.3f} | {r['p50_wait']:.3f} |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.endpoint", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/bench_endpoint"))
    p.add_argument("--media", type=Path, default=MEDIA, help="the shared media folder (default ../shared/media)")
    a = p.parse_args(argv)
    if not (a.media / "audio" / "vad").is_dir():
        print(f"skipped: no labelled speech at {a.media / 'audio' / 'vad'} (a user's clone has no ../shared/media)")
        return 0
    data = clips(a.media)
    rows = sweep(data)
    chosen, bend = choose(rows), knee(rows)
    a.out.mkdir(parents=True, exist_ok=True)
    chart = plot(rows, chosen, a.out / "endpoint_curve.png")
    report = {"command": "python -m benchmarks.endpoint " + " ".join(argv or sys.argv[1:]),
              "tolerance": TOLERANCE, "max_false_end_rate": MAX_FALSE_END_RATE,
              "clips": [{"name": c.name, "seconds": len(c.audio) / SAMPLE_RATE, "reference": c.reference,
                         "utterances": [list(u) for u in c.utterances]} for c, _ in data],
              "rows": rows, "knee": bend["silence"] if bend else None, "chosen": chosen["silence"] if chosen else None}
    (a.out / "endpoint.json").write_text(json.dumps(report, indent=2))
    print(table(rows, chosen))
    print(f"knee: {bend['silence']:.1f} s; chosen silence (knee + {MARGIN:g} s): {chosen['silence']:.1f} s" if chosen
          else "no silence meets the false-end bound")
    print(f"report: {a.out / 'endpoint.json'}" + (f"\nchart:  {chart}" if chart else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

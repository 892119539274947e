"""The latency benchmark's chart: one typical turn as a waterfall (see benchmarks/report.py)."""
from __future__ import annotations

from pathlib import Path


def waterfall(report: dict, path: Path) -> Path | None:
    """PNG of the primary configuration's typical turn: each stage as a bar on one time axis
    (0 = true end of speech), so what overlaps shows; the naive cascade below for the same question."""
    top = report["configs"].get(report.get("primary"))
    if not top or not top.get("timeline"):
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    tl, naive, fig_v = top["timeline"], top["naive_typical"], top["turns"][top["typical_turn"]]
    z = tl["speech"][1]
    fwd = tl["forwards"]
    v2v = fig_v["voice_to_voice"]
    right = max(v2v, naive["voice_to_voice"] if naive else 0, fwd[-1][1] - z if fwd else 0) + 0.6
    left = min([tl["speech"][0]] + [a for a, _ in tl.get("prepares") or []]) - z - 0.2
    # (label, [(start, end)], colour): one row each, top to bottom
    rows: list[tuple[str, list[tuple[float, float]], str]] = [
        ("question (speech)", [(tl["speech"][0] - z, 0.0)], "0.55"),
        ("hearing: VAD every 32 ms", [(left, right)], "0.92"),
        ("endpointing wait", [(0.0, tl["detected"] - z)], "0.75"),
        ("ASR" + (" (early, from the pause)" if tl.get("asr_early") else ""),
         [(tl["asr"][0] - z, tl["asr"][1] - z)], "tab:blue"),
    ]
    if tl.get("prepares"):
        rows.append(("speculative vision + prefix", [(a - z, b - z) for a, b in tl["prepares"]], "tab:brown"))
    if fwd:
        vis = tl.get("vision")
        rows.append(("VLM preprocess", [(tl["vlm_call"] - z, min(fwd[0][0], vis[0] if vis else fwd[0][0]) - z)],
                     "tab:cyan"))
        if vis:
            rows.append(("vision encoding", [(vis[0] - z, vis[1] - z)], "tab:orange"))
        rows.append(("prefill", [(max(fwd[0][0], vis[1] if vis else 0.0) - z, fwd[0][1] - z)], "tab:red"))
        rows.append((f"decode ({len(fwd) - 1} tokens)", [(a - z, b - z) for a, b in fwd[1:]], "tab:purple"))
    rows.append(("TTS (each chunk)", [(s - z, d - z) for _, s, d in tl["tts"]], "tab:green"))
    rows.append(("playback (each chunk)", [(s - z, e - z) for _, _, s, e in tl["plays"]], "tab:olive"))
    fig, ax = plt.subplots(figsize=(11, 0.42 * (len(rows) + 1) + 1.6))
    for y, (label, spans, colour) in enumerate(rows):
        edge = "white" if len(spans) > 8 else "black"  # many thin decode steps: dark edges would hide them
        for a, b in spans:
            ax.barh(y, max(b - a, 0.02), left=a, height=0.6, color=colour, edgecolor=edge, linewidth=0.3)
    labels = [r[0] for r in rows]
    if naive:  # the naive cascade for the same question: each step after the one before
        t, y = naive["endpoint_wait"], len(rows)
        ax.barh(y, t, left=0.0, height=0.6, color="0.75", edgecolor="black", linewidth=0.3)
        for key, colour in (("asr", "tab:blue"), ("vlm", "tab:purple"), ("tts", "tab:green")):
            ax.barh(y, max(naive[key], 0.02), left=t, height=0.6, color=colour, alpha=0.45, edgecolor="black",
                    linewidth=0.3)
            t += naive[key]
        labels.append("naive: ASR, whole answer, TTS")
        ax.axvline(naive["voice_to_voice"], color="0.3", lw=1.2, ls="--", zorder=0)
        ax.text(naive["voice_to_voice"], 2, f" naive first audio {naive['voice_to_voice']:.2f} s",
                color="0.3", va="center")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=1, zorder=0)
    ax.axvline(v2v, color="tab:green", lw=1.5, ls="--", zorder=0)
    ax.text(v2v, 0, f" first audio {v2v:.2f} s", color="tab:green", va="center")
    ax.set_xlim(left, right)
    ax.set_xlabel("seconds from the true end of the question")
    kind = (report.get("scenario") or {}).get("kind", "best case")
    ax.set_title(f"One typical turn ({kind}, {report['primary']}, \"{tl['question']}\"): every stage on one clock; "
                 f"pipeline overhead {fig_v['overhead'] * 1000:.0f} ms", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)

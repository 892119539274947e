"""Tables and the chart of the endpointing benchmark (benchmarks/endpoint.py)."""
from __future__ import annotations

from pathlib import Path


def _cut(r: dict, part: str | None = None) -> str:
    p = r[part] if part else r
    return f"{p['cut_utterances']}/{p['utterances']}"


def _wait(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def silence_table(rows: list[dict], marked: dict | None, sets: bool = True) -> str:
    """One row per silence; `sets`: the fluent and hesitant clips apart as well."""
    extra_head, extra_rule = (" cut, fluent | cut, hesitant |", "---:|---:|") if sets else ("", "")
    out = [f"| silence s | utterances cut |{extra_head} false ends | false-end rate | mean wait s | p50 wait s |",
           f"|---:|---:|{extra_rule}---:|---:|---:|---:|"]
    for r in rows:
        mark = " (chosen)" if marked is not None and r["silence"] == marked["silence"] else ""
        parts = f" {_cut(r, 'fluent')} | {_cut(r, 'hesitant')} |" if sets else ""
        out.append(f"| {r['silence']:.1f}{mark} | {_cut(r)} |{parts} {r['false_ends']} | "
                   f"{100 * r['false_end_rate']:.0f}% | {_wait(r['mean_wait'])} | {_wait(r['p50_wait'])} |")
    return "\n".join(out)


def _point(r: dict) -> tuple:
    return r["threshold"], r["short"], r["long"]


def smart_table(smart: dict) -> str:
    """The front of the smart sweep (and the knee and the choice, wherever they lie)."""
    marks = {}
    for name in ("knee", "chosen"):
        if smart[name]:
            marks.setdefault(_point(smart[name]), []).append(name)
    shown = {_point(r): r for r in smart["front"]}
    shown.update({_point(smart[n]): smart[n] for n in ("knee", "chosen") if smart[n]})
    out = ["| threshold | short s | long s | utterances cut | cut, fluent | cut, hesitant | false ends | "
           "false-end rate | mean wait s | mean wait, fluent | mean wait, hesitant | p50 wait s |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, r in sorted(shown.items(), key=lambda kv: kv[1]["mean_wait"]):
        mark = f" ({', '.join(marks[key])})" if key in marks else ""
        out.append(f"| {r['threshold']:.2f}{mark} | {r['short']:.1f} | {r['long']:.1f} | {_cut(r)} | "
                   f"{_cut(r, 'fluent')} | {_cut(r, 'hesitant')} | {r['false_ends']} | "
                   f"{100 * r['false_end_rate']:.0f}% | {_wait(r['mean_wait'])} | {_wait(r['fluent']['mean_wait'])} | "
                   f"{_wait(r['hesitant']['mean_wait'])} | {_wait(r['p50_wait'])} |")
    return "\n".join(out)


def verdict(smart: dict, baseline: dict) -> str:
    c, k = smart["chosen"], smart["knee"]
    lines = []
    if k:
        lines.append(f"knee: threshold {k['threshold']:.2f}, short {k['short']:.1f} s, long {k['long']:.1f} s")
    if c:
        lines.append(f"chosen (one threshold step above the knee): threshold {c['threshold']:.2f}, short {c['short']:.1f} s,"
                     f" long {c['long']:.1f} s: {_cut(c)} cut, mean wait {c['mean_wait']:.3f} s, against the"
                     f" {baseline['silence']:.1f} s silence's {_cut(baseline)} and {baseline['mean_wait']:.3f} s")
    lines.append(f"better policy: {'smart' if smart['better'] else 'silence'}")
    load = f", load average {smart['load']:.1f} on 2 cores" if smart.get("load") is not None else ""
    for threads, t in smart["cost"].items():
        cpu = f", this thread's CPU p50 {t['cpu_p50_ms']:.1f} ms" if t.get("cpu_p50_ms") is not None else ""
        lines.append(f"Smart Turn per call, {threads} thread{'s' * (int(threads) > 1)}: wall p50 {t['p50_ms']:.1f} ms, "
                     f"max {t['max_ms']:.1f} ms{cpu} (features {t['features_ms']:.1f} ms; best of 3 on "
                     f"{t['calls']} real pauses{load})")
    return "\n".join(lines)


def plot(rows: list[dict], baseline: dict | None, smart: dict | None, path: Path) -> Path | None:
    """False ends against wait: the silence curve, and the smart policy's points and front."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.8))
    waits, rates = [r["mean_wait"] for r in rows], [100 * r["false_end_rate"] for r in rows]
    ax.plot(waits, rates, "o-", color="tab:blue", label="silence alone (label: silence, s)")
    for r, x, y in zip(rows, waits, rates):
        ax.annotate(f"{r['silence']:.1f}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8,
                    color="tab:blue")
    if baseline:
        ax.plot([baseline["mean_wait"]], [100 * baseline["false_end_rate"]], "s", ms=12, mfc="none", color="tab:blue")
        ax.annotate(f"silence alone: {baseline['silence']:g} s", (baseline["mean_wait"], 100 * baseline["false_end_rate"]),
                    textcoords="offset points", xytext=(10, 10), color="tab:blue")
    if smart:
        every = smart["rows"]
        ax.plot([r["mean_wait"] for r in every], [100 * r["false_end_rate"] for r in every], ".", color="0.75",
                label="Smart Turn, every point of the grid")
        f = smart["front"]
        ax.plot([r["mean_wait"] for r in f], [100 * r["false_end_rate"] for r in f], "o-", color="tab:orange",
                label="Smart Turn, front (label: threshold/short/long)")
        for r in f:
            ax.annotate(f"{r['threshold']:g}/{r['short']:g}/{r['long']:g}", (r["mean_wait"], 100 * r["false_end_rate"]),
                        textcoords="offset points", xytext=(6, 2), fontsize=7, color="tab:orange")
        c = smart["chosen"]
        if c:
            ax.plot([c["mean_wait"]], [100 * c["false_end_rate"]], "o", ms=14, mfc="none", color="tab:red")
            ax.annotate(f"chosen:\n{c['threshold']:g} / {c['short']:g} s / {c['long']:g} s",
                        (c["mean_wait"], 100 * c["false_end_rate"]), textcoords="offset points", xytext=(-25, -62),
                        color="tab:red", arrowprops={"arrowstyle": "-", "color": "tab:red", "lw": 0.8})
    ax.set_xlabel("mean wait after the end of speech, s")
    ax.set_ylabel("utterances cut off mid-sentence, %")
    n = rows[0]["utterances"]
    ax.set_title(f"Endpointing: false ends vs wait ({n} utterances: {rows[0]['fluent']['utterances']} fluent, "
                 f"{rows[0]['hesitant']['utterances']} with a pause put in)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)

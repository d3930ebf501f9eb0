"""Plots of an experiment family: a box plot per compression factor; accuracy vs cf with CI bands."""

from __future__ import annotations

from pathlib import Path

from edgekd.distill.experiments.families import BASELINE
from edgekd.distill.experiments.report import _pair_key

def plot(analysis: list[dict], rows: list[dict], out_dir: Path) -> list[str]:
    """Box plot per method (each cf) and, with several cfs, accuracy vs cf with 95% CI bands (log x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    written = []
    cfs = sorted({r["cf"] for r in rows})
    for cf in cfs:
        methods = [e["method"] for e in analysis if e["cf"] == cf]
        data = [[r["test_acc"] for r in rows if r["cf"] == cf and r["method"] == m] for m in methods]
        fig, ax = plt.subplots(figsize=(1.2 * len(methods) + 2, 4))
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(range(1, len(methods) + 1), methods, rotation=30)
        for i, vals in enumerate(data, 1):
            ax.scatter([i] * len(vals), vals, s=12, alpha=0.6, color="k", zorder=3)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{len(data[0]) if data else 0} runs per method, cf {cf:g}×")
        fig.tight_layout()
        path = out_dir / f"box_cf{cf:g}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(str(path))
    if len(cfs) > 1:
        # Left: accuracy with its 95% CI band and every run as a dot (with 2 runs per point the t band is very wide,
        # the dots show what it rests on). Right: the paired differences to the Student (same cf and seed), the
        # quantity the tests are about.
        fig, (ax, ax_d) = plt.subplots(1, 2, figsize=(12, 4.4))
        colours = {}
        for m in dict.fromkeys(e["method"] for e in analysis):
            pts = sorted((e["cf"], e["summary"]) for e in analysis if e["method"] == m)
            xs = [p[0] for p in pts]
            line, = ax.plot(xs, [p[1]["mean"] for p in pts], marker="o", label=m)
            colours[m] = line.get_color()
            ax.fill_between(xs, [p[1]["ci_low"] for p in pts], [p[1]["ci_high"] for p in pts], alpha=0.15,
                            color=colours[m])
            runs = [(r["cf"], r["test_acc"]) for r in rows if r["method"] == m]
            ax.scatter([c for c, _ in runs], [a for _, a in runs], s=10, color=colours[m], alpha=0.7, zorder=3)
        ns = sorted({e["summary"]["n"] for e in analysis})
        n = str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
        ax.set_xscale("log")
        ax.set_xlabel("compression factor (teacher ÷ student parameters)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"mean, 95% CI band, runs as dots (n = {n} per point)", fontsize=10)
        ax.legend()
        key = lambda r: (r["cf"], *_pair_key(r))  # noqa: E731
        base = {key(r): r["test_acc"] for r in rows if r["method"] == BASELINE}
        for m in colours:
            if m == BASELINE:
                continue
            diffs = [(r["cf"], r["test_acc"] - base[key(r)]) for r in rows if r["method"] == m and key(r) in base]
            if not diffs:
                continue
            xs = sorted({c for c, _ in diffs})
            ax_d.plot(xs, [np.mean([d for c, d in diffs if c == x]) for x in xs], marker="o", color=colours[m], label=m)
            ax_d.scatter([c for c, _ in diffs], [d for _, d in diffs], s=10, color=colours[m], alpha=0.7, zorder=3)
        ax_d.axhline(0, color="k", lw=0.8)
        ax_d.set_xscale("log")
        ax_d.set_xlabel("compression factor")
        ax_d.set_ylabel("method − student, same seed (pp)")
        ax_d.set_title("paired differences to the Student (mean line, pairs as dots)", fontsize=10)
        if ax_d.lines[1:]:
            ax_d.legend()
        fig.tight_layout()
        path = out_dir / "accuracy_vs_cf.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(str(path))
    return written



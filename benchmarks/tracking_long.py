"""Merge the long-suite parts (benchmarks/tracking_long.sh) into one summary and the tables of benchmarks/tracking.md.

    python benchmarks/tracking_long.py            # reads benchmarks/tracking/long/{classical,dfe,ablation}/results.json

Pooled px = mean error over every point-frame, a lost or failed (> 5 px) one counted as a 5 px miss. Paired
comparisons use one pooled score per (face, motion) sequence: Wilcoxon signed-rank test over the sequences, with
the median difference and the number of sequences each side wins.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

GROUP_ORDER = ("rigid", "illumination", "geometry", "degraded", "combined")


def load(root: Path) -> dict:
    parts = {}
    for part in ("classical", "dfe", "ablation"):
        f = root / part / "results.json"
        if f.is_file():
            parts[part] = json.loads(f.read_text())
    for f in sorted(root.glob("matching*/results.json")):  # the matching ablation may run as several processes
        r = json.loads(f.read_text())
        if "matching" in parts:
            parts["matching"]["methods"].update(r["methods"])
        else:
            parts["matching"] = r
    return parts


def compressed_motions() -> set[str]:
    """Long-suite motions whose frames went through a lossy codec (JPEG or video), read from the suite itself."""
    from edgekd.track.groundtruth import long_motions

    return {name for name, m in long_motions().items() if m.jpeg_quality is not None or m.codec}


def compression_split(row: dict, lossy: set[str]) -> dict:
    """Mean per-sequence pooled px of a method on the lossless and on the compressed sequences."""
    seqs = row["per_sequence"]
    return {name: float(np.mean([q["pooled_px"] for q in seqs if (q["motion"] in lossy) == want]))
            for name, want in (("lossless", False), ("compressed", True))}


def paired(a: dict, b: dict, motions: set[str] | None = None) -> dict:
    """a vs b on the sequences both ran (only ``motions`` if given): median difference of pooled px, wins, Wilcoxon p."""
    from scipy.stats import wilcoxon

    key = lambda r: (r["face"], r["motion"])  # noqa: E731
    sa = {key(r): r["pooled_px"] for r in a["per_sequence"]}
    sb = {key(r): r["pooled_px"] for r in b["per_sequence"]}
    common = sorted(k for k in set(sa) & set(sb) if motions is None or k[1] in motions)
    d = np.array([sa[k] - sb[k] for k in common])
    p = float(wilcoxon(d).pvalue) if len(d) and np.any(d != 0) else 1.0
    return {"n": len(d), "median_diff_px": float(np.median(d)), "mean_diff_px": float(d.mean()),
            "a_better": int((d < 0).sum()), "b_better": int((d > 0).sum()), "wilcoxon_p": p}


def plot_error_vs_time(rows: dict, n_frames: int, path: Path) -> None:
    """Every method's pooled error per tenth of the sequence, all parts on one axis: drift shows as a rising line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for lab, r in rows.items():
        c = r["overall"].get("error_vs_time")
        if c:
            dfe = lab.startswith("dfe ")
            ax.plot((np.arange(len(c)) + 0.5) / len(c) * n_frames, c, marker="o", ms=3, lw=2.2 if dfe else 1.0,
                    ls="-" if "[chained]" not in lab else "--", label=lab.replace("dfe-encoder/", ""))
    ax.set_xlabel("frame")
    ax.set_ylabel("pooled px (a miss = 5 px)")
    ax.set_yscale("log")
    ax.set_title(f"error vs time, every long sequence ({n_frames} frames, 4 faces × 10 motions)")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="benchmarks/tracking/long")
    ap.add_argument("--dfe", default=None, help="label of the DFE row the goals are checked for (default: the best pooled DFE row)")
    a = ap.parse_args()
    root = Path(a.root)
    parts = load(root)
    if not parts:
        raise SystemExit(f"no results under {root}; run benchmarks/tracking_long.sh first")
    main_rows = {**parts.get("classical", {}).get("methods", {}), **parts.get("dfe", {}).get("methods", {})}
    ref = parts.get("classical") or parts.get("dfe") or parts["ablation"]
    groups = ref["groups"]
    motions = ref["motions"]
    out = [f"Long suite: {len(ref['images'])} test faces ({', '.join(ref['images'])}) × {len(motions)} motions × "
           f"{ref['n_frames']} frames × {ref['points_per_image']} points.", ""]
    out += ["| method | pooled px (miss = 5 px) | " + " | ".join(f"{g} pooled" for g in GROUP_ORDER if g in groups)
            + " | rigid: mean px tracked | failure rate | diverged tracks | mean frames to failure | frames/s |",
            "|---|---|" + "---|" * sum(g in groups for g in GROUP_ORDER) + "---|---|---|---|---|"]
    for lab, r in main_rows.items():
        o = r["overall"]
        out.append(f"| {lab} | {o['pooled_px']:.3f} | " + " | ".join(f"{r['per_group'][g]['pooled_px']:.3f}" for g in GROUP_ORDER if g in groups)
                   + f" | {r['per_group'].get('rigid', {}).get('mean_px', float('nan')):.3f} | {o['failure_rate']:.3f} | "
                   f"{o['divergence_rate']:.3f} | {o['mean_frames_to_failure']:.0f} | {r['fps']:.1f} |")
    out += ["", "Pooled px per motion:", "", "| method | " + " | ".join(motions) + " |", "|---" * (len(motions) + 1) + "|"]
    for lab, r in main_rows.items():
        out.append(f"| {lab} | " + " | ".join(f"{r['per_motion'][m]['pooled_px']:.3f}" for m in motions) + " |")
    summary = {"faces": ref["images"], "motions": motions, "groups": groups, "n_frames": ref["n_frames"], "rows": {}}
    for lab, r in main_rows.items():
        summary["rows"][lab] = {"overall": r["overall"], "per_group": r["per_group"], "fps": r["fps"]}
    dfe_rows = [lab for lab in main_rows if lab.startswith("dfe ")]
    classical = [lab for lab in main_rows if not lab.startswith("dfe ")]
    if dfe_rows and classical:
        best = a.dfe or min(dfe_rows, key=lambda lab: main_rows[lab]["overall"]["pooled_px"])
        out += ["", f"Paired against **{best}** (pooled px per sequence; Wilcoxon signed-rank over the sequences):", "",
                "| competitor | sequences | DFE better / worse | median difference px (DFE − competitor) | p |", "|---|---|---|---|---|"]
        summary["paired"] = {}
        for lab in classical:
            t = paired(main_rows[best], main_rows[lab])
            summary["paired"][lab] = t
            out.append(f"| {lab} | {t['n']} | {t['a_better']} / {t['b_better']} | {t['median_diff_px']:+.3f} | {t['wilcoxon_p']:.2g} |")
        lossy = compressed_motions()
        lossless = set(motions) - lossy
        out += ["", f"Split by compression: lossless frames ({', '.join(m for m in motions if m in lossless)}) vs frames through "
                    f"a lossy codec ({', '.join(m for m in motions if m in lossy)}); mean of the per-sequence pooled px "
                    f"(every sequence has the same frames and points). Paired: **{best}** − row, on the lossless sequences.", "",
                "| method | lossless pooled px | compressed pooled px | lossless: DFE better / worse | median difference px | p |",
                "|---|---|---|---|---|---|"]
        summary["by_compression"] = {"lossless": sorted(lossless), "compressed": sorted(lossy), "rows": {}}
        for lab in [best] + classical:
            split = compression_split(main_rows[lab], lossy)
            t = paired(main_rows[best], main_rows[lab], lossless) if lab != best else None
            summary["by_compression"]["rows"][lab] = {**split, "paired_lossless": t}
            cells = "— | — | —" if t is None else f"{t['a_better']} / {t['b_better']} | {t['median_diff_px']:+.3f} | {t['wilcoxon_p']:.2g}"
            out.append(f"| {lab} | {split['lossless']:.3f} | {split['compressed']:.3f} | {cells} |")
        goals = {}
        for scope, key in (("all long sequences", None), ("illumination sequences", "illumination")):
            mine = main_rows[best]["overall" if key is None else "per_group"]
            mine = mine if key is None else mine[key]
            beaten_by = [lab for lab in classical
                         if (main_rows[lab]["overall"] if key is None else main_rows[lab]["per_group"][key])["pooled_px"] < mine["pooled_px"]]
            goals[scope] = {"dfe_pooled_px": mine["pooled_px"], "classical_rows_below": beaten_by}
        rigid = main_rows[best]["per_group"].get("rigid", {})
        goals["rigid mean px ≤ 0.5"] = {"mean_px": rigid.get("mean_px"), "met": bool(rigid and rigid["mean_px"] <= 0.5)}
        summary["goals"] = {"dfe": best, **goals}
        out += ["", "Goals for " + best + ":"]
        for scope in ("all long sequences", "illumination sequences"):
            g = goals[scope]
            out.append(f"- pooled px at or below every classical row on {scope}: DFE {g['dfe_pooled_px']:.4f} — "
                       + ("met" if not g["classical_rows_below"] else "NOT met; below it: " + ", ".join(
                           f"{lab} {(main_rows[lab]['overall'] if scope.startswith('all') else main_rows[lab]['per_group']['illumination'])['pooled_px']:.4f}"
                           for lab in g["classical_rows_below"])))
        out.append(f"- mean px on the lossless rigid motions ≤ 0.5: {rigid.get('mean_px', float('nan')):.3f} — "
                   + ("met" if goals["rigid mean px ≤ 0.5"]["met"] else "NOT met"))
    abl = parts.get("ablation")
    if abl:
        out += ["", f"Ablation ({len(abl['images'])} test faces: {', '.join(abl['images'])}; {abl['n_frames']} frames; each tracker "
                    "in its usual mode — DFE group, NCC and ORB anchored):", "",
                "| encoder | pooled px | " + " | ".join(f"{g}" for g in GROUP_ORDER if g in abl["groups"]) + " | failure rate |",
                "|---|---|" + "---|" * sum(g in abl["groups"] for g in GROUP_ORDER) + "---|"]
        for lab, r in abl["methods"].items():
            out.append(f"| {lab} | {r['overall']['pooled_px']:.3f} | " + " | ".join(
                f"{r['per_group'][g]['pooled_px']:.3f}" for g in GROUP_ORDER if g in abl["groups"]) + f" | {r['overall']['failure_rate']:.3f} |")
        summary["ablation"] = {lab: {"overall": r["overall"], "per_group": r["per_group"]} for lab, r in abl["methods"].items()}
    match = parts.get("matching")
    if match:
        rows = match["methods"]
        base = next((lab for lab in rows if lab.split(" ")[1].startswith("w0/")), next(iter(rows)))  # no matching term
        lossy = compressed_motions()
        out += ["", f"Matching-term ablation ({len(match['images'])} test faces, {match['n_frames']} frames, DFE group; "
                    f"paired against **{base}** per sequence, Wilcoxon signed-rank):", "",
                "| encoder | pooled px | " + " | ".join(g for g in GROUP_ORDER if g in match["groups"]) +
                " | lossless | compressed | failure rate | better / worse | median diff px | p |",
                "|---|---|" + "---|" * sum(g in match["groups"] for g in GROUP_ORDER) + "---|---|---|---|---|---|"]
        summary["matching"] = {}
        for lab, r in rows.items():
            split = compression_split(r, lossy)
            t = paired(r, rows[base]) if lab != base else None
            cells = "— | — | —" if t is None else f"{t['a_better']} / {t['b_better']} | {t['median_diff_px']:+.3f} | {t['wilcoxon_p']:.2g}"
            out.append(f"| {lab} | {r['overall']['pooled_px']:.3f} | " + " | ".join(
                f"{r['per_group'][g]['pooled_px']:.3f}" for g in GROUP_ORDER if g in match["groups"])
                + f" | {split['lossless']:.3f} | {split['compressed']:.3f} | {r['overall']['failure_rate']:.3f} | {cells} |")
            summary["matching"][lab] = {"overall": r["overall"], "per_group": r["per_group"], **split, "paired_vs_base": t}
    plot_error_vs_time(main_rows, ref["n_frames"], root / "error_vs_time.png")
    (root / "summary.json").write_text(json.dumps(summary, indent=1))
    (root / "tables.md").write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()

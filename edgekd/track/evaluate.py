"""``edgekd track eval``: every method on the ground-truth sequences → table, JSON/CSV, plots."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgekd.track import create_tracker
from edgekd.track.groundtruth import heldout_faces, make_sequence, standard_motions
from edgekd.track.metrics import FAIL_PX, point_errors, summarize


def method_specs(methods, encoders) -> list[tuple[str, str, dict]]:
    """[(label, method, kwargs)]: one DFE entry per encoder file (fp32/INT8, per runtime)."""
    from edgekd.formats import format_of_file

    specs = []
    for m in methods:
        if m == "dfe":
            for e in encoders:
                fmt = format_of_file(e)
                p = Path(e)
                specs.append((f"dfe {p.parent.name}/{p.name} ({fmt.runtime})", "dfe", {"encoder": str(e), "threads": 1}))
        else:
            specs.append((m, m, {}))
    return specs


def evaluate(data, methods=("lk", "ncc", "sift", "orb", "dfe"), encoders=(), n_images: int = 4, n_frames: int = 45,
             motions=None, seed: int = 0, log=print) -> dict:
    """Run every method on every (held-out face × motion) sequence; errors pooled per method and motion."""
    faces = heldout_faces(data)
    # alternate colour stills and ORL faces so both kinds are in a small evaluation
    stills = [f for f in faces if f[0].startswith("stills")]
    orl = [f for f in faces if not f[0].startswith("stills")]
    picked = [x for pair in zip(stills, orl) for x in pair][:n_images] or faces[:n_images]
    suite = standard_motions()
    names = list(motions or suite)
    specs = method_specs(methods, encoders)
    errors = {label: {m: [] for m in names} for label, _, _ in specs}
    timing = {label: [0.0, 0] for label, _, _ in specs}
    example = None
    for fi, (fname, img, box, pts) in enumerate(picked):
        for mi, mname in enumerate(names):
            seq = make_sequence(img, n_frames, suite[mname], seed=seed + 100 * fi + mi)
            truth = seq.true_positions(pts)
            for label, method, kw in specs:
                tracker = create_tracker(method, **kw)
                t0 = time.perf_counter()
                tracker.init(seq.frames[0], pts)
                out = [pts.copy()]
                for f in seq.frames[1:]:
                    pos, ok = tracker.update(f)
                    out.append(np.where(ok[:, None], pos, np.nan))
                timing[label][0] += time.perf_counter() - t0
                timing[label][1] += len(seq.frames)
                pred = np.stack(out)
                errors[label][mname].append(point_errors(pred, truth)[1:])
                if mname == "heartbeat" and fi == 0:
                    example = example or {"truth": truth[:, 0, 1].tolist(), "times": seq.times.tolist(), "tracks": {}}
                    example["tracks"][label] = pred[:, 0, 1].tolist()
            log(f"  {fname} {mname}: done")
    results = {"images": [f[0] for f in picked], "motions": names, "n_frames": n_frames, "points_per_image": len(picked[0][3]),
               "methods": {}, "heartbeat_example": example}
    for label, _, _ in specs:
        per = {m: _summ(np.concatenate(errors[label][m])) for m in names}
        allerr = np.concatenate([np.concatenate(errors[label][m]) for m in names])
        results["methods"][label] = {"overall": _summ(allerr), "per_motion": per,
                                     "fps": timing[label][1] / timing[label][0] if timing[label][0] else float("nan")}
    results["int8_vs_float"] = int8_vs_float(errors, names)
    return results


def int8_vs_float(errors: dict, motions: list[str], fail_px: float = FAIL_PX) -> dict:
    """Error an INT8 encoder adds to its float twin, paired point-frame by point-frame.

    Only point-frames the float encoder tracks (not lost, error ≤ fail_px) count: where float has
    already failed there is no precision left to lose and the difference is chaos, not
    quantisation. The 95 % CI is a cluster bootstrap over sequences (point-frames within a
    sequence are correlated). The pooled difference of means is reported as well.
    """
    dfe = [lab for lab in errors if lab.startswith("dfe ")]
    floats = [lab for lab in dfe if "int8" not in lab.split(" ")[1]]
    out = {}
    for lab in dfe:
        if lab in floats or not floats:
            continue
        folder = lab.split(" ")[1].rsplit("/", 1)[0]
        ref = next((f for f in floats if f.split(" ")[1].rsplit("/", 1)[0] == folder), floats[0])
        sums, counts = [], []
        for m in motions:
            for q, r in zip(errors[lab][m], errors[ref][m]):
                ok = np.isfinite(q) & np.isfinite(r) & (r <= fail_px)
                if ok.any():
                    sums.append(float((q[ok] - r[ok]).sum()))
                    counts.append(int(ok.sum()))
        sums, counts = np.asarray(sums), np.asarray(counts)
        added = sums.sum() / counts.sum() if counts.size else float("nan")
        ci = (float("nan"), float("nan"))
        if len(sums) > 1:
            pick = np.random.default_rng(0).integers(0, len(sums), size=(2000, len(sums)))
            boot = sums[pick].sum(1) / counts[pick].sum(1)
            ci = tuple(np.percentile(boot, [2.5, 97.5]))
        pooled = [np.concatenate([np.concatenate(errors[x][m]) for m in motions]) for x in (lab, ref)]
        out[lab] = {"reference": ref, "added_px": float(added),
                    "ci95_px": [float(ci[0]), float(ci[1])], "n_point_frames": int(counts.sum()), "n_sequences": int(len(sums)),
                    "pooled_added_px": float(np.nanmean(pooled[0]) - np.nanmean(pooled[1]))}
    return out


def _summ(err: np.ndarray) -> dict:
    # summarize() takes positions; errors are already computed, so feed them as offsets from 0
    z = np.zeros(err.shape + (2,))
    z[..., 0] = err
    return summarize(z, np.zeros_like(z), skip_first=False)


def table(results: dict) -> str:
    rows = ["| method | mean px | median px | p95 px | failure rate | lost rate | frames/s |", "|---|---|---|---|---|---|---|"]
    for label, r in results["methods"].items():
        o = r["overall"]
        rows.append(f"| {label} | {o['mean_px']:.3f} | {o['median_px']:.3f} | {o['p95_px']:.3f} | {o['failure_rate']:.3f} | "
                    f"{o['lost_rate']:.3f} | {r['fps']:.1f} |")
    return "\n".join(rows)


def motion_table(results: dict, key: str = "mean_px") -> str:
    motions = results["motions"]
    rows = ["| method | " + " | ".join(motions) + " |", "|---" * (len(motions) + 1) + "|"]
    for label, r in results["methods"].items():
        rows.append(f"| {label} | " + " | ".join(f"{r['per_motion'][m][key]:.3f}" for m in motions) + " |")
    return "\n".join(rows)


def plots(results: dict, out_dir) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    paths = []
    labels = list(results["methods"])
    motions = results["motions"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    width = 0.8 / len(labels)
    x = np.arange(len(motions))
    for i, lab in enumerate(labels):
        per = results["methods"][lab]["per_motion"]
        axes[0].bar(x + i * width, [per[m]["mean_px"] for m in motions], width, label=lab)
        axes[1].bar(x + i * width, [per[m]["failure_rate"] for m in motions], width, label=lab)
    for ax, t in zip(axes, ("mean error of tracked points (px, log)", "failure rate (lost or > 5 px)")):
        ax.set_xticks(x + 0.4 - width / 2, motions, rotation=30, ha="right")
        ax.set_title(t)
    axes[0].set_yscale("log")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    paths.append(out_dir / "tracking_per_motion.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    ex = results.get("heartbeat_example")
    if ex:
        fig, ax = plt.subplots(figsize=(9, 3.5))
        t = np.asarray(ex["times"])
        ax.plot(t, np.asarray(ex["truth"]) - ex["truth"][0], "k", lw=2.5, label="truth")
        for lab, y in ex["tracks"].items():
            y = np.asarray(y, float)
            ax.plot(t, y - y[0], lw=1, label=lab)
        ax.set_xlabel("s")
        ax.set_ylabel("vertical position − start (px)")
        ax.set_title("heartbeat motion (72 bpm, 0.3 px, drift), one forehead point")
        ax.legend(fontsize=7, ncol=3)
        fig.tight_layout()
        paths.append(out_dir / "tracking_heartbeat_example.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths

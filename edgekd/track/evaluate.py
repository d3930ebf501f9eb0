"""``edgekd track eval``: every method on the ground-truth sequences → table, JSON/CSV, plots.

Two suites (:data:`edgekd.track.groundtruth.SUITES`): ``standard`` (45-frame sequences, the
original table) and ``long`` (≥ 300 frames; moving light, perspective, motion blur, JPEG and
video-codec compression). Each method runs in its usual reference mode, or in every mode
asked for (``variants``: anchored = compare with the first frame, chained = with the
previous one).

Scores per method and motion, failures counted apart from precision:
* precision — mean / median / p95 error of the point-frames still tracked;
* failure rate — point-frames lost or more than 5 px off; lost rate;
* **pooled px** — mean error over *every* point-frame, a lost or failed one counted as a
  5 px miss (so losing a point never scores better than drifting with it);
* divergence rate — tracks that fail at some frame; mean frames to failure (a track that
  never fails counts its full length); error vs time — pooled px in ten stretches.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgekd.errors import EdgekdError
from edgekd.track import create_tracker
from edgekd.track.groundtruth import LONG_GROUPS, SUITES, heldout_faces, make_sequence
from edgekd.track.metrics import FAIL_PX, capped_errors, error_vs_time, point_errors, summarize, track_failures

MODES = {"dfe": ("group", "anchored", "chained"), "lk": ("chained", "anchored"), "ncc": ("anchored", "chained"),
         "sift": ("anchored", "chained"), "orb": ("anchored", "chained")}


def method_specs(methods, encoders, variants=None) -> list[tuple[str, str, dict]]:
    """[(label, method, kwargs)]: one DFE entry per encoder file (fp32/INT8, per runtime), per reference mode asked for.

    ``variants`` None: each method in its usual mode, labelled as before ("lk", "dfe dir/file (runtime)");
    otherwise every listed mode a method has, labelled "lk [anchored]", "dfe dir/file (runtime) [chained]".
    """
    from edgekd.formats import format_of_file

    for v in variants or ():
        if not any(v in modes for modes in MODES.values()):
            raise EdgekdError(f"unknown tracking variant {v!r}", "use anchored, chained (and group for dfe)")
    specs = []
    for m in methods:
        modes = [None] if variants is None else [v for v in variants if v in MODES.get(m, ())]
        bases = []
        if m == "dfe":
            for e in encoders:
                p = Path(e)
                bases.append((f"dfe {p.parent.name}/{p.name} ({format_of_file(e).runtime})", {"encoder": str(e), "threads": 1}))
        else:
            bases.append((m, {}))
        for label, kw in bases:
            for mode in modes:
                specs.append((label if mode is None else f"{label} [{mode}]", m, kw if mode is None else {**kw, "reference": mode}))
    return specs


def evaluate(data, methods=("lk", "ncc", "sift", "orb", "dfe"), encoders=(), n_images: int = 4, n_frames: int = 45,
             motions=None, seed: int = 0, log=print, suite: str = "standard", variants=None) -> dict:
    """Run every method on every (test face × motion) sequence; errors pooled per method and motion."""
    if suite not in SUITES:
        raise EdgekdError(f"unknown tracking suite {suite!r}", f"use one of: {', '.join(SUITES)}")
    faces = heldout_faces(data)
    # alternate colour stills and ORL faces so both kinds are in a small evaluation
    stills = [f for f in faces if f[0].startswith("stills")]
    orl = [f for f in faces if not f[0].startswith("stills")]
    picked = [x for pair in zip(stills, orl) for x in pair][:n_images] or faces[:n_images]
    motion_suite = SUITES[suite]()
    names = list(motions or motion_suite)
    unknown = [m for m in names if m not in motion_suite]
    if unknown:
        raise EdgekdError(f"unknown motion(s) {', '.join(unknown)} in the {suite} suite", f"use: {', '.join(motion_suite)}")
    specs = method_specs(methods, encoders, variants)
    errors = {label: {m: [] for m in names} for label, _, _ in specs}
    timing = {label: [0.0, 0] for label, _, _ in specs}
    example = None
    for fi, (fname, img, box, pts) in enumerate(picked):
        for mi, mname in enumerate(names):
            seq = make_sequence(img, n_frames, motion_suite[mname], seed=seed + 100 * fi + mi)
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
    results = {"suite": suite, "images": [f[0] for f in picked], "motions": names, "n_frames": n_frames,
               "points_per_image": len(picked[0][3]), "fail_px": FAIL_PX, "methods": {}, "heartbeat_example": example}
    groups = {g: [m for m in ms if m in names] for g, ms in LONG_GROUPS.items()} if suite == "long" else {}
    results["groups"] = {g: ms for g, ms in groups.items() if ms}
    for label, _, _ in specs:
        per = {m: _summ(errors[label][m]) for m in names}
        results["methods"][label] = {"overall": _summ([e for m in names for e in errors[label][m]]), "per_motion": per,
                                     "per_group": {g: _summ([e for m in ms for e in errors[label][m]]) for g, ms in results["groups"].items()},
                                     "fps": timing[label][1] / timing[label][0] if timing[label][0] else float("nan"),
                                     # one pooled score per (face, motion) sequence, for paired tests between methods
                                     "per_sequence": [{"face": picked[fi][0], "motion": m, "pooled_px": float(capped_errors(e).mean())}
                                                      for m in names for fi, e in enumerate(errors[label][m])]}
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
    mode = lambda lab: lab.split(" ")[3:]  # noqa: E731 - "[anchored]" etc., empty for the usual mode
    out = {}
    for lab in dfe:
        twins = [f for f in floats if mode(f) == mode(lab)]
        if lab in floats or not twins:
            continue
        folder = lab.split(" ")[1].rsplit("/", 1)[0]
        ref = next((f for f in twins if f.split(" ")[1].rsplit("/", 1)[0] == folder), twins[0])
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


def _summ(per_sequence: list[np.ndarray]) -> dict:
    """Scores of a list of (T, P) error arrays (one per sequence; frame 0 already dropped)."""
    err = np.concatenate([e.ravel() for e in per_sequence])
    # summarize() takes positions; errors are already computed, so feed them as offsets from 0
    z = np.zeros(err.shape + (2,))
    z[..., 0] = err
    out = summarize(z, np.zeros_like(z), skip_first=False)
    out["pooled_px"] = float(capped_errors(err).mean())
    fails = [track_failures(e) for e in per_sequence]
    tracks = sum(f["tracks"] for f in fails)
    out["divergence_rate"] = sum(f["diverged"] for f in fails) / tracks if tracks else float("nan")
    out["mean_frames_to_failure"] = sum(f["mean_frames_to_failure"] * f["tracks"] for f in fails) / tracks if tracks else float("nan")
    lengths = {e.shape[0] for e in per_sequence}
    if len(lengths) == 1:
        out["error_vs_time"] = np.mean([error_vs_time(e) for e in per_sequence], axis=0).tolist()
    return out


def table(results: dict, key: str = "overall", group: str | None = None) -> str:
    """Markdown table of every method: pooled score (a miss = 5 px), precision of tracked points, failures apart."""
    rows = ["| method | pooled px (miss = 5 px) | mean px tracked | median px | p95 px | failure rate | lost rate | "
            "diverged tracks | mean frames to failure | frames/s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for label, r in results["methods"].items():
        o = r["overall"] if group is None else r["per_group"][group]
        rows.append(f"| {label} | {o.get('pooled_px', float('nan')):.3f} | {o['mean_px']:.3f} | {o['median_px']:.3f} | "
                    f"{o['p95_px']:.3f} | {o['failure_rate']:.3f} | {o['lost_rate']:.3f} | {o.get('divergence_rate', float('nan')):.3f} | "
                    f"{o.get('mean_frames_to_failure', float('nan')):.0f} | {r['fps']:.1f} |")
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
    curves = {lab: r["overall"].get("error_vs_time") for lab, r in results["methods"].items()}
    if results.get("suite") == "long" and all(curves.values()):
        fig, ax = plt.subplots(figsize=(9, 4))
        for lab, c in curves.items():
            ax.plot((np.arange(len(c)) + 0.5) / len(c) * results["n_frames"], c, marker="o", ms=3, lw=1.2, label=lab)
        ax.set_xlabel("frame")
        ax.set_ylabel("pooled px (a miss = 5 px)")
        ax.set_yscale("log")
        ax.set_title(f"error vs time, every long sequence ({results['n_frames']} frames)")
        ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        paths.append(out_dir / "tracking_error_vs_time.png")
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

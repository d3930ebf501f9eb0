"""Training curves of the DFE recipe ablation: validation tracking score and reconstruction loss per epoch.

    python benchmarks/dfe_training.py runs/dfe-ablation/paper runs/dfe-ablation/norm ...   # one folder per arm

Reads each run's history.json (written by ``edgekd track train`` after every epoch) and the settings in its
checkpoint, writes benchmarks/tracking/training.json and benchmarks/tracking/training_curve.png. The validation
score is the trainer's: pooled px (a lost or failed point-frame = 5 px) on short sequences of the validation
subjects (Biden, ORL s38–s40) — the score that picks each run's checkpoint: 16 sequences (4 lossless motions) for runs
before 2026-12-02, 24 since (the JPEG and MPEG-4 motions added), so compare arms within one output folder only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", default="benchmarks/tracking")
    a = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgekd.models.checkpoint import load_model

    arms = {}
    for run in a.runs:
        run = Path(run)
        hist = json.loads((run / "history.json").read_text())
        _, info = load_model(run / "dfe_autoencoder.pt")
        train = (info.get("meta") or {}).get("train") or {}
        keep = ("recipe", "norm_radius", "photometric", "geometric", "match_weight", "channels", "epochs", "train_crops",
                "face_width", "colour_share", "seed", "sigma")
        best = min(hist, key=lambda h: h["val_track_px"])
        arms[run.name] = {"settings": {k: train.get(k) for k in keep}, "history": hist,
                          "best_epoch": best["epoch"], "best_val_track_px": best["val_track_px"],
                          "train_seconds": sum(h["seconds"] for h in hist)}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "training.json").write_text(json.dumps(arms, indent=1))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for name, arm in arms.items():
        ep = [h["epoch"] for h in arm["history"]]
        axes[0].plot(ep, [h["val_track_px"] for h in arm["history"]], marker="o", ms=3, label=name)
        axes[1].plot(ep, [h["train_loss"] for h in arm["history"]], marker="o", ms=3, label=name)
    axes[0].set_title("validation tracking score (pooled px, a miss = 5 px)")
    axes[0].set_yscale("log")
    axes[1].set_title("training loss (reconstruction, + the matching term where on; targets differ by recipe)")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "training_curve.png", dpi=110)
    for name, arm in arms.items():
        print(f"{name}: best epoch {arm['best_epoch']} val {arm['best_val_track_px']:.3f} px, {arm['train_seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()

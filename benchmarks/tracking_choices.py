"""DFE tracker settings chosen on the VALIDATION subjects (never the test faces of benchmarks/tracking.md).

    python benchmarks/tracking_choices.py --encoder runs/dfe-ablation/robust/dfe_autoencoder.pt

Scores every setting in the grid (reference mode, search radius, sub-pixel method, loss threshold) with the
trainer's validation score — pooled px, a lost or failed point-frame counted as a 5 px miss — on the validation
faces (Biden, ORL s38–s40) under the validation motions and two long-suite motions (moving light, JPEG), and
writes benchmarks/tracking/choices.json. Settings are changed one at a time around DFETracker's defaults.
The published choices.json predates 2026-12-02, when the validation motions gained JPEG q40 and MPEG-4: a re-run now
scores those two as well (eight motions instead of six).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/faces")
    ap.add_argument("--encoder", required=True)
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--out", default="benchmarks/tracking/choices.json")
    a = ap.parse_args()
    from edgekd.track import create_tracker, track_video
    from edgekd.track.groundtruth import face_frame, long_motions, make_sequence, validation_motions
    from edgekd.track.metrics import capped_errors, point_errors
    from edgekd.track.preprocess import read_image, skin_points
    from edgekd.track.train import list_sources, split_subjects, validation_files, validation_sequences
    from edgekd.utils.io import write_json
    from edgekd.utils.system import machine_record

    _, held = split_subjects(list_sources(a.data))
    val = validation_files(held)
    seqs = validation_sequences(val, a.frames)
    extra = {k: v for k, v in long_motions().items() if k in ("moving_light", "jpeg")}
    firsts = {}
    for p in val:
        firsts.setdefault(p.parent if p.suffix == ".pgm" else p, p)
    for fi, p in enumerate(firsts.values()):
        img = read_image(p)
        if p.suffix == ".pgm":
            import cv2

            img = cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
        frame, box = face_frame(img)
        for mi, m in enumerate(extra.values()):
            seqs.append((make_sequence(frame, a.frames, m, seed=500 + 10 * fi + mi), skin_points(box)))
    base = {"reference": "group", "radius": 6, "subpixel": "gauss-newton", "lost": 0.25, "predict": True}
    # one setting changed at a time around the defaults
    grid = [base] + [{**base, k: v} for k, vs in {"reference": ["anchored"], "radius": [3], "subpixel": ["quadratic"],
                                                   "lost": [0.5, 1e9], "predict": [False]}.items() for v in vs]
    rows = []
    for kw in grid:
        t0 = time.perf_counter()
        scores = [capped_errors(point_errors(track_video(create_tracker("dfe", encoder=a.encoder, threads=1, **kw), s.frames, p),
                                             s.true_positions(p))[1:]).mean() for s, p in seqs]
        rows.append({**kw, "val_pooled_px": float(np.mean(scores)), "seconds": time.perf_counter() - t0})
        print(rows[-1], flush=True)
    best = min(rows, key=lambda r: r["val_pooled_px"])
    write_json(a.out, {"encoder": a.encoder, "sequences": len(seqs), "frames": a.frames, "validation_files": [str(p) for p in firsts.values()],
                       "grid": grid, "rows": rows, "best": best, "machine": machine_record()})
    print("best:", best)


if __name__ == "__main__":
    main()

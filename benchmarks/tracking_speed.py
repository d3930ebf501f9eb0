"""Tracker frames/s at 16 skin points, 1 thread: the heart-rate app's load, through the tracker the app uses.

    python benchmarks/tracking_speed.py --encoders edgekd/track/weights/dfe-encoder export/dfe-encoder-r3 --runs 5

Every encoder file in the given folders (plus LK and NCC for scale) tracks the same 16 points on the same
150-frame sequence (a test face under the long suite's heartbeat motion); runs are interleaved (file A, B, ...,
A, B, ...) so a machine that speeds up or slows down affects all alike. Frames/s = updates ÷ wall time of the
update loop (frame conversion, encoding, search; no video decoding). Beside each DFE file: the encoder alone on one
batch of all points' search regions (the tracker's single call per frame), as ms and as the frames/s ceiling it
sets. Reports median and min–max over the runs.
Writes benchmarks/tracking/speed.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

PATTERNS = ("model.onnx", "model.int8.onnx", "model.int8-mixed.onnx", "model.tflite", "model.int8.tflite", "model.int8-mixed.tflite")


def sequence(data: str, n_frames: int, n_points: int):
    from edgekd.track.groundtruth import heldout_faces, long_motions, make_sequence
    from edgekd.track.preprocess import skin_points

    name, img, box, _ = heldout_faces(data)[0]
    seq = make_sequence(img, n_frames, long_motions()["heartbeat"], seed=0)
    return name, seq, skin_points(box, n_points)


def time_once(make, frames, pts) -> float:
    tracker = make()
    tracker.init(frames[0], pts)
    t0 = time.perf_counter()
    for f in frames[1:]:
        tracker.update(f)
    return (len(frames) - 1) / (time.perf_counter() - t0)


def encoder_ms(path: Path, n_points: int, repeats: int = 10) -> float:
    """Median ms of one encoder call on ``n_points`` search regions of the tracker's own size."""
    from edgekd.track.backends import load_encoder
    from edgekd.track.dfe import DEFAULT_RADIUS

    enc = load_encoder(path, threads=1)
    size = enc.input_size or enc.context + 2 * DEFAULT_RADIUS
    x = np.random.default_rng(0).random((n_points, 3, size, size), dtype=np.float32)
    enc(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        enc(x)
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/faces")
    ap.add_argument("--encoders", nargs="+", default=["edgekd/track/weights/dfe-encoder"])
    ap.add_argument("--points", type=int, default=16)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/tracking/speed.json")
    a = ap.parse_args()
    from edgekd.track import create_tracker
    from edgekd.utils.io import write_json
    from edgekd.utils.system import machine_record

    name, seq, pts = sequence(a.data, a.frames, a.points)
    makers = {"lk": lambda: create_tracker("lk"), "ncc": lambda: create_tracker("ncc")}
    paths = {}
    for folder in a.encoders:
        for f in PATTERNS:
            p = Path(folder) / f
            if p.is_file():
                paths[f"dfe {p.parent.name}/{p.name}"] = p
                makers[f"dfe {p.parent.name}/{p.name}"] = lambda p=p: create_tracker("dfe", encoder=str(p), threads=1)
    for make in makers.values():  # warm-up: load, first allocation
        time_once(make, seq.frames[:5], pts)
    fps = {k: [] for k in makers}
    enc_ms = {k: [] for k in paths}
    for _ in range(a.runs):
        for k, make in makers.items():
            fps[k].append(time_once(make, seq.frames, pts))
            if k in paths:
                enc_ms[k].append(encoder_ms(paths[k], a.points))
    rows = {k: {"median_fps": float(np.median(v)), "min_fps": float(np.min(v)), "max_fps": float(np.max(v)), "runs": v}
            for k, v in fps.items()}
    for k, v in enc_ms.items():
        rows[k]["encoder_ms_median"], rows[k]["encoder_ms_runs"] = float(np.median(v)), v
    write_json(a.out, {"face": name, "points": a.points, "frames": a.frames, "runs": a.runs, "threads": 1,
                       "machine": machine_record(), "trackers": rows})
    print(f"| tracker ({a.points} points, 1 thread) | frames/s median | min–max (N = {a.runs}) | encoder alone, ms per frame "
          "| frames/s the encoder allows |\n|---|---|---|---|---|")
    for k, r in rows.items():
        e = r.get("encoder_ms_median")
        tail = f"{e:.1f} | {1000 / e:.1f}" if e else "— | —"
        print(f"| {k} | {r['median_fps']:.1f} | {r['min_fps']:.1f}–{r['max_fps']:.1f} | {tail} |")


if __name__ == "__main__":
    main()

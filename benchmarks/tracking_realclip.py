"""Rough check on a real talking-face clip: tracks vs automatic dlib landmarks.

    PYTHONPATH=. python benchmarks/tracking_realclip.py --data ../shared/data/face-video

The dlib landmarks of obama2s.mp4 are found automatically (not by people; 13 of 60
frames are NaN), so they are a rough reference only: landmark jitter of ~1–2 px is part
of the distance. Frames are scaled so the face is ~160 px wide (the DFE training scale).
Writes benchmarks/tracking/realclip.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/face-video")
    ap.add_argument("--encoder", default="edgekd/track/weights/dfe-encoder/model.onnx")
    ap.add_argument("--out", default="benchmarks/tracking/realclip.json")
    # frames 0–21 are a cross-fade (mean |frame difference| ~7 grey levels, < 1.7 afterwards)
    ap.add_argument("--start", type=int, default=22)
    a = ap.parse_args()
    import cv2

    from edgekd.track import create_tracker
    from edgekd.track.groundtruth import load_dlib_landmarks, read_video

    frames, fps = read_video(Path(a.data) / "obama2s.mp4")
    lm = load_dlib_landmarks(Path(a.data) / "obama2s_dlib68.npy")
    valid = np.isfinite(lm).all(axis=(1, 2))
    t0 = int(np.flatnonzero(valid & (np.arange(len(valid)) >= a.start))[0])
    face_w = np.ptp(lm[t0, 0:17, 0])
    s = 160.0 / face_w
    frames = [cv2.resize(f, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) for f in frames[t0:]]
    lm, valid = lm[t0:] * s, valid[t0:]
    idx = [27, 28, 29, 30, 31, 35, 36, 39, 42, 45, 48, 54]  # nose, eye corners, mouth corners
    pts = lm[0, idx]
    out = {"clip": "obama2s.mp4", "start_frame": t0, "frames": len(frames), "scale": s, "landmarks": idx, "methods": {}}
    for method in ("lk", "ncc", "sift", "orb", "dfe"):
        tr = create_tracker(method, **({"encoder": a.encoder} if method == "dfe" else {}))
        tr.init(frames[0], pts)
        tracks = [pts.copy()]
        t = time.perf_counter()
        for f in frames[1:]:
            p, ok = tr.update(f)
            tracks.append(np.where(ok[:, None], p, np.nan))
        dt = time.perf_counter() - t
        tracks = np.stack(tracks)
        d = np.linalg.norm(tracks - lm[:, idx], axis=-1)[valid]
        lost = ~np.isfinite(d)
        out["methods"][method] = {
            "median_px_vs_dlib": float(np.nanmedian(d)), "mean_px_vs_dlib": float(np.nanmean(d)),
            "lost_rate": float(lost.mean()), "fps": (len(frames) - 1) / dt,
        }
        print(method, out["methods"][method])
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

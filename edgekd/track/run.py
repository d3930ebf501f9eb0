"""``edgekd track VIDEO``: track points through a real video, write CSV (and an overlay video)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

from edgekd.errors import EdgekdError
from edgekd.track import create_tracker
from edgekd.track.groundtruth import read_video
from edgekd.track.preprocess import cv2_module, detect_faces, skin_points

from edgekd.track.weights import SHIPPED_ENCODER_DIR

DEFAULT_ENCODERS = (SHIPPED_ENCODER_DIR / "model.onnx",)


def parse_points(specs) -> np.ndarray | str:
    """["x,y", "x,y y,x"...] → (P, 2) floats; ["auto"] → "auto" (skin points of the largest face)."""
    tokens = [t for s in (specs or []) for t in str(s).replace(";", " ").split()]
    if tokens == ["auto"]:
        return "auto"
    if not tokens:
        raise EdgekdError("no points given", "pass --points x,y (repeatable) or --points auto")
    pts = []
    for t in tokens:
        try:
            x, y = (float(v) for v in t.split(","))
        except ValueError:
            raise EdgekdError(f"cannot read point {t!r}", "write points as x,y e.g. --points 120.5,80") from None
        pts.append((x, y))
    return np.array(pts, dtype=np.float64)


def default_encoder() -> str | None:
    return next((str(p) for p in DEFAULT_ENCODERS if Path(p).is_file()), None)


def track_file(video, points, method: str = "dfe", encoder=None, out_csv="tracks.csv", overlay=None,
               max_frames: int | None = None, threads: int | None = None) -> dict:
    frames, fps = read_video(video, max_frames)
    pts = parse_points(points) if not isinstance(points, np.ndarray) else points
    if isinstance(pts, str):
        boxes = detect_faces(frames[0])
        if len(boxes) == 0:
            raise EdgekdError(f"--points auto: no face found in the first frame of {video}", "give the points with --points x,y")
        pts = skin_points(boxes[0])
        auto_face = [int(v) for v in boxes[0]]
    else:
        auto_face = None
    kw = {}
    if method == "dfe":
        kw = {"encoder": encoder or default_encoder(), "threads": threads}
    tracker = create_tracker(method, **kw)
    tracker.init(frames[0], pts)
    tracks = [pts.copy()]
    oks = [np.ones(len(pts), bool)]
    t0 = time.perf_counter()
    for f in frames[1:]:
        pos, ok = tracker.update(f)
        tracks.append(np.where(ok[:, None], pos, np.nan))
        oks.append(ok)
    seconds = time.perf_counter() - t0
    tracks, oks = np.stack(tracks), np.stack(oks)
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with open(out_csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["frame", "time_s", "point", "x", "y", "ok"])
        for t in range(len(tracks)):
            for p in range(tracks.shape[1]):
                x, y = tracks[t, p]
                w.writerow([t, f"{t / fps:.4f}", p, "" if not oks[t, p] else f"{x:.3f}", "" if not oks[t, p] else f"{y:.3f}", int(oks[t, p])])
    if overlay:
        write_overlay(overlay, frames, tracks, fps)
    lost_at = {int(p): int(np.argmin(oks[:, p])) for p in range(oks.shape[1]) if not oks[-1, p]}
    return {"frames": len(frames), "points": int(tracks.shape[1]), "fps_video": fps,
            "fps_tracking": (len(frames) - 1) / seconds if seconds > 0 else float("inf"),
            "lost": lost_at, "auto_face": auto_face, "csv": str(out_csv), "overlay": str(overlay) if overlay else None, "tracks": tracks}


def write_overlay(path, frames, tracks, fps: float) -> None:
    cv2 = cv2_module()
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise EdgekdError(f"cannot write overlay video {path}", "use an .mp4 path in a writable folder")
    for t, f in enumerate(frames):
        img = f.copy()
        for p, (x, y) in enumerate(tracks[t]):
            if np.isfinite(x):
                cv2.circle(img, (int(round(x)), int(round(y))), 3, (0, 255, 0), -1)
                cv2.putText(img, str(p), (int(x) + 4, int(y) - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 255, 0), 1)
        writer.write(img)
    writer.release()

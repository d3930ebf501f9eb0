"""Skin-feature tracking: DFE (deep feature encodings) and classical baselines.

Streaming interface (used by the heart-rate line)::

    from edgekd.track import create_tracker, track_video
    tracker = create_tracker("dfe", encoder=SHIPPED_ENCODER_DIR / "model.int8.onnx")  # edgekd.track.weights
    tracker.init(first_frame_bgr, points_xy)          # (P, 2) float x, y
    positions, ok = tracker.update(next_frame_bgr)    # (P, 2) float, (P,) bool
    tracks = track_video(tracker, frames, points)     # (T, P, 2), NaN where lost

A lost point stays lost: ``ok`` False and NaN position from then on, never a guess.
Everything here is numpy + OpenCV; DFE needs an encoder backend (torch, ONNX Runtime or
LiteRT, picked by the encoder file's type).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from edgekd.errors import EdgekdError

METHODS = ("dfe", "lk", "sift", "orb", "ncc")
UNAVAILABLE = {
    "surf": "SURF is patented and missing from every OpenCV build on the package registries (no cv2.xfeatures2d)",
}


def create_tracker(method: str, **kw):
    """``dfe`` (needs ``encoder=``: a .pt/.onnx/.tflite path, an nn.Module or a backend), ``lk``, ``sift``, ``orb``, ``ncc``."""
    m = str(method).lower()
    if m in UNAVAILABLE:
        raise EdgekdError(f"{m} is unavailable: {UNAVAILABLE[m]}", f"use one of: {', '.join(METHODS)}")
    if m == "dfe":
        if kw.get("encoder") is None:
            raise EdgekdError("the dfe tracker needs an encoder", "pass --encoder PATH (.pt, .onnx or .tflite); edgekd ships one: "
                              "edgekd.track.weights.SHIPPED_ENCODER_DIR / 'model.onnx'")
        from edgekd.track.dfe import DFETracker

        return DFETracker(**kw)
    kw.pop("encoder", None)
    kw.pop("threads", None)
    from edgekd.track import baselines

    if m == "lk":
        return baselines.LKTracker(**kw)
    if m == "ncc":
        return baselines.NCCTracker(**kw)
    if m in ("sift", "orb"):
        return baselines.FeatureTracker(m, **kw)
    raise EdgekdError(f"unknown tracking method {method!r}", f"use one of: {', '.join(METHODS)}")


def track_video(tracker, frames: Iterable[np.ndarray], points) -> np.ndarray:
    """Run a tracker over frames; returns (T, P, 2) positions with NaN where lost."""
    it = iter(frames)
    try:
        first = next(it)
    except StopIteration:
        raise EdgekdError("no frames to track", "the video is empty or unreadable") from None
    tracker.init(first, points)
    out = [np.asarray(points, dtype=np.float64).reshape(-1, 2).copy()]
    for frame in it:
        pos, ok = tracker.update(frame)
        pos = np.asarray(pos, dtype=np.float64).copy()
        pos[~np.asarray(ok, bool)] = np.nan
        out.append(pos)
    return np.stack(out)


__all__ = ["METHODS", "UNAVAILABLE", "create_tracker", "track_video"]

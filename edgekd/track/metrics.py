"""Tracking error against exact ground truth."""

from __future__ import annotations

import numpy as np

FAIL_PX = 5.0


def point_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Euclidean error per frame and point (T, P); NaN where the tracker reported the point lost."""
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    if pred.shape != true.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth {true.shape}")
    return np.linalg.norm(pred - true, axis=-1)


def summarize(pred: np.ndarray, true: np.ndarray, fail_px: float = FAIL_PX, skip_first: bool = True) -> dict:
    """mean / median / p95 error over tracked points, failure rate (lost or error > fail_px), lost rate.

    Frame 0 is the initialisation (error 0 by construction) and is skipped by default.
    """
    err = point_errors(pred, true)
    if skip_first:
        err = err[1:]
    lost = ~np.isfinite(err)
    tracked = err[~lost]
    n = err.size
    return {
        "n": int(n),
        "mean_px": float(tracked.mean()) if tracked.size else float("nan"),
        "median_px": float(np.median(tracked)) if tracked.size else float("nan"),
        "p95_px": float(np.percentile(tracked, 95)) if tracked.size else float("nan"),
        "failure_rate": float((lost | (np.nan_to_num(err, nan=np.inf) > fail_px)).sum() / n) if n else float("nan"),
        "lost_rate": float(lost.sum() / n) if n else float("nan"),
    }

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


def capped_errors(err: np.ndarray, fail_px: float = FAIL_PX) -> np.ndarray:
    """Errors with a lost (NaN) or failed (> fail_px) point-frame counted as a miss of ``fail_px``.

    Its mean is the pooled score in which losing a point can never look better than drifting with it.
    """
    e = np.asarray(err, float)
    return np.where(np.isfinite(e), np.minimum(e, fail_px), fail_px)


def track_failures(err: np.ndarray, fail_px: float = FAIL_PX) -> dict:
    """Per-track failure statistics of (T, P) errors (frame 0 excluded by the caller).

    A track *diverges* when it is lost or its error exceeds ``fail_px`` at any frame; its
    time to failure is the first such frame (1-based). ``mean_frames_to_failure`` is the
    restricted mean (a track that never fails counts its full length), so it is defined
    even when few tracks fail.
    """
    e = np.asarray(err, float)
    bad = ~np.isfinite(e) | (np.nan_to_num(e, nan=np.inf) > fail_px)
    failed = bad.any(0)
    first = np.where(failed, bad.argmax(0) + 1, e.shape[0])
    return {"tracks": int(e.shape[1]), "diverged": int(failed.sum()),
            "divergence_rate": float(failed.mean()) if e.shape[1] else float("nan"),
            "mean_frames_to_failure": float(first.mean()) if e.shape[1] else float("nan"),
            "median_frames_to_failure_of_diverged": float(np.median(first[failed])) if failed.any() else None}


def error_vs_time(err: np.ndarray, bins: int = 10, fail_px: float = FAIL_PX) -> list[float]:
    """Capped mean error in ``bins`` equal stretches of the sequence (T, P): drift shows as a rising curve."""
    c = capped_errors(err, fail_px)
    return [float(chunk.mean()) for chunk in np.array_split(c, bins, axis=0) if chunk.size]

"""Latency statistics. Pure numpy so the device side needs nothing else."""

from __future__ import annotations

import numpy as np

PERCENTILES = (50, 90, 99)


def summarize(latencies_ms, batch: int = 1) -> dict:
    """p50/p90/p99, mean ± sd, min/max and throughput of per-call latencies in milliseconds.

    Percentiles use linear interpolation (numpy's default), so p99 of fewer than 100
    samples is an interpolation between the two slowest calls, not an observed call.
    Throughput is ``batch`` items per mean latency: single-stream, not a concurrent load.
    """
    x = np.asarray(latencies_ms, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no latencies to summarise")
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError("latencies must be finite and non-negative")
    mean = float(x.mean())
    out = {
        "n": int(x.size),
        "mean_ms": mean,
        # Sample sd (ddof=1): the spread a repeated run would see; 0 for a single call.
        "sd_ms": float(x.std(ddof=1)) if x.size > 1 else 0.0,
        "min_ms": float(x.min()),
        "max_ms": float(x.max()),
        "throughput_per_s": (batch * 1000.0 / mean) if mean > 0 else float("inf"),
    }
    for p, v in zip(PERCENTILES, np.percentile(x, PERCENTILES)):
        out[f"p{p}_ms"] = float(v)
    return out

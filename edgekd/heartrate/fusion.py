"""One number per window from the motion (iBCG) and colour (rPPG) estimates."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

# A window's estimate passes when its spectral SNR reaches its source's threshold. Calibrated
# (benchmarks/heartrate_eval.md, "The gate") on synthetic face videos with and without a pulse
# and on the real head-motion trajectories, never on the forehead videos: the lowest threshold
# with ≤ 1 % of no-pulse windows called good and no good window more than 5 bpm off, but not
# below the largest SNR any no-pulse window reached (iBCG 1.37 dB, rPPG 1.85 dB), to 0.5 dB.
DEFAULT_MIN_SNR_DB = 1.5  # iBCG (head motion)
DEFAULT_MIN_SNR_DB_RPPG = 2.0  # rPPG (skin colour)
AGREE_BPM = 6.0
# A window is only called good once its estimate has held: this many consecutive windows (1 s apart by
# default) passing the SNR threshold with rates within AGREE_BPM of each other. A chance peak in noise
# rarely survives three looks; a pulse does (benchmarks/heartrate_eval.md).
HOLD_WINDOWS = 3


@dataclass
class WindowResult:
    t_start: float
    t_end: float
    bpm: float  # NaN when no estimate is possible
    snr_db: float
    quality: str  # "good" or "low"
    source: str  # "ibcg", "rppg", "ibcg+rppg" (agreeing), "ibcg≠rppg" (both passed, disagreeing: low) or "none"
    bpm_ibcg: float = math.nan
    snr_ibcg: float = -math.inf
    bpm_ibcg_intervals: float = math.nan
    bpm_rppg: float = math.nan
    snr_rppg: float = -math.inf
    flags: list[str] = field(default_factory=list)
    head_speed: float = math.nan  # region heights/s (ibcg.head_speed), reported
    motion_px: float = math.nan  # iBCG's in-band head motion, px RMS (ibcg.MotionGate)
    rigidity: float = math.nan  # upper and lower face moving alike in the band, 0–1 (ibcg.rigidity)
    slope_ratio: float = math.nan  # power just below the iBCG rate over the rate's (ibcg.slope_ratio)
    passes: bool = False  # this window alone reaches the SNR threshold (before the hold rule)

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def fuse(
    bpm_ibcg: float,
    snr_ibcg: float,
    bpm_rppg: float,
    snr_rppg: float,
    min_snr_db: float = DEFAULT_MIN_SNR_DB,
    min_snr_db_rppg: float | None = None,
) -> tuple[float, float, str, str]:
    """(bpm, snr_db, source, quality) from the two estimates and their quality indices.

    Both good and agreeing → SNR-weighted average (linear power ratio as weight). Both
    good but disagreeing → the higher-SNR number, called "low" with source "ibcg≠rppg": two
    independent measurements of one heart that differ by more than AGREE_BPM mean at least one
    of them is wrong (head motion passing for a heartbeat, a lighting flicker passing for a
    pulse), and nothing in the window says which. One good → that one. None good → the
    higher-SNR number is still reported, flagged "low", so a user never reads it as a
    confident rate.
    """
    candidates = [
        (b, s, name)
        for b, s, name in ((bpm_ibcg, snr_ibcg, "ibcg"), (bpm_rppg, snr_rppg, "rppg"))
        if math.isfinite(b) and math.isfinite(s)
    ]
    if not candidates:
        return math.nan, -math.inf, "none", "low"
    threshold = {"ibcg": min_snr_db, "rppg": min_snr_db if min_snr_db_rppg is None else min_snr_db_rppg}
    good = [c for c in candidates if c[1] >= threshold[c[2]]]
    if len(good) == 2 and abs(good[0][0] - good[1][0]) <= AGREE_BPM:
        w = [10 ** (c[1] / 10) for c in good]
        bpm = (w[0] * good[0][0] + w[1] * good[1][0]) / (w[0] + w[1])
        return bpm, max(c[1] for c in good), "ibcg+rppg", "good"
    if len(good) == 2:
        bpm, snr, _ = max(good, key=lambda c: c[1])
        return bpm, snr, "ibcg≠rppg", "low"
    pool = good or candidates
    bpm, snr, name = max(pool, key=lambda c: c[1])
    return bpm, snr, name, "good" if good else "low"


def hold(results: list[WindowResult], new: WindowResult, n: int = HOLD_WINDOWS, agree_bpm: float = AGREE_BPM) -> WindowResult:
    """``new`` (whose ``quality`` is the SNR gate's verdict) stays good only if the ``n − 1`` windows before it passed
    too and all ``n`` rates agree within ``agree_bpm``; otherwise it is reported ``low`` with a flag saying why."""
    new.passes = new.quality == "good"
    if not new.passes or n <= 1:
        return new
    run = results[-(n - 1):] if n > 1 else []
    if len(run) < n - 1 or not all(r.passes for r in run) or \
            max(abs(r.bpm - new.bpm) for r in run) > agree_bpm:
        new.quality = "low"
        new.flags = [*new.flags, f"waiting for {n} agreeing windows in a row"]
    return new

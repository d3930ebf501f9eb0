"""One number per window from the motion (iBCG) and colour (rPPG) estimates."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

# A window's estimate is "good" when its spectral SNR reaches this. Measured on pure
# noise (10 s windows, 15–30 frames/s, band 0.7–3.5 Hz) the SNR of the best peak stays
# below about +1.7 dB (99th percentile ≈ +1 dB), so +2 dB rejects noise; a clean pulse
# with a harmonic scores about +10 dB.
DEFAULT_MIN_SNR_DB = 2.0
DEFAULT_MIN_SNR_DB_RPPG = 2.0  # the colour estimate's own threshold (see benchmarks/heartrate.md, calibration)
AGREE_BPM = 6.0


@dataclass
class WindowResult:
    t_start: float
    t_end: float
    bpm: float  # NaN when no estimate is possible
    snr_db: float
    quality: str  # "good" or "low"
    source: str  # "ibcg", "rppg", "ibcg+rppg" or "none"
    bpm_ibcg: float = math.nan
    snr_ibcg: float = -math.inf
    bpm_ibcg_intervals: float = math.nan
    bpm_rppg: float = math.nan
    snr_rppg: float = -math.inf
    flags: list[str] = field(default_factory=list)

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
    good but disagreeing → the higher SNR wins. One good → that one. None good → the
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
    pool = good or candidates
    bpm, snr, name = max(pool, key=lambda c: c[1])
    return bpm, snr, name, "good" if good else "low"

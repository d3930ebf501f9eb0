"""Beat-to-beat intervals and heart-rate variability from a pulse signal, with abstention. numpy only.

Input is a colour pulse sampled at irregular times, as a camera gives it (a fingertip on a phone
camera, or the skin of a face): per-frame channel means with each frame's capture time.

1. Every channel that is not clipped is put on a uniform 100 Hz grid (linear interpolation;
   gaps longer than ``MAX_GAP_S`` are marked), band-passed, and the channel with the strongest
   spectral peak (SNR) is kept.
2. Beats: the steepest rise of blood volume, i.e. the fastest fall of the light the skin passes
   back (the maximum of −dx/dt, refined by a parabola), at least 0.6 expected periods apart.
   That fiducial is sharper than the pulse's top, which the dicrotic wave blurs.
3. Intervals: an interval that differs by more than ``MAX_LOCAL_DEVIATION`` from the median of its
   neighbours, falls outside 0.3–2.0 s, or spans a gap, is an artefact: it is dropped, never
   corrected or interpolated. RMSSD uses only successive differences of two kept intervals.
4. The gate: HRV is reported as ``good`` only when the pulse is clear (SNR ≥ ``MIN_SNR_DB``) and at
   least ``MIN_VALID_FRACTION`` of the intervals were kept; otherwise ``low`` with the reason, and
   a caller should show no number (the thresholds and how they were chosen: benchmarks/hrv.md).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekd.errors import EdgekdError
from edgekd.heartrate.signal import DEFAULT_BAND_HZ, bandpass, beat_times, spectral_rate

UNIFORM_HZ = 100.0
PULSE_BAND_HZ = (0.5, 5.0)  # the pulse and its first harmonic; chosen on the development recordings (benchmarks/hrv.md)
MAX_GAP_S = 0.25  # a camera that drops frames for longer than this leaves a hole, not a line
CLIPPED_FRACTION = 0.05  # a channel at 0 or 255 this often carries no pulse
MAX_LOCAL_DEVIATION = 0.2  # Malik's rule: ±20 % of the local median interval
IBI_RANGE_S = (0.3, 2.0)  # 30–200 bpm
# The gate (chosen on the development recordings, benchmarks/hrv.md).
MIN_SNR_DB = -3.0
MIN_VALID_FRACTION = 0.8


@dataclass
class HRVResult:
    quality: str  # good | low
    reasons: list[str]
    channel: str
    snr_db: float
    bpm: float  # from the median kept interval
    beats_s: np.ndarray = field(repr=False)
    ibi_ms: np.ndarray = field(repr=False)  # interval k lies between beats k and k + 1
    valid: np.ndarray = field(repr=False)
    rmssd_ms: float = float("nan")
    sdnn_ms: float = float("nan")

    @property
    def valid_fraction(self) -> float:
        return float(self.valid.mean()) if len(self.valid) else 0.0

    def to_dict(self) -> dict:
        good = self.quality == "good"
        return {"quality": self.quality, "reasons": self.reasons, "channel": self.channel,
                "snr_db": round(self.snr_db, 2), "bpm": round(self.bpm, 2) if good else None,
                "rmssd_ms": round(self.rmssd_ms, 1) if good else None, "sdnn_ms": round(self.sdnn_ms, 1) if good else None,
                "beats": len(self.beats_s), "intervals": len(self.ibi_ms), "valid_fraction": round(self.valid_fraction, 3),
                "ibi_ms": [round(float(v), 1) for v in self.ibi_ms], "valid": [bool(v) for v in self.valid]}


def read_ppg_csv(path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(capture times in s, {channel: values}) from a CSV with a ``time`` column in ms and one or more channels."""
    p = Path(path)
    if not p.is_file():
        raise EdgekdError(f"pulse file not found: {p}", "give a CSV with a time column (ms) and channel columns, e.g. time,R,G,B")
    try:
        with p.open(newline="") as f:
            rows = list(csv.reader(f))
        header = [h.strip() for h in rows[0]]
        values = np.array([[float(v) for v in r] for r in rows[1:] if r], dtype=np.float64)
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise EdgekdError(f"{p} is not a numeric CSV with a header ({type(exc).__name__}: {exc})",
                          "expected a header like time,R,G,B and one row per frame") from None
    if "time" not in header or len(header) < 2 or values.ndim != 2 or values.shape[1] != len(header):
        raise EdgekdError(f"{p} needs a 'time' column (ms) and at least one channel column, got {header}",
                          "expected a header like time,R,G,B")
    if not np.isfinite(values).all():
        raise EdgekdError(f"{p} contains NaN or infinite values", "remove or fix those rows")
    t = values[:, header.index("time")] / 1000.0
    if len(t) < 2 or np.any(np.diff(t) <= 0):
        raise EdgekdError(f"{p}: capture times must increase", "sort the rows by time; drop duplicate frames")
    return t, {h: values[:, i] for i, h in enumerate(header) if h != "time"}


def read_rr(path) -> np.ndarray:
    """RR intervals in ms from a text file (whitespace or comma separated), as chest straps export them."""
    p = Path(path)
    try:
        rr = np.array(p.read_text().replace(",", " ").split(), dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise EdgekdError(f"cannot read RR intervals from {p} ({type(exc).__name__})",
                          "give a text file of RR intervals in ms, separated by spaces or newlines") from None
    if len(rr) < 2 or not np.isfinite(rr).all() or (rr <= 0).any():
        raise EdgekdError(f"{p} holds no usable RR intervals", "expected positive numbers in ms")
    return rr


def to_uniform(t_s: np.ndarray, x: np.ndarray, fs: float = UNIFORM_HZ,
               interpolation: str = "linear") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grid times, values, in_gap): the signal on a uniform grid from t_s[0].

    Linear by default: the band-pass smooths the kinks at the frames, and on the development
    recordings cubic Hermite interpolation timed beats worse (benchmarks/hrv.md).
    """
    grid = np.arange(t_s[0], t_s[-1], 1.0 / fs)
    if interpolation == "linear":
        values = np.interp(grid, t_s, x)
    elif interpolation == "cubic":
        slopes = np.gradient(x, t_s)
        i = np.clip(np.searchsorted(t_s, grid, side="right") - 1, 0, len(t_s) - 2)
        h = t_s[i + 1] - t_s[i]
        s = (grid - t_s[i]) / h
        values = ((2 * s**3 - 3 * s**2 + 1) * x[i] + (s**3 - 2 * s**2 + s) * h * slopes[i]
                  + (-2 * s**3 + 3 * s**2) * x[i + 1] + (s**3 - s**2) * h * slopes[i + 1])
    else:
        raise EdgekdError(f"unknown interpolation {interpolation!r}", "use linear or cubic")
    gap_starts = np.flatnonzero(np.diff(t_s) > MAX_GAP_S)
    in_gap = np.zeros(len(grid), bool)
    for i in gap_starts:
        in_gap |= (grid > t_s[i]) & (grid < t_s[i + 1])
    return grid, values, in_gap


def usable_channels(channels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, x in channels.items():
        clipped = np.mean((x <= 0) | (x >= 255))
        if np.std(x) > 0 and clipped < CLIPPED_FRACTION:
            out[name] = x
    return out


FIDUCIALS = ("upstroke", "top", "foot")


def analyse_pulse(t_s: np.ndarray, channels: dict[str, np.ndarray], band: tuple[float, float] = DEFAULT_BAND_HZ,
                  min_snr_db: float = MIN_SNR_DB, min_valid_fraction: float = MIN_VALID_FRACTION,
                  fiducial: str = "upstroke", pulse_band: tuple[float, float] = PULSE_BAND_HZ,
                  interpolation: str = "linear") -> HRVResult:
    """Beats, intervals and HRV of the clearest channel, with the gate's verdict.

    ``band`` bounds the heart rate; ``pulse_band`` filters the waveform whose ``fiducial`` marks a beat:
    ``upstroke`` (steepest fall of the light), ``top`` (least light: most blood) or ``foot`` (most light).
    """
    if fiducial not in FIDUCIALS:
        raise EdgekdError(f"unknown fiducial {fiducial!r}", f"use one of: {', '.join(FIDUCIALS)}")
    t_s = np.asarray(t_s, dtype=np.float64)
    duration = float(t_s[-1] - t_s[0]) if len(t_s) else 0.0
    if duration < 10.0:
        raise EdgekdError(f"the pulse lasts {duration:.1f} s; HRV needs at least 10 s (a minute or more for RMSSD)",
                          "record longer")
    usable = usable_channels(channels)
    if not usable:
        return HRVResult("low", ["every channel is flat or clipped (at 0 or 255)"], "", float("-inf"), float("nan"),
                         np.zeros(0), np.zeros(0), np.zeros(0, bool))
    best = None
    for name, x in usable.items():
        grid, values, in_gap = to_uniform(t_s, x, interpolation=interpolation)
        pulse = bandpass(values, UNIFORM_HZ, pulse_band)
        est = spectral_rate(pulse[~in_gap], UNIFORM_HZ, band)
        if best is None or est.snr_db > best[1].snr_db:
            best = (name, est, grid, pulse, in_gap)
    name, est, grid, pulse, in_gap = best
    if not np.isfinite(est.freq_hz):
        return HRVResult("low", ["no pulse in the heart-rate band"], name, est.snr_db, float("nan"), np.zeros(0),
                         np.zeros(0), np.zeros(0, bool))
    # fingertip and skin give back less light while blood volume rises: the upstroke is the fastest fall
    marker = {"upstroke": -np.gradient(pulse) * UNIFORM_HZ, "top": -pulse, "foot": pulse.copy()}[fiducial]
    marker[in_gap] = 0.0
    beats = grid[0] + beat_times(marker, UNIFORM_HZ, est.freq_hz)
    ibi = np.diff(beats) * 1000.0
    valid = clean_intervals(ibi) & ~_spans_gap(beats, grid, in_gap)
    kept = ibi[valid]
    bpm = 60000.0 / float(np.median(kept)) if len(kept) else float("nan")
    rmssd, sdnn = hrv_metrics(ibi, valid)
    reasons = []
    if est.snr_db < min_snr_db:
        reasons.append(f"weak pulse: SNR {est.snr_db:.1f} dB < {min_snr_db:g} dB")
    frac = float(valid.mean()) if len(valid) else 0.0
    if frac < min_valid_fraction:
        reasons.append(f"{1 - frac:.0%} of the intervals are artefacts (> {1 - min_valid_fraction:.0%} allowed)")
    if len(kept) < 10:
        reasons.append(f"only {len(kept)} clean intervals (10 needed)")
    return HRVResult("low" if reasons else "good", reasons, name, float(est.snr_db), bpm, beats, ibi, valid, rmssd, sdnn)


def clean_intervals(ibi_ms: np.ndarray, window: int = 5) -> np.ndarray:
    """True where an interval is within ±20 % of the median of the ``window`` intervals either side (and 0.3–2 s)."""
    ibi = np.asarray(ibi_ms, dtype=np.float64)
    ok = (ibi >= IBI_RANGE_S[0] * 1000) & (ibi <= IBI_RANGE_S[1] * 1000)
    out = np.zeros(len(ibi), bool)
    for k in range(len(ibi)):
        lo, hi = max(0, k - window), min(len(ibi), k + window + 1)
        neighbours = np.delete(ibi[lo:hi], k - lo)
        neighbours = neighbours[ok[lo:hi][np.arange(hi - lo) != k - lo]]
        if ok[k] and len(neighbours):
            out[k] = abs(ibi[k] - np.median(neighbours)) <= MAX_LOCAL_DEVIATION * np.median(neighbours)
    return out


def hrv_metrics(ibi_ms: np.ndarray, valid: np.ndarray | None = None) -> tuple[float, float]:
    """(RMSSD, SDNN) in ms over the kept intervals; RMSSD only from pairs of successive kept intervals."""
    ibi = np.asarray(ibi_ms, dtype=np.float64)
    valid = np.ones(len(ibi), bool) if valid is None else np.asarray(valid, bool)
    pairs = valid[1:] & valid[:-1]
    diffs = np.diff(ibi)[pairs]
    rmssd = float(np.sqrt(np.mean(diffs**2))) if len(diffs) >= 2 else float("nan")
    kept = ibi[valid]
    sdnn = float(np.std(kept, ddof=1)) if len(kept) >= 3 else float("nan")
    return rmssd, sdnn


def _spans_gap(beats: np.ndarray, grid: np.ndarray, in_gap: np.ndarray) -> np.ndarray:
    if not in_gap.any() or len(beats) < 2:
        return np.zeros(max(len(beats) - 1, 0), bool)
    gap_times = grid[in_gap]
    return np.array([bool(np.any((gap_times > a) & (gap_times < b))) for a, b in zip(beats[:-1], beats[1:])])


# ─────────────────────────── against a reference ───────────────────────────


def compare_with_rr(result: HRVResult, rr_ms: np.ndarray, tolerance_s: float = 0.15, min_overlap: int = 20,
                    max_offset_s: float = 10.0) -> dict:
    """Interval-by-interval errors of ``result`` against ECG RR intervals recorded at the same time.

    The two clocks' offset is unknown (and a pulse arrives ~0.1–0.3 s after its R-peak). Regular
    beats match at every whole-beat shift, so the shift is found on the intervals, whose
    variability is a fingerprint: the beat lag whose ECG intervals are nearest the pulse's kept
    intervals (mean absolute difference over at least ``min_overlap`` of them), among lags whose
    time offset (the median over the paired beats) is within ``max_offset_s``. An ECG interval is *covered* when both its beats
    have a pulse beat within ``tolerance_s`` and the pulse interval between them was kept; errors
    are over covered intervals only, and coverage is reported beside them.
    """
    rr_ms = np.asarray(rr_ms, dtype=np.float64)
    r = np.concatenate([[0.0], np.cumsum(rr_ms) / 1000.0])
    beats, ibi, valid = result.beats_s, result.ibi_ms, result.valid
    empty = {"offset_s": None, "beat_lag": None, "matched_beats": 0, "intervals": len(rr_ms), "covered": 0,
             "coverage": 0.0, "ibi_mae_ms": None, "ibi_bias_ms": None}
    best = None
    for lag in range(-len(ibi) + min_overlap, len(rr_ms) - min_overlap + 1):  # pulse interval k ↔ ECG interval k + lag
        k = np.arange(max(0, -lag), min(len(ibi), len(rr_ms) - lag))
        k = k[valid[k]]
        if len(k) >= min_overlap and abs(np.median(beats[k] - r[k + lag])) <= max_offset_s:  # clocks start together
            score = float(np.mean(np.abs(ibi[k] - rr_ms[k + lag])))
            if best is None or score < best[0]:
                best = (score, lag)
    if best is None:
        return empty
    lag = best[1]
    k = np.arange(max(0, -lag), min(len(beats), len(r) - lag))
    offset = float(np.median(beats[k] - r[k + lag]))
    shifted = r + offset
    j = np.clip(np.searchsorted(beats, shifted), 1, len(beats) - 1)
    nearest = np.where(np.abs(beats[j - 1] - shifted) < np.abs(beats[j] - shifted), j - 1, j)
    hit = np.abs(beats[nearest] - shifted) <= tolerance_s
    in_span = (shifted[:-1] >= beats[0] - tolerance_s) & (shifted[1:] <= beats[-1] + tolerance_s)
    errors = []
    for i in np.flatnonzero(in_span):
        a, b = nearest[i], nearest[i + 1]
        if hit[i] and hit[i + 1] and b == a + 1 and valid[a]:
            errors.append(ibi[a] - rr_ms[i])
    errors = np.asarray(errors)
    ecg_rmssd, ecg_sdnn = hrv_metrics(rr_ms[in_span])
    n_span = int(in_span.sum())
    return {
        "offset_s": round(offset, 3), "beat_lag": int(lag), "matched_beats": int(hit.sum()), "intervals": n_span,
        "covered": len(errors), "coverage": round(len(errors) / n_span, 3) if n_span else 0.0,
        "ibi_mae_ms": round(float(np.mean(np.abs(errors))), 2) if len(errors) else None,
        "ibi_bias_ms": round(float(np.mean(errors)), 2) if len(errors) else None,
        "ecg_bpm": round(60000.0 / float(np.median(rr_ms[in_span])), 2) if n_span else None,
        "ecg_rmssd_ms": round(ecg_rmssd, 1), "ecg_sdnn_ms": round(ecg_sdnn, 1),
        "rmssd_error_ms": round(result.rmssd_ms - ecg_rmssd, 1) if np.isfinite(result.rmssd_ms) else None,
        "sdnn_error_ms": round(result.sdnn_ms - ecg_sdnn, 1) if np.isfinite(result.sdnn_ms) else None,
    }

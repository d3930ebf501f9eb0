"""Imaging ballistocardiography: the heartbeat in the head's vertical motion.

Each heartbeat ejects blood into the aorta and the head recoils by a fraction of a pixel
(Balakrishnan et al., "Detecting pulse from head motions in video", CVPR 2013). The
vertical trajectories of tracked skin features carry that recoil plus drift, breathing,
tracker noise and the odd tracker jump; this module turns a window of trajectories into
one pulse signal and a rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekd.heartrate.signal import DEFAULT_BAND_HZ, SpectralEstimate, bandpass, spectral_rate

MIN_TRACKS = 3
MIN_VALID_FRACTION = 0.9
# Voluntary-motion gate: above this head speed (region heights per second) a window gives no iBCG rate.
# Off: benchmarks/heartrate_motion.md found no threshold that stops every nod without refusing still small
# faces (the fastest still window reached 0.100, and 26 false goods remained above it). Every window
# reports its head speed; set a threshold here once a gate is shown to hold.
MAX_HEAD_SPEED = float("inf")
MIN_COMPONENT_SHARE = 0.25  # of the first component's variance  # a track lost for more than 10% of the window is not used


@dataclass
class IbcgSignal:
    pulse: np.ndarray  # (T,) combined band-passed vertical motion, px
    used_tracks: np.ndarray  # indices into the window's points
    dropped_erratic: int
    reason: str = ""  # non-empty when no signal could be formed


def _fill_gaps(y: np.ndarray, ok: np.ndarray) -> np.ndarray:
    t = np.arange(len(y))
    return np.interp(t, t[ok], y[ok])


def ibcg_signal(
    positions: np.ndarray,
    ok: np.ndarray,
    fs: float,
    band=DEFAULT_BAND_HZ,
    combine: str = "mean",
    drop_fraction: float = 0.25,
    n_components: int = 5,
) -> IbcgSignal:
    """Combine a window of trajectories ``positions (T, P, 2)`` (``ok (T, P)``) into a pulse.

    1. keep tracks valid in ≥90% of frames, fill their short gaps linearly;
    2. detrend + band-pass each vertical trajectory;
    3. drop the ``drop_fraction`` most erratic tracks (largest frame-to-frame jump: a
       tracker slip or a blink, not a heartbeat, which moves well under a pixel per frame);
    4. combine: ``"pca"`` picks, among the first principal components, the one with the
       most periodic spectrum (Balakrishnan et al.); ``"mean"`` is the plain average, which
       is optimal when all points share the head's motion and noise is independent. Mean is
       the default: on the synthetic benchmark it matched PCA with LK/NCC tracks and was far
       more robust with DFE tracks, where PCA sometimes picked a periodic-looking noise
       component (benchmarks/heartrate.md).
    """
    positions = np.asarray(positions, dtype=np.float64)
    ok = np.asarray(ok, dtype=bool) & np.isfinite(positions).all(axis=2)
    valid = ok.mean(axis=0) >= MIN_VALID_FRACTION
    idx = np.flatnonzero(valid)
    if len(idx) < MIN_TRACKS:
        return IbcgSignal(np.zeros(len(positions)), idx, 0, f"only {len(idx)} points tracked through the window")
    y = np.stack([_fill_gaps(positions[:, j, 1], ok[:, j]) for j in idx], axis=1)
    jumps = np.abs(np.diff(y, axis=0)).max(axis=0)
    n_drop = int(drop_fraction * len(idx)) if len(idx) - int(drop_fraction * len(idx)) >= MIN_TRACKS else 0
    keep = np.argsort(jumps)[: len(idx) - n_drop]
    keep.sort()
    filtered = bandpass(y[:, keep], fs, band)
    if combine == "mean":
        pulse = filtered.mean(axis=1)
    elif combine == "pca":
        pulse = _most_periodic_component(filtered, fs, band, n_components)
    else:
        raise ValueError(f"unknown combination {combine!r} (pca or mean)")
    return IbcgSignal(pulse, idx[keep], n_drop)


def _most_periodic_component(x: np.ndarray, fs: float, band, n_components: int) -> np.ndarray:
    centered = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(centered, full_matrices=False)
    best, best_score = None, -np.inf
    for k in range(min(n_components, len(s))):
        # weak components are tracker noise whose random peaks can look periodic in a
        # 10 s window; only components with a real share of the motion compete
        if s[k] ** 2 < MIN_COMPONENT_SHARE * s[0] ** 2:
            break
        comp = u[:, k] * s[k]
        score = spectral_rate(comp, fs, band).peak_fraction
        if score > best_score:
            best, best_score = comp, score
    return best


def ibcg_estimate(
    positions: np.ndarray, ok: np.ndarray, fs: float, band=DEFAULT_BAND_HZ, combine: str = "mean"
) -> tuple[SpectralEstimate, IbcgSignal]:
    sig = ibcg_signal(positions, ok, fs, band, combine)
    if sig.reason:
        return SpectralEstimate(float("nan"), float("nan"), float("-inf"), 0.0), sig
    return spectral_rate(sig.pulse, fs, band), sig


def head_speed(positions: np.ndarray, ok: np.ndarray, fs: float, smooth_s: float = 0.2) -> float:
    """How fast the tracked region moves as a whole: the 95th percentile of the speed of its median point
    (smoothed over ``smooth_s``), in region heights per second (height: the points' 10th–90th percentile
    vertical spread, at least 20 px). A heartbeat recoil moves it by well under a percent a second."""
    positions = np.asarray(positions, dtype=np.float64)
    ok = np.asarray(ok, dtype=bool) & np.isfinite(positions).all(axis=2)
    whole = ok.all(axis=0)
    if whole.sum() < MIN_TRACKS:
        return float("nan")
    pts = positions[:, whole]
    height = max(float(np.percentile(pts[0, :, 1], 90) - np.percentile(pts[0, :, 1], 10)), 20.0)
    centre = np.median(pts, axis=1)  # (T, 2): a slipping point does not move the median
    k = max(1, int(round(smooth_s * fs)))
    if len(centre) <= k + 1:
        return float("nan")
    kernel = np.ones(k) / k
    smoothed = np.stack([np.convolve(centre[:, d], kernel, mode="valid") for d in range(2)], axis=1)
    speed = np.hypot(*np.diff(smoothed, axis=0).T) * fs
    return float(np.percentile(speed, 95)) / height


@dataclass
class IbcgWindow:
    bpm: float  # NaN when no signal could be formed
    snr_db: float
    bpm_intervals: float
    pulse: np.ndarray | None
    estimate: SpectralEstimate | None
    reason: str = ""
    head_speed: float = float("nan")  # region heights per second, see head_speed


def ibcg_window(positions: np.ndarray, ok: np.ndarray, fs: float, band=DEFAULT_BAND_HZ,
                combine: str = "mean", max_head_speed: float | None = None) -> IbcgWindow:
    """One analysis window of trajectories → rate, quality index and beat-interval rate.

    The single iBCG stage of the product: the video monitor and the trajectory files
    (``edgekd heartrate --tracks``) both call it. A window whose head speed exceeds
    ``max_head_speed`` (default: the module's ``MAX_HEAD_SPEED``) gives no rate.
    """
    from edgekd.heartrate.signal import interval_rate

    speed = head_speed(positions, ok, fs)
    limit = MAX_HEAD_SPEED if max_head_speed is None else max_head_speed
    if speed > limit:
        return IbcgWindow(float("nan"), float("-inf"), float("nan"), None, None,
                          f"head moving ({speed:.3f} region heights/s > {limit:g}): the heartbeat's recoil "
                          "is only readable while the head is still", speed)
    est, sig = ibcg_estimate(positions, ok, fs, band, combine)
    if sig.reason:
        return IbcgWindow(float("nan"), float("-inf"), float("nan"), None, None, sig.reason, speed)
    ibi, _ = interval_rate(sig.pulse, fs, est.freq_hz)
    return IbcgWindow(est.bpm, est.snr_db, ibi, sig.pulse, est, head_speed=speed)

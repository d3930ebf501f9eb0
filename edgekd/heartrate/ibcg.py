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

from edgekd.heartrate.signal import DEFAULT_BAND_HZ, SpectralEstimate, bandpass, detrend_linear, spectral_rate

MIN_TRACKS = 3
MIN_VALID_FRACTION = 0.9  # a track lost for more than 10% of the window is not used
MIN_COMPONENT_SHARE = 0.25  # of the first component's variance
# Head speed alone cannot tell nodding from a still small face (benchmarks/heartrate_motion.md: the fastest still
# window reached 0.100 region heights/s, and 26 false goods remained above it), so it is reported, not gated on.
MAX_HEAD_SPEED = float("inf")
REFERENCE_HEIGHT_PX = 200.0  # the motion limit below is in pixels of a region this tall; taller regions scale it


@dataclass(frozen=True)
class MotionGate:
    """When a window's head motion is in the heartbeat's regime, so that its iBCG rate may be read.

    A heartbeat moves the whole head rigidly by a fraction of a pixel (Balakrishnan et al. 2013); nodding, glances,
    talking and posture shifts move it by pixels, part of the face at a time, or as low-frequency swings whose
    slope or harmonics reach into the heart band. Three checks, each on one measurable property:

    - ``max_pulse_px``: the in-band vertical motion (RMS of the combined, band-passed pulse) at most this many pixels
      for a region ``REFERENCE_HEIGHT_PX`` tall, proportionally more for taller regions (the recoil is a physical
      distance, so its pixels grow with the face);
    - ``min_rigidity``: the upper and lower halves of the tracked points move together in the band (the smaller
      half's in-band RMS over the larger's): talking moves the jaw side alone;
    - ``max_slope_ratio``: the rate is a peak of the raw motion's spectrum, not the flank of slower motion: the
      largest power 0.1–0.25 Hz below the rate, over the power at the rate, at most this.

    Thresholds: benchmarks/heartrate_motion.md (chosen on development sequences, checked on held-out ones).
    """

    max_pulse_px: float = float("inf")
    min_rigidity: float = 0.0
    max_slope_ratio: float = float("inf")
    max_head_speed: float = float("inf")

    def refuse(self, w: "IbcgWindow", height_px: float) -> str:
        """Why this window's motion is not a heartbeat's, or "" when it may be."""
        limit_px = self.max_pulse_px * max(1.0, height_px / REFERENCE_HEIGHT_PX)
        if w.head_speed > self.max_head_speed:
            return (f"head moving ({w.head_speed:.3f} region heights/s > {self.max_head_speed:g}): the heartbeat's "
                    "recoil is only readable while the head is still")
        if w.slope_ratio > self.max_slope_ratio:
            return ("the rate sits on the flank of slower head motion (nodding, posture), not on a peak of its own "
                    f"(power just below it {w.slope_ratio:.2f}× the rate's)")
        if w.motion_px > limit_px:
            return (f"head moving in the heart band ({w.motion_px:.2f} px RMS > {limit_px:.2f}): a heartbeat moves the "
                    "head by a fraction of a pixel")
        if w.rigidity < self.min_rigidity:
            return (f"upper and lower face move apart (rigidity {w.rigidity:.2f} < {self.min_rigidity:g}): talking or "
                    "expressions, not the heartbeat's rigid recoil")
        return ""


# Chosen on development sequences, checked on held-out ones (benchmarks/heartrate_motion.md).
GATE = MotionGate(max_pulse_px=0.317, min_rigidity=0.3, max_slope_ratio=1.0)


@dataclass
class IbcgSignal:
    pulse: np.ndarray  # (T,) combined band-passed vertical motion, px
    used_tracks: np.ndarray  # indices into the window's points
    dropped_erratic: int
    reason: str = ""  # non-empty when no signal could be formed
    raw: np.ndarray | None = None  # (T, K) detrended vertical motion of the used tracks, before the band-pass
    filtered: np.ndarray | None = None  # (T, K) the same, band-passed


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
    return IbcgSignal(pulse, idx[keep], n_drop, raw=detrend_linear(y[:, keep]), filtered=filtered)


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


def rigidity(positions0_y: np.ndarray, filtered: np.ndarray) -> float:
    """How rigidly the region moves in the band: the in-band RMS of the mean of its upper half of points and of its
    lower half (by first-frame height), the smaller over the larger. 1: the halves move alike (a heartbeat);
    near 0: one half moves alone (talking moves the jaw side). NaN with fewer than two points a half."""
    upper = positions0_y < np.median(positions0_y)
    if upper.sum() < 2 or (~upper).sum() < 2:
        return float("nan")
    a, b = filtered[:, upper].mean(axis=1).std(), filtered[:, ~upper].mean(axis=1).std()
    return float(min(a, b) / max(a, b)) if max(a, b) > 0 else 1.0


def slope_ratio(raw: np.ndarray, fs: float, freq_hz: float, below_hz: tuple[float, float] = (0.1, 0.25)) -> float:
    """The raw (un-band-passed) motion's largest spectral power 0.1–0.25 Hz below ``freq_hz`` over its power at
    ``freq_hz``. Above 1 the rate is not a peak of its own but the flank of slower motion leaking into the band."""
    y = raw.mean(axis=1) if raw.ndim == 2 else raw
    n = 8 * len(y)  # zero padding: the bins near the rate are finely spaced
    power = np.abs(np.fft.rfft(y * np.hanning(len(y)), n)) ** 2
    f = np.fft.rfftfreq(n, 1 / fs)
    near = (f >= freq_hz - below_hz[1]) & (f <= freq_hz - below_hz[0])
    at = power[np.argmin(np.abs(f - freq_hz))]
    if not near.any() or at <= 0:
        return float("nan")
    return float(power[near].max() / at)


@dataclass
class IbcgWindow:
    bpm: float  # NaN when no signal could be formed
    snr_db: float
    bpm_intervals: float
    pulse: np.ndarray | None
    estimate: SpectralEstimate | None
    reason: str = ""
    head_speed: float = float("nan")  # region heights per second, see head_speed
    motion_px: float = float("nan")  # RMS of the band-passed pulse, px
    rigidity: float = float("nan")  # see rigidity
    slope_ratio: float = float("nan")  # see slope_ratio

    def motion_measures(self) -> dict:
        """What the motion gate judged, as ``WindowResult`` fields (reported whether it refused or not)."""
        return {k: float(getattr(self, k)) for k in ("head_speed", "motion_px", "rigidity", "slope_ratio")}


def region_height(positions: np.ndarray, ok: np.ndarray) -> float:
    """The tracked points' 10th–90th percentile vertical spread in the first frame, px (at least 20)."""
    first = np.asarray(positions, dtype=np.float64)[0, np.asarray(ok, dtype=bool)[0], 1]
    first = first[np.isfinite(first)]
    return max(float(np.percentile(first, 90) - np.percentile(first, 10)), 20.0) if len(first) else 20.0


def ibcg_window(positions: np.ndarray, ok: np.ndarray, fs: float, band=DEFAULT_BAND_HZ,
                combine: str = "mean", max_head_speed: float | None = None, gate: MotionGate | None = None) -> IbcgWindow:
    """One analysis window of trajectories → rate, quality index and beat-interval rate.

    The single iBCG stage of the product: the video monitor and the trajectory files
    (``edgekd heartrate --tracks``) both call it. A window whose motion ``gate`` (default: the module's
    ``GATE``) refuses gives no rate, and says why; its motion measures are reported either way.
    """
    from edgekd.heartrate.signal import interval_rate

    gate = gate or GATE
    limit = MAX_HEAD_SPEED if max_head_speed is None else max_head_speed
    if limit < gate.max_head_speed:
        gate = MotionGate(gate.max_pulse_px, gate.min_rigidity, gate.max_slope_ratio, limit)
    speed = head_speed(positions, ok, fs)
    est, sig = ibcg_estimate(positions, ok, fs, band, combine)
    if sig.reason:
        return IbcgWindow(float("nan"), float("-inf"), float("nan"), None, None, sig.reason, speed)
    y0 = np.asarray(positions, dtype=np.float64)[0, sig.used_tracks, 1]
    w = IbcgWindow(est.bpm, est.snr_db, float("nan"), sig.pulse, est, head_speed=speed,
                   motion_px=float(sig.pulse.std()), rigidity=rigidity(y0, sig.filtered),
                   slope_ratio=slope_ratio(sig.raw, fs, est.freq_hz) if np.isfinite(est.freq_hz) else float("nan"))
    why = gate.refuse(w, region_height(positions, ok))
    if why:
        w.bpm, w.snr_db, w.reason = float("nan"), float("-inf"), why
        return w
    w.bpm_intervals, _ = interval_rate(sig.pulse, fs, est.freq_hz)
    return w

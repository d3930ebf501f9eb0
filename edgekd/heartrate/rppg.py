"""Remote photoplethysmography: the pulse in the skin's colour.

POS (Wang et al., "Algorithmic principles of remote PPG", IEEE TBME 2017) and CHROM
(de Haan & Jeanne, IEEE TBME 2013) on the mean RGB of the skin regions, then the same
spectral estimator as iBCG. Independent of the tracker: it needs only a skin region.
"""

from __future__ import annotations

import numpy as np

from edgekd.heartrate.signal import DEFAULT_BAND_HZ, SpectralEstimate, bandpass, spectral_rate

DARK_LUMA = 40.0  # mean 8-bit luma below which the colour pulse drowns in sensor noise
SATURATED_FRACTION = 0.10  # share of clipped pixels above which the colour pulse is cut off


def roi_stats(frame_bgr: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, bool, bool]:
    """(mean RGB of the region, too dark?, saturated?) for one frame."""
    pixels = frame_bgr.reshape(-1, 3) if mask is None else frame_bgr[mask.astype(bool)]
    if pixels.size == 0:
        return np.full(3, np.nan), True, False
    pixels = pixels.astype(np.float32)
    mean_bgr = pixels.mean(axis=0)
    luma = 0.114 * mean_bgr[0] + 0.587 * mean_bgr[1] + 0.299 * mean_bgr[2]
    saturated = float((pixels.max(axis=1) >= 250).mean()) > SATURATED_FRACTION
    return mean_bgr[::-1].astype(np.float64), bool(luma < DARK_LUMA), saturated


def pos_signal(rgb: np.ndarray, fs: float, window_s: float = 1.6) -> np.ndarray:
    """POS pulse signal from a ``(T, 3)`` mean-RGB trace (overlap-added short windows)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    n = len(rgb)
    length = max(2, int(round(window_s * fs)))
    projection = np.array([[0.0, 1.0, -1.0], [-2.0, 1.0, 1.0]])
    h = np.zeros(n)
    for start in range(0, max(1, n - length + 1)):
        block = rgb[start : start + length]
        mean = block.mean(axis=0)
        if np.any(mean <= 0):
            continue
        s = (block / mean) @ projection.T
        std1 = s[:, 1].std()
        p = s[:, 0] + (s[:, 0].std() / std1 if std1 > 0 else 0.0) * s[:, 1]
        h[start : start + len(block)] += p - p.mean()
    return h


def chrom_signal(rgb: np.ndarray, fs: float, band=DEFAULT_BAND_HZ) -> np.ndarray:
    """CHROM pulse signal from a ``(T, 3)`` mean-RGB trace."""
    rgb = np.asarray(rgb, dtype=np.float64)
    norm = rgb / rgb.mean(axis=0)
    x = 3 * norm[:, 0] - 2 * norm[:, 1]
    y = 1.5 * norm[:, 0] + norm[:, 1] - 1.5 * norm[:, 2]
    xf, yf = bandpass(x, fs, band), bandpass(y, fs, band)
    return xf - (xf.std() / yf.std() if yf.std() > 0 else 0.0) * yf


def rppg_estimate(
    rgb: np.ndarray, fs: float, band=DEFAULT_BAND_HZ, algorithm: str = "pos"
) -> tuple[SpectralEstimate, np.ndarray]:
    """(spectral estimate, band-passed pulse signal) of one window of mean RGB."""
    if algorithm == "pos":
        pulse = bandpass(pos_signal(rgb, fs), fs, band)
    elif algorithm == "chrom":
        pulse = chrom_signal(rgb, fs, band)
    else:
        raise ValueError(f"unknown rPPG algorithm {algorithm!r} (pos or chrom)")
    return spectral_rate(pulse, fs, band), pulse

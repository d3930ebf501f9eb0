"""Remote photoplethysmography: the pulse in the skin's colour.

POS (Wang et al., "Algorithmic principles of remote PPG", IEEE TBME 2017) and CHROM
(de Haan & Jeanne, IEEE TBME 2013), then the same spectral estimator as iBCG. Independent of
the tracker: it needs only skin regions.

The product does not average the whole skin area into one colour: each region is cut into
tiles, each tile averages only its skin-coloured pixels, every tile gets its own pulse signal
and SNR, and the pulse is the mean of the best-quality quarter of the tiles (unit variance
each). On compressed webcam video the colour pulse survives in some patches and drowns in
others (compression blocks, hair, shadows); averaging everything dilutes it
(benchmarks/heartrate.md, forehead videos: chosen on the India videos, checked on Sierra Leone).
"""

from __future__ import annotations

import numpy as np

from edgekd.heartrate.signal import DEFAULT_BAND_HZ, SpectralEstimate, bandpass, spectral_rate

DARK_LUMA = 40.0  # mean 8-bit luma below which the colour pulse drowns in sensor noise
SATURATED_FRACTION = 0.10  # share of clipped pixels above which the colour pulse is cut off
MIN_SKIN_PIXELS = 10  # below this a tile averages all its pixels
TOP_FRACTION = 0.25  # the share of tiles, best SNR first, whose pulses make the estimate
FULL_FRAME_GRID = (4, 4)  # tiles (columns, rows) of a frame that is all skin (--roi full)
REGION_GRID = (2, 2)  # tiles of each face skin region (forehead, cheeks): 12 in all


def is_skin(frame_bgr: np.ndarray) -> np.ndarray:
    """Boolean mask of skin-coloured, unclipped, lit pixels.

    The fixed YCrCb box of Chai & Ngan (1999), Cr 133–173 and Cb 77–127: it holds across skin
    tones because skin differs mostly in luma, which the box leaves free; luma must be at least
    ``DARK_LUMA`` and no channel clipped, since neither carries a colour pulse.
    """
    import cv2

    ycc = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2YCrCb)
    cr, cb = ycc[..., 1], ycc[..., 2]
    return ((cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127) & (ycc[..., 0] >= DARK_LUMA)
            & (frame_bgr.max(axis=2) < 250))


def tile_rects(rects, grid: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Each rectangle (x0, y0, x1, y1) cut into ``grid`` = (columns, rows) tiles."""
    cols, rows = grid
    tiles = []
    for x0, y0, x1, y1 in rects:
        xs = np.linspace(x0, x1, cols + 1).round().astype(int)
        ys = np.linspace(y0, y1, rows + 1).round().astype(int)
        tiles += [(int(xs[i]), int(ys[j]), int(xs[i + 1]), int(ys[j + 1])) for j in range(rows) for i in range(cols)]
    return tiles


def tile_stats(frame_bgr: np.ndarray, tiles) -> tuple[np.ndarray, bool, bool]:
    """(``(K, 3)`` mean RGB of each tile's skin pixels, too dark?, saturated?) for one frame.

    A tile with fewer than ``MIN_SKIN_PIXELS`` skin pixels averages all its pixels (strong light
    or an unusual camera white balance can push real skin out of the box); a tile outside the
    frame is NaN. Dark and saturated are judged on all pixels of all tiles together.
    """
    h, w = frame_bgr.shape[:2]
    skin = is_skin(frame_bgr)
    means = np.full((len(tiles), 3), np.nan)
    luma_sum = clipped = count = 0.0
    for k, (x0, y0, x1, y1) in enumerate(tiles):
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 - x0 < 1 or y1 - y0 < 1:
            continue
        pixels = frame_bgr[y0:y1, x0:x1].reshape(-1, 3).astype(np.float32)
        keep = skin[y0:y1, x0:x1].reshape(-1)
        chosen = pixels[keep] if keep.sum() >= MIN_SKIN_PIXELS else pixels
        means[k] = chosen.mean(axis=0)[::-1]
        luma_sum += float((pixels @ np.array([0.114, 0.587, 0.299], np.float32)).sum())
        clipped += float((pixels.max(axis=1) >= 250).sum())
        count += len(pixels)
    if count == 0:  # every tile outside the frame: nothing to judge (the caller sees NaN)
        return means, False, False
    return means, luma_sum / count < DARK_LUMA, clipped / count > SATURATED_FRACTION


def pos_signal(rgb: np.ndarray, fs: float, window_s: float = 1.6) -> np.ndarray:
    """POS pulse signal from a ``(T, 3)`` mean-RGB trace (overlap-added short windows)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    n = len(rgb)
    length = max(2, int(round(window_s * fs)))
    # every start position at once: (starts, length, 3); a trace shorter than a window is one block
    blocks = rgb[None] if n < length else np.lib.stride_tricks.sliding_window_view(rgb, length, axis=0).transpose(0, 2, 1)
    mean = blocks.mean(axis=1, keepdims=True)
    usable = np.all(mean[:, 0] > 0, axis=1)
    norm = blocks / np.where(mean > 0, mean, 1.0)
    s0 = norm[..., 1] - norm[..., 2]
    s1 = -2.0 * norm[..., 0] + norm[..., 1] + norm[..., 2]
    std0, std1 = s0.std(axis=1, keepdims=True), s1.std(axis=1, keepdims=True)
    p = s0 + np.divide(std0, std1, out=np.zeros_like(std0), where=std1 > 0) * s1
    p = (p - p.mean(axis=1, keepdims=True)) * usable[:, None]
    h = np.zeros(n)
    for k in range(p.shape[1]):  # overlap-add: block i covers samples i … i + length − 1
        h[k : k + len(p)] += p[:, k]
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


def tiled_rppg_estimate(
    traces: np.ndarray, fs: float, band=DEFAULT_BAND_HZ, algorithm: str = "pos", top_fraction: float = TOP_FRACTION
) -> tuple[SpectralEstimate, np.ndarray, np.ndarray]:
    """(spectral estimate, pulse, each tile's SNR in dB) of one window of ``(T, K, 3)`` tile traces.

    Each tile's pulse is scaled to unit variance and the best ``top_fraction`` of the tiles by
    their own SNR (at least one) are averaged; tiles with missing samples are left out.
    """
    traces = np.asarray(traces, dtype=np.float64)
    if traces.ndim == 2:
        traces = traces[:, None, :]
    pulses, snrs = [], np.full(traces.shape[1], -np.inf)
    for k in range(traces.shape[1]):
        if not np.isfinite(traces[:, k]).all():
            continue
        est, pulse = rppg_estimate(traces[:, k], fs, band, algorithm)
        sd = pulse.std()
        if sd > 0 and np.isfinite(est.snr_db):
            snrs[k] = est.snr_db
            pulses.append((k, pulse / sd))
    if not pulses:
        return spectral_rate(np.zeros(len(traces)), fs, band), np.zeros(len(traces)), snrs
    ranked = sorted(pulses, key=lambda kp: snrs[kp[0]], reverse=True)
    best = ranked[: max(1, int(round(top_fraction * len(ranked))))]
    pulse = np.mean([p for _, p in best], axis=0)
    return spectral_rate(pulse, fs, band), pulse, snrs

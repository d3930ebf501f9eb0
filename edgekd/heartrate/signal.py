"""Filters and spectral rate estimation in plain numpy (the device has no scipy).

Everything here works on 1-D signals or on ``(T, C)`` arrays (one column per channel,
e.g. one tracked point per column), sampled at ``fs`` Hz.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_BAND_HZ = (0.7, 3.5)  # 42–210 bpm


# ───────────────────────────── filtering ─────────────────────────────


def butter_bandpass_sos(low_hz: float, high_hz: float, fs: float, order: int = 2) -> np.ndarray:
    """Digital Butterworth band-pass as second-order sections, shape ``(order, 6)``.

    Analog prototype → band-pass transform → bilinear transform with pre-warping, the
    same design as ``scipy.signal.butter(order, [low, high], 'bandpass', fs=fs, output='sos')``
    (a test checks the two agree).
    """
    nyq = fs / 2.0
    if not 0 < low_hz < high_hz < nyq:
        raise ValueError(f"band {low_hz}-{high_hz} Hz must lie inside (0, {nyq:g}) Hz for fs={fs:g}")
    fs2 = 2.0 * fs
    w_low = fs2 * np.tan(np.pi * low_hz / fs)
    w_high = fs2 * np.tan(np.pi * high_hz / fs)
    bandwidth, w_center = w_high - w_low, np.sqrt(w_low * w_high)
    k = np.arange(1, order + 1)
    proto = np.exp(1j * np.pi * (2 * k + order - 1) / (2 * order))  # left half-plane poles
    # each prototype pole p becomes the two roots of s^2 - p*bw*s + w0^2
    pb = proto * bandwidth / 2.0
    disc = np.sqrt(pb**2 - w_center**2 + 0j)
    analog = np.concatenate([pb + disc, pb - disc])
    digital = (fs2 + analog) / (fs2 - analog)
    # one section per conjugate pair; real poles (low orders, wide bands) pair with each other
    complex_upper = digital[np.imag(digital) > 1e-12]
    real = np.sort(np.real(digital[np.abs(np.imag(digital)) <= 1e-12]))
    denominators = [[1.0, -2.0 * p.real, abs(p) ** 2] for p in complex_upper]
    denominators += [[1.0, -(a + b), a * b] for a, b in zip(real[0::2], real[1::2])]
    sos = np.zeros((order, 6))
    for i, den in enumerate(denominators):
        sos[i, :3] = [1.0, 0.0, -1.0]  # one zero at z=+1 (DC) and one at z=-1 (Nyquist)
        sos[i, 3:] = den
    # a Butterworth band-pass has unit gain at the (pre-warped) centre frequency
    w_digital = 2.0 * np.arctan(w_center / fs2)
    sos[0, :3] /= abs(_sos_response(sos, w_digital))
    return sos


def _sos_response(sos: np.ndarray, w: float) -> complex:
    z = np.exp(-1j * w)
    h = 1.0 + 0j
    for b0, b1, b2, a0, a1, a2 in sos:
        h *= (b0 + b1 * z + b2 * z * z) / (a0 + a1 * z + a2 * z * z)
    return h


def sosfilt(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Causal filter along axis 0 (direct form II transposed), vectorised over channels."""
    y = np.array(x, dtype=np.float64, copy=True)
    for b0, b1, b2, _, a1, a2 in sos:
        z1 = np.zeros(y.shape[1:])
        z2 = np.zeros(y.shape[1:])
        for t in range(y.shape[0]):
            xt = y[t]
            yt = b0 * xt + z1
            z1 = b1 * xt - a1 * yt + z2
            z2 = b2 * xt - a2 * yt
            y[t] = yt
    return y


def sosfiltfilt(sos: np.ndarray, x: np.ndarray, padlen: int | None = None) -> np.ndarray:
    """Zero-phase filtering along axis 0, odd-extension padding like scipy's default."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if padlen is None:
        padlen = 3 * (2 * len(sos) + 1)
    padlen = min(padlen, n - 1)
    if padlen > 0:
        head = 2 * x[0] - x[padlen:0:-1]
        tail = 2 * x[-1] - x[-2 : -padlen - 2 : -1]
        ext = np.concatenate([head, x, tail], axis=0)
    else:
        ext = x
    # start each pass from the steady state of its first sample so the edges do not ring
    y = _sosfilt_steady(sos, ext)
    y = _sosfilt_steady(sos, y[::-1])[::-1]
    return y[padlen : padlen + n] if padlen > 0 else y


def _sosfilt_steady(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    # Band-pass sections have zero DC gain, so a constant input's steady state is
    # "output 0, state = what keeps it 0": subtract the first sample instead of solving
    # for zi. The DC component is removed by the filter anyway.
    return sosfilt(sos, x - x[0])


def detrend_linear(x: np.ndarray) -> np.ndarray:
    """Remove a least-squares line along axis 0 (slow head drift inside one window)."""
    x = np.asarray(x, dtype=np.float64)
    t = np.linspace(-1.0, 1.0, x.shape[0])
    design = np.stack([np.ones_like(t), t], axis=1)
    coef, *_ = np.linalg.lstsq(design, x.reshape(x.shape[0], -1), rcond=None)
    return x - (design @ coef).reshape(x.shape)


def bandpass(x: np.ndarray, fs: float, band: tuple[float, float] = DEFAULT_BAND_HZ, order: int = 2) -> np.ndarray:
    """Detrend, then zero-phase Butterworth band-pass along axis 0."""
    return sosfiltfilt(butter_bandpass_sos(band[0], band[1], fs, order), detrend_linear(x))


def check_band(fs: float, band: tuple[float, float]) -> None:
    """Raise ValueError with a readable reason when ``band`` cannot be measured at ``fs``."""
    low, high = band
    if not 0 < low < high:
        raise ValueError(f"band must be 0 < low < high Hz, got {low:g}-{high:g}")
    # 2.2 rather than 2: a band edge right at Nyquist is aliased noise, not signal
    if fs < 2.2 * high:
        raise ValueError(
            f"frame rate {fs:g} frames/s is too low for a band up to {high:g} Hz "
            f"({high * 60:.0f} bpm); it needs at least {2.2 * high:.1f} frames/s, "
            f"or lower the band's upper edge below {fs / 2.2:.2f} Hz"
        )


# ───────────────────────────── spectrum ─────────────────────────────


@dataclass
class SpectralEstimate:
    """Rate from one window's spectrum, with its signal-quality index."""

    bpm: float
    freq_hz: float
    snr_db: float  # power at the peak ±0.1 Hz and its harmonic ±0.2 Hz vs the rest of the band
    peak_fraction: float  # share of in-band power in the fundamental's ±0.1 Hz: 1 = pure tone
    harmonic_corrected: bool = False
    freqs: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    power: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)


def power_spectrum(x: np.ndarray, fs: float, resolution_hz: float = 0.005) -> tuple[np.ndarray, np.ndarray]:
    """Hann-windowed, zero-padded periodogram of a 1-D signal (interpolated to ``resolution_hz``)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    n_fft = max(len(x), int(2 ** np.ceil(np.log2(fs / resolution_hz))))
    spec = np.fft.rfft(x * np.hanning(len(x)), n=n_fft)
    return np.fft.rfftfreq(n_fft, 1.0 / fs), (spec.real**2 + spec.imag**2)


def _band_power(freqs, power, center, half_width, mask):
    sel = mask & (np.abs(freqs - center) <= half_width)
    return float(power[sel].sum()), sel


def spectral_rate(
    x: np.ndarray,
    fs: float,
    band: tuple[float, float] = DEFAULT_BAND_HZ,
    harmonic_check: bool = True,
    harmonic_ratio: float = 0.5,
) -> SpectralEstimate:
    """Heart rate from the strongest in-band spectral peak.

    Harmonic check: ballistocardiographic and colour pulse waveforms are not sinusoids, so
    the second harmonic can outgrow the fundamental. If the spectrum also has a local peak
    at half the winning frequency, inside the band, holding at least ``harmonic_ratio`` of
    the winner's power, the half frequency is taken as the fundamental.
    """
    freqs, power = power_spectrum(x, fs)
    in_band = (freqs >= band[0]) & (freqs <= band[1])
    if not in_band.any() or not np.isfinite(power).all() or power[in_band].sum() <= 0:
        return SpectralEstimate(float("nan"), float("nan"), float("-inf"), 0.0, False, freqs, power)
    idx = np.flatnonzero(in_band)
    peak = idx[np.argmax(power[idx])]
    corrected = False
    if harmonic_check:
        half = freqs[peak] / 2.0
        if half >= band[0]:
            near = idx[np.abs(freqs[idx] - half) <= 0.1]
            if near.size:
                cand = near[np.argmax(power[near])]
                is_local_max = 0 < cand < len(power) - 1 and power[cand] >= power[cand - 1] and power[cand] >= power[cand + 1]
                if is_local_max and power[cand] >= harmonic_ratio * power[peak]:
                    peak, corrected = cand, True
    f0 = _parabolic_peak(freqs, power, peak)
    total = float(power[in_band].sum())
    fund, fund_sel = _band_power(freqs, power, f0, 0.1, in_band)
    harm, harm_sel = _band_power(freqs, power, 2 * f0, 0.2, in_band)
    signal_power = float(power[in_band & (fund_sel | harm_sel)].sum())
    noise_power = max(total - signal_power, 1e-30)
    snr_db = 10.0 * np.log10(max(signal_power, 1e-30) / noise_power)
    return SpectralEstimate(60.0 * f0, f0, float(snr_db), fund / total, corrected, freqs, power)


def _parabolic_peak(freqs: np.ndarray, power: np.ndarray, i: int) -> float:
    if i <= 0 or i >= len(power) - 1:
        return float(freqs[i])
    a, b, c = power[i - 1], power[i], power[i + 1]
    denom = a - 2 * b + c
    offset = 0.5 * (a - c) / denom if denom < 0 else 0.0
    return float(freqs[i] + np.clip(offset, -0.5, 0.5) * (freqs[1] - freqs[0]))


# ─────────────────────────── beat intervals ───────────────────────────


def beat_times(x: np.ndarray, fs: float, expected_hz: float) -> np.ndarray:
    """Times (s) of the signal's beats: local maxima at least ~0.6 expected periods apart.

    ``expected_hz`` (from the spectrum) sets the refractory distance so dicrotic notches
    and noise wiggles are not counted as beats.
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 3 or not np.isfinite(expected_hz) or expected_hz <= 0:
        return np.zeros(0)
    min_gap = max(1, int(0.6 * fs / expected_hz))
    cand = np.flatnonzero((x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:])) + 1
    cand = cand[x[cand] > 0]  # peaks above the (zero-mean, band-passed) baseline
    # greedy: strongest first, suppress neighbours closer than min_gap
    chosen: list[int] = []
    for i in cand[np.argsort(-x[cand])]:
        if all(abs(i - j) >= min_gap for j in chosen):
            chosen.append(int(i))
    chosen.sort()
    # sub-sample timing from a parabola through each peak
    times = []
    for i in chosen:
        if 0 < i < len(x) - 1:
            a, b, c = x[i - 1], x[i], x[i + 1]
            d = a - 2 * b + c
            times.append((i + (0.5 * (a - c) / d if d < 0 else 0.0)) / fs)
        else:
            times.append(i / fs)
    return np.asarray(times)


def interval_rate(x: np.ndarray, fs: float, expected_hz: float) -> tuple[float, float]:
    """(bpm from the median inter-beat interval, relative spread of the intervals)."""
    t = beat_times(x, fs, expected_hz)
    if len(t) < 3:
        return float("nan"), float("nan")
    ibi = np.diff(t)
    med = float(np.median(ibi))
    spread = float(np.median(np.abs(ibi - med)) / med)
    return 60.0 / med, spread

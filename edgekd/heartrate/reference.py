"""Reference heart rates from an ECG: read a text export, find the R-peaks, rate per window.

The text export is the one the shared iBCG recordings come with (and many ECG carts write)::

    ADC Sampling rate (Hz):
    100
    ...
    #I[uV]
    288 199 225 ...
    #II[uV]
    ...

R-peaks: a Pan–Tompkins-style detector in plain numpy (band-pass 5–15 Hz, derivative,
square, 150 ms moving integration, a threshold at 30 % of a robust peak level, a 250 ms
refractory period), each peak refined to the largest |band-passed| sample within ±60 ms.
Beats are never taken from the edges, flat or clipped stretches (an electrode off, a
saturated amplifier) or gross outliers; RR intervals half or double their neighbours'
are dropped. A window's reference rate is 60 / the mean of the clean RR intervals inside it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgekd.errors import EdgekdError
from edgekd.heartrate.signal import butter_bandpass_sos, sosfiltfilt


def read_ecg_text(path: str | Path) -> tuple[float, dict[str, np.ndarray]]:
    """(sampling rate in Hz, {lead name: samples}) from an ECG text export."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise EdgekdError(f"cannot read the ECG file {path} ({exc.strerror})") from None
    fs, leads, current = None, {}, None
    for i, line in enumerate(lines):
        s = line.strip()
        if s.lower().startswith("adc sampling rate") and i + 1 < len(lines):
            try:
                fs = float(lines[i + 1].strip())
            except ValueError:
                raise EdgekdError(f"{path.name}: the sampling rate line does not hold a number") from None
        elif s.startswith("#"):
            current = re.sub(r"\[.*\]$", "", s[1:]).strip()
        elif current and s:
            try:
                leads[current] = np.array([float(v) for v in s.split()])
            except ValueError:
                raise EdgekdError(f"{path.name}: lead {current} holds something that is not a number") from None
            current = None
    if not fs or fs <= 0 or not leads:
        raise EdgekdError(f"{path.name} is not an ECG text export", "expected 'ADC Sampling rate (Hz):' and '#I[uV]' lines")
    return fs, leads


def unusable(ecg: np.ndarray, fs: float, edge_s: float = 0.3) -> np.ndarray:
    """Samples no beat may be taken from: the recording's edges (filter transients), flat or clipped runs
    (an electrode off, the amplifier saturated) and gross outliers, each widened by 0.2 s."""
    n = len(ecg)
    bad = np.zeros(n, bool)
    e = int(round(edge_s * fs))
    bad[:e], bad[n - e :] = True, True
    flat = np.concatenate([[False], np.abs(np.diff(ecg)) < 1e-9])
    run = int(round(0.15 * fs))
    counts = np.convolve(flat.astype(int), np.ones(run, int), mode="same")
    bad |= counts >= run
    med = np.median(ecg)
    mad = np.median(np.abs(ecg - med)) + 1e-9
    bad |= np.abs(ecg - med) > 15 * mad
    widen = int(round(0.2 * fs))
    return np.convolve(bad.astype(int), np.ones(2 * widen + 1, int), mode="same") > 0


def r_peaks(ecg: np.ndarray, fs: float) -> np.ndarray:
    """Times (s) of the R-peaks of one lead, none inside unusable stretches."""
    ecg = np.asarray(ecg, dtype=np.float64)
    if len(ecg) < fs * 2 or not np.isfinite(ecg).all():
        raise EdgekdError("the ECG lead is shorter than 2 s or holds non-numbers")
    bad = unusable(ecg, fs)
    filtered = sosfiltfilt(butter_bandpass_sos(5.0, min(15.0, 0.45 * fs), fs, order=2), ecg - ecg.mean())
    energy = np.diff(filtered, prepend=filtered[0]) ** 2
    k = max(1, int(round(0.15 * fs)))
    integrated = np.convolve(energy, np.ones(k) / k, mode="same")
    integrated[bad] = 0.0
    maxima = np.flatnonzero((integrated[1:-1] > 0) & (integrated[1:-1] >= integrated[:-2])
                            & (integrated[1:-1] >= integrated[2:])) + 1
    if not len(maxima):
        return np.zeros(0)
    # threshold at 30 % of the typical beat's energy (the median of the largest maxima, one per ~0.4 s)
    n_top = max(3, int(len(ecg) / fs / 0.4))
    level = np.median(np.sort(integrated[maxima])[-n_top:])
    refractory = int(round(0.25 * fs))
    candidates = maxima[integrated[maxima] > 0.3 * level]
    peaks: list[int] = []
    for i in candidates[np.argsort(-integrated[candidates])]:
        if all(abs(i - j) >= refractory for j in peaks):
            peaks.append(int(i))
    peaks.sort()
    half = int(round(0.06 * fs))
    refined = [lo + int(np.argmax(np.abs(filtered[lo : i + half + 1]))) for i in peaks for lo in [max(0, i - half)]]
    return np.unique(np.asarray(refined)) / fs


def valid_intervals(beats: np.ndarray, ecg: np.ndarray, fs: float) -> np.ndarray:
    """(start, end) of each RR interval that spans no unusable stretch and is not half or double its neighbours'."""
    if len(beats) < 2:
        return np.zeros((0, 2))
    bad = unusable(ecg, fs)
    iv = np.stack([beats[:-1], beats[1:]], axis=1)
    clean = np.array([not bad[int(a * fs) : int(b * fs) + 1].any() for a, b in iv])
    rr = iv[:, 1] - iv[:, 0]
    med = np.median(rr[clean]) if clean.any() else np.median(rr)
    clean &= (rr > 0.6 * med) & (rr < 1.6 * med)
    return iv[clean]


def rate_between(intervals: np.ndarray, t0: float, t1: float) -> float:
    """60 / mean RR over the clean intervals inside [t0, t1]; NaN with fewer than two."""
    iv = intervals[(intervals[:, 0] >= t0) & (intervals[:, 1] <= t1)] if len(intervals) else intervals
    if len(iv) < 2:
        return float("nan")
    return 60.0 / float(np.mean(iv[:, 1] - iv[:, 0]))


def ecg_reference(path: str | Path, lead: str | None = None) -> dict:
    """Beats, clean RR intervals and whole-recording rate of an ECG text export (lead I by default)."""
    fs, leads = read_ecg_text(path)
    name = lead or ("I" if "I" in leads else next(iter(leads)))
    if name not in leads:
        raise EdgekdError(f"the ECG has no lead {name!r}", f"leads: {', '.join(leads)}")
    beats = r_peaks(leads[name], fs)
    intervals = valid_intervals(beats, leads[name], fs)
    duration = len(leads[name]) / fs
    return {"fs": fs, "lead": name, "duration_s": duration, "beats_s": beats, "intervals_s": intervals,
            "bpm": rate_between(intervals, 0.0, duration), "leads": list(leads)}

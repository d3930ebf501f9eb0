"""Heart-rate signal processing on signals of known frequency (fast, numpy only)."""

import math

import numpy as np
import pytest

from edgekd.errors import EdgekdError
from edgekd.heartrate.fusion import DEFAULT_MIN_SNR_DB, fuse
from edgekd.heartrate.ibcg import ibcg_estimate
from edgekd.heartrate.monitor import HeartRateMonitor
from edgekd.heartrate.rppg import rppg_estimate
from edgekd.heartrate.signal import (
    bandpass,
    butter_bandpass_sos,
    check_band,
    interval_rate,
    sosfiltfilt,
    spectral_rate,
)


def bcg_like(rate_bpm, fs=30.0, seconds=10.0, second_harmonic=0.5, phase=0.3):
    t = np.arange(int(seconds * fs)) / fs
    f = rate_bpm / 60.0
    return np.sin(2 * np.pi * f * t + phase) + second_harmonic * np.sin(4 * np.pi * f * t + 2 * phase)


@pytest.mark.parametrize("fs", [15.0, 30.0])
@pytest.mark.parametrize("order", [1, 2, 4])
def test_butterworth_matches_scipy(fs, order):
    signal = pytest.importorskip("scipy.signal")
    ours = butter_bandpass_sos(0.7, 3.5, fs, order)
    ref = signal.butter(order, [0.7, 3.5], "bandpass", fs=fs, output="sos")
    w = np.linspace(0.01, 3.1, 300)
    _, h_ours = signal.sosfreqz(ours, worN=w)
    _, h_ref = signal.sosfreqz(ref, worN=w)
    np.testing.assert_allclose(np.abs(h_ours), np.abs(h_ref), atol=1e-9)
    x = np.random.default_rng(0).normal(size=(400, 3)) + np.linspace(0, 4, 400)[:, None]
    np.testing.assert_allclose(sosfiltfilt(ours, x), signal.sosfiltfilt(ref, x, axis=0), atol=1e-9)


@pytest.mark.parametrize("rate", [48.0, 63.0, 75.0, 92.0, 118.0, 150.0])
@pytest.mark.parametrize("fs", [15.0, 30.0])
def test_spectral_rate_recovers_known_frequency(rate, fs):
    rng = np.random.default_rng(int(rate))
    x = bcg_like(rate, fs) + 0.3 * rng.normal(size=int(10 * fs))
    est = spectral_rate(bandpass(x, fs), fs)
    assert abs(est.bpm - rate) < 1.0
    assert est.snr_db >= DEFAULT_MIN_SNR_DB


def test_harmonic_check_prefers_the_fundamental():
    # second harmonic stronger than the fundamental (BCG J-wave shapes do this)
    x = bcg_like(60.0, second_harmonic=1.3)
    est = spectral_rate(x, 30.0, harmonic_check=True)
    assert abs(est.bpm - 60.0) < 1.0 and est.harmonic_corrected
    assert abs(spectral_rate(x, 30.0, harmonic_check=False).bpm - 120.0) < 1.0
    # a true 120 bpm pulse with a weak bump at 60 bpm is not halved
    t = np.arange(300) / 30.0
    y = np.sin(2 * np.pi * 2.0 * t) + 0.3 * np.sin(2 * np.pi * 1.0 * t)
    assert abs(spectral_rate(y, 30.0).bpm - 120.0) < 1.0


def test_band_limits_ignore_out_of_band_power():
    fs = 30.0
    t = np.arange(300) / fs
    breathing = 5.0 * np.sin(2 * np.pi * 0.25 * t)  # 15 breaths/min, much stronger than the pulse
    flicker = 3.0 * np.sin(2 * np.pi * 6.0 * t)  # light flicker above the band
    x = breathing + flicker + 0.5 * np.sin(2 * np.pi * 1.3 * t)
    est = spectral_rate(x, fs, band=(0.7, 3.5))
    assert abs(est.bpm - 78.0) < 1.0
    narrow = spectral_rate(np.sin(2 * np.pi * 1.3 * t) + np.sin(2 * np.pi * 2.5 * t), fs, band=(0.7, 2.0))
    assert 42 <= narrow.bpm <= 120


def test_frame_rate_too_low_for_band_is_refused():
    with pytest.raises(ValueError, match="too low"):
        check_band(6.0, (0.7, 3.5))
    check_band(6.0, (0.7, 2.5))
    with pytest.raises(EdgekdError, match="too low"):
        HeartRateMonitor(5.0)
    with pytest.raises(EdgekdError, match="too short"):
        HeartRateMonitor(30.0, window_s=2.0)


def test_noise_is_flagged_low_quality():
    rng = np.random.default_rng(1)
    for fs in (15.0, 30.0):
        snrs = [spectral_rate(bandpass(rng.normal(size=int(10 * fs)), fs), fs).snr_db for _ in range(40)]
        assert max(snrs) < DEFAULT_MIN_SNR_DB
    bpm, snr, source, quality = fuse(80.0, max(snrs), math.nan, -math.inf)
    assert quality == "low" and source == "ibcg"


def test_interval_rate_matches_pulse_train():
    fs = 30.0
    x = bandpass(bcg_like(72.0, fs, seconds=12, second_harmonic=0.6), fs)
    bpm, spread = interval_rate(x, fs, expected_hz=1.2)
    assert abs(bpm - 72.0) < 1.5 and spread < 0.05


def test_fusion_rules():
    assert fuse(70.0, 8.0, 72.0, 8.0)[2:] == ("ibcg+rppg", "good")
    assert abs(fuse(70.0, 8.0, 72.0, 8.0)[0] - 71.0) < 1e-9
    # both pass but disagree: one of them is wrong and nothing says which -> the higher SNR's number, called low
    assert fuse(70.0, 8.0, 110.0, 4.0)[2:] == ("ibcg≠rppg", "low")
    assert fuse(70.0, 8.0, 110.0, 4.0)[0] == 70.0
    assert fuse(70.0, 8.0, 110.0, 1.0)[2:] == ("ibcg", "good")  # rPPG below its threshold: no cross-check
    assert fuse(70.0, -3.0, 110.0, 4.0)[2:] == ("rppg", "good")
    assert fuse(math.nan, -math.inf, math.nan, -math.inf)[2:] == ("none", "low")


def test_ibcg_combines_tracks_and_drops_erratic_ones():
    rng = np.random.default_rng(3)
    fs, T, P = 30.0, 300, 24
    t = np.arange(T) / fs
    head = 0.2 * np.sin(2 * np.pi * 1.25 * t) + 0.07 * np.sin(4 * np.pi * 1.25 * t)  # 75 bpm, 0.2 px
    drift = 0.8 * t[:, None]  # slow downward drift, px
    y = 100 + head[:, None] + drift + 0.15 * rng.normal(size=(T, P))
    y[150:, :3] += 6.0  # three tracker slips
    x = 50 + 0.1 * rng.normal(size=(T, P))
    pos = np.stack([x, y], axis=2)
    ok = np.ones((T, P), bool)
    pos[200:, 5] = np.nan  # one lost track
    ok[200:, 5] = False
    for combine in ("pca", "mean"):
        est, sig = ibcg_estimate(pos, ok, fs, combine=combine)
        assert abs(est.bpm - 75.0) < 1.5, combine
        assert est.snr_db >= DEFAULT_MIN_SNR_DB
        assert not {0, 1, 2, 5} & set(sig.used_tracks.tolist())
    few = ibcg_estimate(pos[:, :2], ok[:, :2], fs)[1]
    assert "only 2 points" in few.reason


def test_pos_recovers_pulse_in_skin_colour():
    rng = np.random.default_rng(4)
    fs = 15.0
    t = np.arange(int(12 * fs)) / fs
    pulse = 0.004 * np.sin(2 * np.pi * 1.4 * t)  # 84 bpm, 0.4% blood-volume modulation
    skin = np.array([180.0, 130.0, 110.0])
    light = 1 + 0.05 * np.sin(2 * np.pi * 0.1 * t)  # slow brightness change, all channels alike
    rgb = skin * light[:, None] * (1 + pulse[:, None] * np.array([0.3, 0.8, 0.5])) + 0.2 * rng.normal(size=(len(t), 3))
    est, _ = rppg_estimate(rgb, fs, algorithm="pos")
    assert abs(est.bpm - 84.0) < 1.5 and est.snr_db >= DEFAULT_MIN_SNR_DB
    est, _ = rppg_estimate(rgb, fs, algorithm="chrom")
    assert abs(est.bpm - 84.0) < 1.5


def test_no_torch_import_in_heartrate():
    from pathlib import Path

    import edgekd.heartrate as hr

    for path in Path(hr.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert "import torch" not in text and "from torch" not in text, path

"""iBCG's head-speed gate machinery: with a threshold set, a nodding head gives no heart rate from motion and a still
one keeps it. The gate ships off (MAX_HEAD_SPEED = inf): benchmarks/heartrate_motion.md found no threshold that stops
every nod without refusing still small faces; these tests hold the machinery to what it claims at a set threshold."""

import numpy as np
import pytest

from edgekd.errors import EdgekdError
from edgekd.heartrate import ibcg
from edgekd.heartrate.ibcg import head_speed
from edgekd.heartrate.pipeline import estimate_from_tracks
from edgekd.heartrate.voluntary import KINDS, voluntary_motion

GATE = 0.05  # region heights per second: between this file's still head and its nods


@pytest.fixture
def gate(monkeypatch):
    monkeypatch.setattr(ibcg, "MAX_HEAD_SPEED", GATE)
    return GATE


def still_head(seconds=40.0, fps=30.0, bpm=84.0, seed=0, points=40):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fps)) / fps
    f = bpm / 60
    recoil = 0.3 * (np.sin(2 * np.pi * f * t) + 0.35 * np.sin(4 * np.pi * f * t)) / 1.35
    sway = 0.7 * np.sin(2 * np.pi * 0.25 * t)
    p0 = np.column_stack([rng.uniform(220, 420, points), rng.uniform(140, 340, points)])
    pos = np.repeat(p0[None], len(t), axis=0)
    pos[:, :, 0] += 0.4 * sway[:, None]
    pos[:, :, 1] += (sway + recoil)[:, None]
    return pos + rng.normal(scale=0.08, size=pos.shape), p0, fps


def nodding(pos, p0, fps, seed=3):
    """Nods at 1.25 Hz (75 /min, in the heart-rate band) of 3 % of the region, through the middle of the recording."""
    t = np.arange(len(pos)) / fps
    out = pos.copy()
    on = (t > 10) & (t < 30)
    out[on, :, 1] += (6.0 * np.sin(2 * np.pi * 1.25 * t[on]))[:, None]
    return out


def _report(tmp_path, pos, fps):
    path = tmp_path / "tracks.npz"
    np.savez(path, positions=pos, fps=fps)
    return estimate_from_tracks(path)


def test_head_speed_separates_a_still_head_from_nodding():
    pos, p0, fps = still_head()
    ok = np.ones(pos.shape[:2], bool)
    still = head_speed(pos[:300], ok[:300], fps)
    assert still < GATE
    moved = pos + voluntary_motion("nod", p0, len(pos), fps, np.random.default_rng(1), scale=200.0)
    fastest = max(head_speed(moved[s:s + 300], ok[s:s + 300], fps) for s in range(0, len(pos) - 300, 30))
    assert fastest > GATE


def test_with_the_gate_set_nodding_at_heart_rate_frequency_is_refused_not_reported(tmp_path, gate, monkeypatch):
    pos, p0, fps = still_head(bpm=84.0)
    calm = _report(tmp_path, pos, fps)
    good = [w for w in calm["windows"] if w["quality"] == "good"]
    assert len(good) > 10 and all(abs(w["bpm"] - 84.0) < 3 for w in good)
    nods = _report(tmp_path, nodding(pos, p0, fps), fps)
    for w in nods["windows"]:
        if w["quality"] == "good":
            assert abs(w["bpm"] - 84.0) <= 5.0, w  # a good window is the heart, never the nod (75 /min)
    refused = [w for w in nods["windows"] if any("head moving" in f for f in w["flags"])]
    assert refused and all(w["head_speed"] > gate for w in refused)
    # with the gate off (as shipped) the nod is read as a heart rate: the gate is what prevents it
    monkeypatch.setattr(ibcg, "MAX_HEAD_SPEED", float("inf"))
    ungated = _report(tmp_path, nodding(pos, p0, fps), fps)
    assert any(w["quality"] == "good" and abs(w["bpm"] - 84.0) > 5 for w in ungated["windows"])
    assert all(np.isfinite(w["head_speed"]) for w in ungated["windows"])  # reported either way


def test_voluntary_motion_generator():
    rng = np.random.default_rng(0)
    p0 = np.column_stack([np.linspace(0, 100, 20), np.linspace(0, 200, 20)])
    for kind in KINDS:
        d = voluntary_motion(kind, p0, 600, 30.0, np.random.default_rng(2), scale=200.0)
        assert d.shape == (600, 20, 2) and np.isfinite(d).all() and np.abs(d).max() > 0.5, kind
    talk = voluntary_motion("talk", p0, 600, 30.0, rng, scale=200.0)
    upper = p0[:, 1] <= np.median(p0[:, 1])
    assert np.abs(talk[:, upper]).max() == 0 and np.abs(talk[:, ~upper]).max() > 0  # only the jaw side moves
    with pytest.raises(EdgekdError, match="unknown voluntary motion"):
        voluntary_motion("dance", p0, 10, 30.0, rng, scale=200.0)

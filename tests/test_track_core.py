"""Fast checks of the tracking maths: loss weighting, sub-pixel fit, error metric, ground truth."""

import numpy as np
import pytest

from edgekd.track.groundtruth import Motion, heartbeat_motion, make_sequence, standard_motions
from edgekd.track.metrics import point_errors, summarize
from edgekd.track.subpixel import quadratic_minimum, refine_minimum
from edgekd.track.train import gaussian_weight


def test_gaussian_weight_values_and_mse_option():
    w = gaussian_weight(31, 5.0)
    assert w[15, 15] == pytest.approx(1.0)
    assert w[15, 20] == pytest.approx(np.exp(-0.5), rel=1e-6)  # one σ from the centre
    assert w[0, 0] == pytest.approx(np.exp(-(15**2 + 15**2) / 50), rel=1e-5)
    assert np.array_equal(gaussian_weight(31, None), np.ones((31, 31), np.float32))


def test_weighted_loss_cares_about_the_centre_not_the_rim():
    torch = pytest.importorskip("torch")
    from edgekd.track.train import weighted_mse

    w = torch.from_numpy(gaussian_weight(31, 5.0))
    target = torch.zeros(1, 3, 31, 31)
    centre, rim = target.clone(), target.clone()
    centre[..., 15, 15] = 1.0
    rim[..., 0, 0] = 1.0
    assert weighted_mse(centre, target, w) > 1e6 * weighted_mse(rim, target, w)
    plain = torch.ones(31, 31)
    assert weighted_mse(centre, target, plain) == pytest.approx(float(weighted_mse(rim, target, plain)))
    assert float(weighted_mse(centre, target, plain)) == pytest.approx(3 / (3 * 31 * 31))


@pytest.mark.parametrize("x0,y0", [(0.3, -0.2), (-0.45, 0.1), (0.0, 0.0)])
def test_quadratic_step_recovers_paraboloid_minimum(x0, y0):
    yy, xx = np.mgrid[-1:2, -1:2].astype(float)
    f = 2.0 * (xx - x0) ** 2 + 3.0 * (yy - y0) ** 2 + 0.5 * (xx - x0) * (yy - y0) + 7.0
    dx, dy = quadratic_minimum(f)
    assert dx == pytest.approx(x0, abs=1e-9) and dy == pytest.approx(y0, abs=1e-9)


def test_quadratic_step_rejects_saddle_and_maximum_and_clips():
    yy, xx = np.mgrid[-1:2, -1:2].astype(float)
    assert quadratic_minimum(xx**2 - yy**2) is None
    assert quadratic_minimum(-(xx**2) - yy**2) is None
    assert quadratic_minimum(np.ones((3, 3))) is None
    dx, dy = quadratic_minimum((xx - 3.0) ** 2 + yy**2)  # far minimum → clipped to ±1
    assert (dx, dy) == (1.0, pytest.approx(0.0, abs=1e-12))


def test_refine_minimum_skips_non_minima_and_borders():
    yy, xx = np.mgrid[0:9, 0:9].astype(float)
    cost = (xx - 5.25) ** 2 + (yy - 3.6) ** 2 + 1.0
    cost[0, 0] = -5.0  # lowest value, but on the border: no 3×3 neighbourhood
    ix, iy, dx, dy, c = refine_minimum(cost)
    assert (ix + dx, iy + dy) == (pytest.approx(5.25), pytest.approx(3.6))
    assert refine_minimum(np.zeros((9, 9))) is None


def test_error_metric_and_failures():
    true = np.zeros((3, 2, 2))
    pred = true.copy()
    pred[1, 0] = (3.0, 4.0)  # 5 px: not a failure (threshold is "> 5")
    pred[2, 0] = (6.0, 0.0)  # failure
    pred[2, 1] = np.nan  # lost → failure, not in the error stats
    assert point_errors(pred, true)[1, 0] == pytest.approx(5.0)
    s = summarize(pred, true)
    assert s["n"] == 4
    assert s["mean_px"] == pytest.approx((5 + 0 + 6) / 3)
    assert s["median_px"] == pytest.approx(5.0)
    assert s["failure_rate"] == pytest.approx(2 / 4)
    assert s["lost_rate"] == pytest.approx(1 / 4)


def _textured(h=120, w=140, seed=0):
    import cv2

    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)).astype(np.float32), (0, 0), 2.0)
    return np.clip((img - img.mean()) * 4 + 128, 0, 255).astype(np.uint8)


def test_integer_translation_moves_pixels_and_points_exactly():
    img = _textured()
    m = Motion("shift", fps=10, translate=lambda t: np.column_stack([5 * t * 10, 3 * t * 10]))
    seq = make_sequence(img, 3, m)
    assert np.array_equal(seq.frames[0], img)
    assert np.array_equal(seq.frames[1][23:100, 25:120], img[20:97, 20:115])
    pts = np.array([[30.0, 40.0], [70.5, 60.25]])
    tp = seq.true_positions(pts)
    assert np.allclose(tp[2], pts + (10, 6))


def test_nonrigid_truth_is_consistent_with_the_rendered_frames():
    """A tiny bright dot must land where true_positions says, under rotation+scale+warp."""
    import cv2

    img = np.zeros((160, 160, 3), np.uint8)
    cv2.circle(img, (70, 90), 4, (255, 255, 255), -1)
    img = cv2.GaussianBlur(img, (0, 0), 2.0)
    m = Motion("mix", fps=10, rotate_deg=lambda t: 6 * t, scale=lambda t: 1 + 0.05 * t, warp_px=3.0, warp_hz=0.25)
    seq = make_sequence(img, 11, m, seed=3)
    truth = seq.true_positions([[70.0, 90.0]])[:, 0]
    for i in (5, 10):
        g = seq.frames[i][..., 0].astype(float)
        ys, xs = np.mgrid[0 : g.shape[0], 0 : g.shape[1]]
        centroid = np.array([(g * xs).sum(), (g * ys).sum()]) / g.sum()
        assert np.linalg.norm(centroid - truth[i]) < 0.2


def test_heartbeat_motion_is_periodic_subpixel_with_drift():
    m = heartbeat_motion(rate_bpm=60, amplitude_px=0.4, fps=30, drift_px_per_s=(0.0, 1.0), harmonics=(1.0,))
    t = np.arange(0, 4, 1 / 30)
    v = m.vertical(t)
    assert np.abs(m.vertical(np.linspace(0, 1, 1001))).max() == pytest.approx(0.4, abs=1e-4)
    assert np.allclose(v[:30], v[30:60], atol=1e-9)  # 1 Hz
    ty = m.translate(t)[:, 1]
    assert np.allclose(ty - v, t)  # the rest is the 1 px/s drift
    assert set(standard_motions()) >= {"translation", "rotation", "scale", "nonrigid", "illumination", "noise", "blur", "heartbeat"}


def test_int8_added_error_is_paired_where_float_tracks():
    from edgekd.track.evaluate import int8_vs_float

    rng = np.random.default_rng(0)
    ref = [rng.uniform(0.1, 0.5, (10, 4)) for _ in range(6)]
    ref[0][:, 0] = 50.0  # a track float has lost: excluded from the paired difference
    q = [r + 0.05 for r in ref]
    q[0][:, 0] = 10.0  # INT8 "improves" it by 40 px, which must not hide the 0.05 px elsewhere
    errors = {"dfe d/model.onnx (onnxruntime)": {"m": ref}, "dfe d/model.int8.onnx (onnxruntime)": {"m": q}}
    r = int8_vs_float(errors, ["m"])["dfe d/model.int8.onnx (onnxruntime)"]
    assert r["reference"] == "dfe d/model.onnx (onnxruntime)"
    assert abs(r["added_px"] - 0.05) < 1e-9 and r["ci95_px"][0] <= 0.05 <= r["ci95_px"][1]
    assert r["n_point_frames"] == 6 * 40 - 10 and r["pooled_added_px"] < 0

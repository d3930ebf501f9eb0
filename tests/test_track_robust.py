"""The robust DFE recipe and the long tracking suite: normalisation, augmentation, variants, failure-counting metrics."""

import numpy as np
import pytest

from edgekd.errors import EdgekdError
from edgekd.track import create_tracker, track_video
from edgekd.track.groundtruth import LONG_GROUPS, Motion, _apply, long_motions, make_sequence
from edgekd.track.metrics import capped_errors, error_vs_time, track_failures
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def face():
    from edgekd.track.groundtruth import face_frame
    from edgekd.track.preprocess import read_image, skin_points

    img, box = face_frame(read_image(shared_path("faces", "stills", "obama.jpg")))
    return img, skin_points(box, 6)


def _dot_image(pt, h=200, w=220):
    yy, xx = np.mgrid[0:h, 0:w]
    g = 255 * np.exp(-((xx - pt[0]) ** 2 + (yy - pt[1]) ** 2) / (2 * 3.0**2))
    return np.repeat(g[..., None], 3, axis=2).astype(np.uint8), xx, yy


@pytest.mark.parametrize("name", ["perspective", "similarity", "motion_blur"])
def test_long_suite_truth_follows_a_rendered_dot(name):
    pt = np.array([[80.4, 120.7]])
    img, xx, yy = _dot_image(pt[0])
    seq = make_sequence(img, 120, long_motions()[name])
    truth = seq.true_positions(_apply(seq.matrices[0], pt))
    for i in range(0, 120, 17):
        f = seq.frames[i, :, :, 0].astype(float)
        w = f * (f > 20)
        centroid = np.array([(w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()])
        assert np.linalg.norm(centroid - truth[i, 0]) < 0.25, (name, i)


def test_moving_light_changes_light_not_geometry_and_codecs_degrade(face):
    img, _ = face
    still = Motion("light", 30.0, shading=long_motions()["moving_light"].shading)
    seq = make_sequence(img, 60, still)
    ratio = seq.frames[45].astype(float) / np.maximum(seq.frames[0].astype(float), 1)
    assert np.ptp(np.percentile(ratio, [5, 95])) > 0.2  # the light differs across the face, not a global gain
    assert np.allclose(seq.matrices, np.eye(3))
    clean = make_sequence(img, 8, Motion("c", 30.0))
    for m in (Motion("j", 30.0, jpeg_quality=30), Motion("v", 30.0, codec="mp4v")):
        lossy = make_sequence(img, 8, m)
        diff = np.abs(lossy.frames.astype(int) - clean.frames.astype(int)).mean()
        assert 0.3 < diff < 12, m.name
    with pytest.raises(EdgekdError, match="cannot encode"):
        make_sequence(img, 3, Motion("x", 30.0, codec="ZZZZ"))


def test_failure_counting_metrics():
    err = np.array([[0.1, 0.2, np.nan], [0.3, 7.0, np.nan], [0.2, 0.1, np.nan], [0.1, 0.1, np.nan]])
    capped = capped_errors(err)
    assert capped[1, 1] == 5.0 and capped[0, 2] == 5.0 and capped[0, 0] == pytest.approx(0.1)
    f = track_failures(err)
    assert f["diverged"] == 2 and f["divergence_rate"] == pytest.approx(2 / 3)
    assert f["mean_frames_to_failure"] == pytest.approx((4 + 2 + 1) / 3)  # a track that never fails counts its length
    assert f["median_frames_to_failure_of_diverged"] == pytest.approx(1.5)
    curve = error_vs_time(err, bins=2)
    assert len(curve) == 2 and curve[0] > curve[1] - 1e-9
    # losing a point can never score better than drifting with it
    assert capped_errors(np.array([np.nan])).mean() >= capped_errors(np.array([4.9])).mean()


def test_local_norm_removes_gain_offset_and_shading_and_grows_the_context():
    torch = pytest.importorskip("torch")
    from edgekd.models import create_model

    model = create_model("dfe_autoencoder", norm_radius=8).eval()
    assert model.encoder.context == 47 and model.encoder.config["norm_radius"] == 8
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(0.3, 0.7, (1, 3, 63, 63)).astype(np.float32))
    lit = x.clone()
    lit[:, 0] = 1.3 * lit[:, 0] + 0.05
    lit[:, 1:] += 0.02  # a colour cast
    with torch.no_grad():
        a, b = model.encoder.norm(x), model.encoder.norm(lit)
        assert a.shape[-1] == 63 - 16
        assert float((a - b).abs().max()) < 0.05 * float(a.abs().max())
        assert model.encoder(x).shape[-1] == 63 - 47 + 1
        assert model(x[..., :47, :47]).shape == (1, 3, 31, 31) and model.target(x[..., :47, :47]).shape == (1, 3, 31, 31)
    plain = create_model("dfe_autoencoder")
    assert plain.encoder.context == 31 and isinstance(plain.encoder.norm, torch.nn.Identity)


def test_augmentation_changes_light_but_never_shifts_the_centre():
    from edgekd.track.augment import augment_crop, geometric

    rng = np.random.default_rng(0)
    img, _, _ = _dot_image((27.0, 27.0), 55, 55)
    out = augment_crop(img, rng, 1.0, 0.0)
    assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
    warped = geometric(img, np.random.default_rng(1)).astype(float)[..., 0]
    yy, xx = np.mgrid[0:55, 0:55]
    w = warped * (warped > 20)
    assert abs((w * xx).sum() / w.sum() - 27) < 0.2 and abs((w * yy).sum() / w.sum() - 27) < 0.2


def test_codec_degrades_the_crop_without_moving_it():
    from edgekd.track.augment import codec

    img, xx, yy = _dot_image((27.0, 27.0), 55, 55)
    for seed in range(5):
        out = codec(img, np.random.default_rng(seed))
        assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
        w = out.astype(float)[..., 1] * (out[..., 1] > 60)
        assert abs((w * xx).sum() / w.sum() - 27) < 0.3 and abs((w * yy).sum() / w.sum() - 27) < 0.3


def test_matching_term_is_low_at_the_true_position_and_high_off_it():
    torch = pytest.importorskip("torch")
    from edgekd.models import create_model
    from edgekd.track.train import crops_from, lab_batch, list_sources, match_loss

    crops = crops_from(list_sources(shared_path("faces", "stills")), 16, np.random.default_rng(0))
    enc = create_model("dfe_encoder", channels=(8, 16, 16, 32, 64), norm_radius=8).eval()
    ref = torch.from_numpy(lab_batch(crops, 47))
    with torch.no_grad():  # the centre candidate of the aligned region is the reference itself; the other region is 1 px off diagonally
        aligned = float(match_loss(enc, ref, torch.from_numpy(lab_batch(crops, 51)), 0.02))
        off = float(match_loss(enc, ref, torch.from_numpy(lab_batch(crops[:, 2:, 2:], 51)), 0.02))
    assert aligned < np.log(25) < off


def test_train_config_rejects_a_matching_window_wider_than_the_crops():
    from edgekd.track.train import TrainConfig

    with pytest.raises(EdgekdError, match="match_radius"):
        TrainConfig(data="x", match_weight=0.1, match_radius=5)  # 8 (normalisation) + 5 > the 12 px margin
    with pytest.raises(EdgekdError, match="temperature"):
        TrainConfig(data="x", match_weight=0.1, match_temperature=0)


@pytest.mark.parametrize("method", ["lk", "ncc", "orb", "dfe"])
def test_every_method_has_anchored_and_chained_modes(method, face):
    pytest.importorskip("torch")
    from edgekd.models import create_model

    img, pts = face
    kw = {"encoder": create_model("dfe_encoder", norm_radius=8)} if method == "dfe" else {}
    seq = make_sequence(img, 6, Motion("shift", fps=1.0, translate=lambda t: np.outer(t, [1.3, -0.6])))
    truth = seq.true_positions(pts)
    for mode in ("anchored", "chained"):
        tracks = track_video(create_tracker(method, reference=mode, **kw), seq.frames, pts)
        assert tracks.shape == truth.shape
        if method != "dfe":  # an untrained encoder follows no face
            assert np.nanmedian(np.linalg.norm(tracks - truth, axis=-1)) < 0.5, mode
    with pytest.raises(EdgekdError, match="reference mode"):
        create_tracker(method, reference="sideways", **kw)


def test_dfe_tracks_a_normalising_encoder_with_its_wider_context(face):
    pytest.importorskip("torch")
    from edgekd.models import create_model

    img, pts = face
    tracker = create_tracker("dfe", encoder=create_model("dfe_encoder", norm_radius=8), reference="anchored")
    assert tracker.context == 47 and tracker.size == 47 + 2 * 3
    with pytest.raises(EdgekdError, match="sub-pixel"):
        create_tracker("dfe", encoder=create_model("dfe_encoder"), subpixel="cubic")


def test_gauss_newton_step_recovers_a_linear_encoding_shift():
    from edgekd.track.subpixel import gauss_newton_offset

    rng = np.random.default_rng(0)
    gx, gy, base = rng.normal(size=(3, 16))
    yy, xx = np.mgrid[-2:3, -2:3].astype(float)
    enc = base[:, None, None] + gx[:, None, None] * xx + gy[:, None, None] * yy  # (C, 5, 5), linear in position
    ref = base + 0.3 * gx - 0.45 * gy  # the encoding at (+0.3, −0.45) from the centre
    dx, dy = gauss_newton_offset(enc, ref, 2, 2)
    assert dx == pytest.approx(0.3, abs=1e-9) and dy == pytest.approx(-0.45, abs=1e-9)
    assert gauss_newton_offset(np.zeros((4, 5, 5)), np.zeros(4), 2, 2) is None


def test_long_eval_counts_failures_and_runs_variants(tmp_path):
    from typer.testing import CliRunner

    from edgekd.cli import app

    out = tmp_path / "long"
    r = CliRunner().invoke(app, ["track", "eval", "--data", str(shared_path("faces")), "--suite", "long", "--frames", "12",
                                 "--images", "1", "--methods", "lk,ncc", "--variants", "anchored,chained",
                                 "--motions", "translation,moving_light", "--out-dir", str(out)])
    assert r.exit_code == 0, r.output
    from edgekd.utils.io import read_json

    res = read_json(out / "results.json")
    assert set(res["methods"]) == {"lk [anchored]", "lk [chained]", "ncc [anchored]", "ncc [chained]"}
    o = res["methods"]["ncc [anchored]"]
    assert o["overall"]["pooled_px"] >= o["overall"]["mean_px"] * (1 - o["overall"]["failure_rate"]) - 1e-9
    assert set(o["per_group"]) == {"rigid", "illumination"} and len(o["overall"]["error_vs_time"]) == 10
    assert (out / "tracking_error_vs_time.png").is_file()
    bad = CliRunner().invoke(app, ["track", "eval", "--data", str(shared_path("faces")), "--suite", "long", "--motions", "warp9",
                                   "--methods", "lk", "--out-dir", str(out)])
    assert bad.exit_code == 2 and "unknown motion" in bad.output
    assert set(LONG_GROUPS["illumination"]) <= set(long_motions())

import numpy as np
import pytest
import torch

from edgekd.data import load_dataset
from edgekd.data.transforms import normalize, random_crop_flip, to_float
from edgekd.distill import ig as ig_mod
from edgekd.distill.ig import IGCache, IGSettings, integrated_gradients, precompute_ig
from edgekd.distill.losses import LossConfig, LossInputs, at_loss, attention_map, kd_div, total_loss
from edgekd.distill.overlay import overlay_ig
from edgekd.distill.trainer import TrainConfig, evaluate, train
from edgekd.errors import EdgekdError
from edgekd.models import create_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def small_teacher():
    torch.manual_seed(0)
    # A real trained-looking network is not needed for alignment: any fixed weights give
    # image-specific attributions. The 7.29x student is a CNN of the same family, fast on CPU.
    return create_model("student", cf=7.29).eval()


def test_ig_cache_is_aligned_with_dataset_indices(digits, small_teacher, tmp_path):
    idx = np.array([5, 17, 3, 250, 99, 1000, 42])  # deliberately unsorted
    s = IGSettings(n_steps=8, internal_batch_size=16, batch_size=3)
    cache = precompute_ig(small_teacher, digits.train.images, digits.train.labels, idx, tmp_path / "ig",
                          digits.mean, digits.std, s, show_progress=False)
    cached_idx, maps = cache.load()
    assert np.array_equal(cached_idx, idx) and maps.dtype == np.float16
    assert np.allclose(np.asarray(maps).reshape(len(idx), -1).max(1), 1.0)  # each map stored scaled to a max of 1
    raw = cache.raw_maps()
    for row, i in enumerate(idx):
        x = normalize(to_float(torch.from_numpy(digits.train.images[i : i + 1])), digits.mean, digits.std)
        alone = integrated_gradients(small_teacher, x, torch.tensor([digits.train.labels[i]]), s)[0].detach().numpy()
        np.testing.assert_allclose(raw[row], alone, rtol=2e-3, atol=1e-3 * alone.max())  # float16 storage
    assert not np.allclose(raw[0], raw[1])  # maps are image-specific


def test_ig_cache_refuses_other_teacher_and_resumes(digits, small_teacher, tmp_path, monkeypatch):
    idx = np.arange(10)
    s = IGSettings(n_steps=4, internal_batch_size=16, batch_size=4)
    args = (digits.train.images, digits.train.labels, idx, tmp_path / "ig", digits.mean, digits.std, s)

    calls = {"n": 0}
    real = ig_mod.integrated_gradients

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the user pressed Ctrl-C during the second chunk
        return real(*a, **k)

    monkeypatch.setattr(ig_mod, "integrated_gradients", flaky)
    with pytest.raises(KeyboardInterrupt):
        precompute_ig(small_teacher, *args, show_progress=False)
    assert not IGCache(tmp_path / "ig").complete
    done = np.load(tmp_path / "ig" / "done.npy")
    assert done.tolist() == [True, False, False]

    calls["n"] = 10  # no more interruptions; count what the resumed run computes
    precompute_ig(small_teacher, *args, show_progress=False)
    assert calls["n"] == 12  # only the two missing chunks were computed
    _, maps = IGCache(tmp_path / "ig").load()
    monkeypatch.setattr(ig_mod, "integrated_gradients", real)
    fresh = precompute_ig(small_teacher, *args[:3], tmp_path / "fresh", *args[4:], show_progress=False).load()[1]
    np.testing.assert_array_equal(np.asarray(maps), np.asarray(fresh))

    other = create_model("student", cf=7.29)  # different random weights
    with pytest.raises(EdgekdError, match="different teacher"):
        precompute_ig(other, *args, show_progress=False)


def test_map_takes_the_same_crop_and_flip_as_its_image():
    g = torch.Generator().manual_seed(0)
    pattern = torch.rand(16, 1, 32, 32)
    images = pattern.expand(16, 3, 32, 32).clone()
    x, m = random_crop_flip(images, pattern, generator=g)
    assert torch.equal(x, m.expand_as(x))
    assert not torch.equal(x, images)  # something did move


def test_overlay_formula():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 3, 4, 4)
    m = torch.rand(8, 1, 4, 4) * 5
    out, chosen = overlay_ig(x, m, p=1.0, power_range=(1.0, 1.0), generator=g)
    assert chosen.all()
    mn = m.flatten(1).min(1).values.view(-1, 1, 1, 1)
    mx = m.flatten(1).max(1).values.view(-1, 1, 1, 1)
    expected = 0.5 * x + 0.5 * ((m - mn) / (mx - mn)).expand_as(x)
    torch.testing.assert_close(out, expected)
    same, none = overlay_ig(x, m, p=0.0, generator=g)
    assert torch.equal(same, x) and not none.any()
    _, some = overlay_ig(torch.rand(4000, 3, 2, 2), torch.rand(4000, 1, 2, 2), p=0.1, generator=g)
    assert 0.07 < some.float().mean() < 0.13


def test_losses():
    z = torch.randn(6, 10)
    assert kd_div(z, z, 2.5).abs() < 1e-6
    zs, zt, T = torch.randn(6, 10), torch.randn(6, 10), 2.5
    pt = torch.softmax(zt / T, 1)
    manual = (pt * (pt.log() - torch.log_softmax(zs / T, 1))).sum(1).mean() * T * T
    torch.testing.assert_close(kd_div(zs, zt, T), manual)
    y = torch.randint(0, 10, (6,))
    f = torch.randn(2, 8, 4, 4)
    assert at_loss(LossInputs(y[:2], zs[:2], None, [f], [f * 3])) < 1e-9  # attention is scale-invariant
    assert torch.allclose(attention_map(f).norm(dim=1), torch.ones(2))
    cfg = LossConfig(weights={"ce": 0.99, "kd": 0.01, "at": 0.8}, params={"temperature": 2.5})
    total, parts = total_loss(cfg, LossInputs(y, zs, zt, [f], [f.flip(-1)]))
    expected = (0.01 * kd_div(zs, zt, 2.5) + 0.99 * torch.nn.functional.cross_entropy(zs, y)
                + 0.8 * at_loss(LossInputs(y, zs, zt, [f], [f.flip(-1)])))
    torch.testing.assert_close(total, expected)
    assert set(parts) == {"ce", "kd", "at"}


def test_modern_logit_losses_are_zero_when_the_student_copies_the_teacher():
    from edgekd.distill.losses import dist_loss, dkd_loss

    y = torch.randint(0, 10, (32,))
    zt = torch.randn(32, 10)
    same = LossInputs(y, zt.clone(), zt)
    assert dist_loss(same) < 1e-5 and dkd_loss(same) < 1e-5
    other = LossInputs(y, torch.randn(32, 10), zt)
    assert dist_loss(other) > 0.1 and dkd_loss(other) > 0.1
    # DIST is invariant to a shift of the student's logits (softmax) — its Pearson terms are to scaling of probs
    shifted = LossInputs(y, zt + 3.0, zt)
    assert dist_loss(shifted) < 1e-5


def test_loss_weights_and_unknown_losses():
    from edgekd.distill.config import loss_config, resolve_config

    cfg = resolve_config("quick", None, {"method": "kd+ig+at", "alpha": 0.1, "gamma": 0.5})
    assert loss_config(cfg).weights == {"ce": 0.9, "kd": 0.1, "at": 0.5}
    cfg = resolve_config("quick", None, {"method": "dist+ig", "loss_weights": {"dist": 2.0}})
    assert loss_config(cfg).weights == {"ce": 1.0, "dist": 2.0}
    with pytest.raises(EdgekdError, match="unknown loss 'magic'"):
        resolve_config("quick", None, {"loss_weights": {"magic": 1.0}})
    with pytest.raises(EdgekdError, match="unknown method"):
        resolve_config("quick", None, {"method": "kd+magic"})


def test_training_learns_and_resumes_exactly(digits, tmp_path):
    train_set, val_set = digits.train.subset(np.arange(320)), digits.train.subset(np.arange(320, 420))
    teacher = create_model("student", cf=7.29).eval()
    cfg = TrainConfig(epochs=2, lr=3e-3, seed=7, precise_bn_images=256,
                      loss=LossConfig(weights={"ce": 0.99, "kd": 0.01, "at": 0.8}))
    maps = np.random.default_rng(0).random((320, 32, 32), dtype=np.float32)
    pairs = [("features.3", "features.3"), ("features.6", "features.6")]

    def fresh():
        torch.manual_seed(0)
        return create_model("student", cf=28.97)

    full = fresh()
    r_full = train(full, train_set, val_set, digits.mean, digits.std, cfg, teacher=teacher, ig_maps=maps,
                   at_pairs=pairs, checkpoint=tmp_path / "full.ckpt", show_progress=False)
    assert r_full.history[-1]["train_ce"] < r_full.history[0]["train_ce"]
    assert r_full.best_val_acc > 20  # 10 classes: chance is 10 %

    # Interrupt after epoch 1 (a 1-epoch run writes the same checkpoint), then resume to 2.
    half = fresh()
    cfg1 = TrainConfig(**{**cfg.__dict__, "epochs": 2})
    ck = tmp_path / "resumed.ckpt"
    import edgekd.distill.trainer as tr

    real_eval, seen = tr.evaluate, {"n": 0}

    def stop_after_first(*a, **k):
        seen["n"] += 1
        if seen["n"] == 2:
            raise KeyboardInterrupt
        return real_eval(*a, **k)

    tr.evaluate = stop_after_first
    try:
        with pytest.raises(KeyboardInterrupt):
            train(half, train_set, val_set, digits.mean, digits.std, cfg1, teacher=teacher, ig_maps=maps,
                  at_pairs=pairs, checkpoint=ck, show_progress=False)
    finally:
        tr.evaluate = real_eval
    resumed = fresh()
    r_res = train(resumed, train_set, val_set, digits.mean, digits.std, cfg1, teacher=teacher, ig_maps=maps,
                  at_pairs=pairs, checkpoint=ck, show_progress=False)
    assert [h["val_acc"] for h in r_res.history] == [h["val_acc"] for h in r_full.history]
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k

    with pytest.raises(EdgekdError, match="other settings"):
        train(fresh(), train_set, val_set, digits.mean, digits.std, TrainConfig(epochs=3), checkpoint=ck,
              show_progress=False)
    assert evaluate(full, val_set, digits.mean, digits.std) == r_full.best_val_acc


def test_teacher_scores_are_cached_per_weights_and_images(tmp_path, monkeypatch):
    import edgekd.distill.pipeline as pipeline
    from edgekd.data import load_dataset
    from edgekd.models import create_model

    monkeypatch.setenv("EDGEKD_CACHE", str(tmp_path))
    data = load_dataset("digits", show_progress=False)
    teacher = create_model("student", cf=1121.71, num_classes=10).eval()
    calls = []
    real = pipeline.evaluate
    monkeypatch.setattr(pipeline, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    args = (data.mean, data.std, "cpu")
    first = pipeline.teacher_accuracy(teacher, "val", data.train, np.arange(100), *args)
    again = pipeline.teacher_accuracy(teacher, "val", data.train, np.arange(100), *args)
    other = pipeline.teacher_accuracy(teacher, "val", data.train, np.arange(100, 200), *args)
    assert first == again and len(calls) == 2  # the second call is read from the cache
    assert other == real(teacher, data.train.subset(np.arange(100, 200)), *args)
    with torch.no_grad():
        next(teacher.parameters()).add_(1.0)  # other weights: scored afresh
    pipeline.teacher_accuracy(teacher, "val", data.train, np.arange(100), *args)
    assert len(calls) == 3

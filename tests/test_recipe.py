"""The cpu preset's student recipe on a tiny budget: fast recipe, KD as function matching, IG steps chosen
by completeness, input mixing, and the wall time of every stage in report.json and the card."""

import json

import numpy as np
import pytest
import torch

from edgekd.distill.config import resolve_config
from edgekd.distill.ig import IGSettings, choose_steps, completeness_error
from edgekd.distill.losses import LossInputs, ce_loss
from edgekd.distill.pipeline import compress
from edgekd.distill.recipes import student_train_config
from edgekd.data.dataset import ImageSet
from edgekd.data.transforms import normalize
from edgekd.distill.losses import LossConfig
from edgekd.distill.trainer import (TrainConfig, cached_teacher_logits, get_batch, mirror_logits, mix_batch,
                                   teacher_logits, train, tta_logits)
from edgekd.errors import EdgekdError
from edgekd.models import create_model


def test_cpu_preset_end_to_end_on_a_tiny_budget(tmp_path):
    out = tmp_path / "run"
    rep = compress(dict(preset="cpu", data="digits", train_subset=300, epochs=2, teacher_epochs=1, threads=1,
                        out=str(out), formats="onnx", gate_pp=100.0, name="tiny", mix="cutmix", teacher_targets="online"),
                   show_progress=False, log=lambda _m: None)
    s, hp = rep["student"], rep["hyperparameters"]
    assert s["arch"] == "airbench_x0_5" and s["params"] < 600_000
    assert s["init"]["from"] == "teacher" and hp["student_init"] == "auto"  # started from the teacher's channels
    # airbench's recipe with the method's losses: SGD, triangular schedule, KD and CE both weighted
    assert hp["recipe"] == "fast" and hp["optimizer"] == "sgd" and hp["schedule"] == "triangle"
    assert hp["mix"] == "cutmix" and rep["losses"] == pytest.approx({"ce": 0.2, "kd": 0.8})
    assert hp["teacher_targets"] == "online" and resolve_config("cpu").teacher_targets == "cached"
    history = s["history"]
    assert len(history) == 2 and history[0]["train_kd"] > 0 and history[0]["train_ce"] > 0
    # IG steps chosen on validation images by completeness, recorded with the errors that chose them
    ig = rep["ig"]
    assert ig["n_steps"] in (4, 8, 16, 32, 50) and ig["chosen_by"].startswith("completeness")
    tolerance = resolve_config("cpu").ig_tolerance
    errors = {int(k): v for k, v in ig["completeness_median"].items()}
    assert errors[ig["n_steps"]] <= tolerance or ig["n_steps"] == 50
    assert all(e > tolerance for n, e in errors.items() if n < ig["n_steps"])
    # every stage's wall time, in the report and in the card
    for stage in ("data_s", "teacher_s", "ig_s", "student_s", "export_s", "total_s"):
        assert rep["timings"][stage] >= 0
    card = json.loads((out / "export" / "tiny" / "card.json").read_text())
    assert card["cost"]["wall_s"]["export_s"] == rep["timings"]["export_s"]
    assert "## Cost" in (out / "export" / "tiny" / "card.md").read_text()
    # a resumed run keeps the step count it chose and reuses the maps
    again = compress(dict(preset="cpu", data="digits", train_subset=300, epochs=2, teacher_epochs=1, threads=1,
                          out=str(out), export=False, mix="cutmix", teacher_targets="online"), show_progress=False,
                     log=lambda _m: None)
    assert again["ig"]["n_steps"] == ig["n_steps"] and again["student"]["test_acc"] == s["test_acc"]


def test_fast_recipe_takes_the_methods_losses():
    cfg = resolve_config("cpu", overrides={"method": "kd", "alpha": 0.8, "temperature": 1.5, "epochs": 3})
    tc = student_train_config(cfg, 45_000)
    assert tc.batch_size == 1024 and tc.lookahead and tc.flip == "alternating" and tc.epochs == 3
    assert tc.loss.weights == pytest.approx({"ce": 0.2, "kd": 0.8}) and tc.loss.params["temperature"] == 1.5
    small = student_train_config(cfg, 1_000)
    assert small.batch_size == 64 and small.lr < tc.lr  # airbench's lr per example, scaled to the batch
    plain = student_train_config(resolve_config("quick"), 5_000)
    assert plain.optimizer == "adam" and plain.batch_size == 64
    # --batch-size reaches the fast recipe too, at airbench's per-example learning rate
    quarter = student_train_config(resolve_config("cpu", overrides={"batch_size": 256}), 45_000)
    assert quarter.batch_size == 256 and quarter.lr == pytest.approx(tc.lr / 4)
    assert student_train_config(resolve_config("cpu", overrides={"recipe": "plain"}), 45_000).batch_size == 64
    with pytest.raises(EdgekdError, match="batch_size must be ≥ 0"):
        resolve_config("cpu", overrides={"batch_size": -1})


def test_teacher_label_smoothing_is_the_recipes_unless_set():
    from edgekd.distill.pipeline import _teacher_settings
    from edgekd.distill.recipes import teacher_train_config

    cfg = resolve_config("cpu")
    assert teacher_train_config(cfg, 45_000).loss.params["label_smoothing"] == 0.2  # airbench's
    plain = resolve_config("cpu", overrides={"teacher_label_smoothing": 0.0})
    assert teacher_train_config(plain, 45_000).loss.params["label_smoothing"] == 0.0
    assert "teacher_label_smoothing" not in _teacher_settings(cfg)  # teachers cached before it keep their key
    assert _teacher_settings(plain)["teacher_label_smoothing"] == 0.0
    with pytest.raises(EdgekdError, match="teacher_label_smoothing must be ≤ 1"):
        resolve_config("cpu", overrides={"teacher_label_smoothing": 1.5})
    with pytest.raises(EdgekdError, match="unknown recipe"):
        resolve_config("cpu", overrides={"recipe": "slow"})
    with pytest.raises(EdgekdError, match="unknown mix"):
        resolve_config("cpu", overrides={"mix": "mosaic"})


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixing_is_reproducible_and_the_labels_follow_the_pixels(kind):
    x = torch.stack([torch.full((3, 8, 8), float(i)) for i in range(4)])
    y = torch.arange(4)
    cfg = TrainConfig(mix=kind, mix_alpha=1.0)
    a, (y2, lam) = mix_batch(x, y, cfg, torch.Generator().manual_seed(3))
    b, (_, lam_b) = mix_batch(x, y, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and lam == lam_b and torch.equal(y2, y.flip(0)) and 0 <= lam <= 1
    # each mixed image is lam of its own pixels and 1 − lam of its partner's, on average
    assert torch.allclose(a.mean((1, 2, 3)), lam * y.float() + (1 - lam) * y2.float(), atol=1e-5)
    assert mix_batch(x, y, TrainConfig(), torch.Generator())[1] is None


def _tiny_set(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return ImageSet(rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8), rng.integers(0, 3, n), ["a", "b", "c"])


@pytest.mark.parametrize("flip", ["alternating", "random"])
def test_cached_teacher_targets_are_the_teachers_logits_of_the_view_and_overlays_are_scored_online(flip):
    torch.manual_seed(0)
    teacher = create_model("airbench", num_classes=3, width_mult=0.25).eval()
    data, mean, std = _tiny_set(), [0.5] * 3, [0.25] * 3
    cache = mirror_logits(teacher, data, mean, std, torch.device("cpu"), "off", show_progress=False)
    assert cache.shape == (12, 2, 3)
    idx = np.array([5, 0, 7, 3, 11, 2])
    bits = np.random.default_rng(0).integers(0, 2, len(data))
    # no translation: every cached target is exactly the teacher's logits of the image the student sees
    cfg = TrainConfig(crop_pad=0, flip=flip, teacher_targets="cached")
    for epoch in (0, 1):
        batch = get_batch(data, idx, cfg, torch.Generator().manual_seed(epoch), epoch, bits)
        assert batch.flipped is not None and batch.overlaid is None
        x = normalize(batch.x, mean, std)
        with torch.no_grad():
            assert torch.allclose(cached_teacher_logits(teacher, cache, idx, batch, x), teacher(x), atol=1e-5)
    # IG-overlaid images are not in the cache: the teacher scores them as the student sees them
    maps = np.random.default_rng(1).random((len(data), 16, 16)).astype(np.float32)
    cfg = TrainConfig(crop_pad=2, pad_mode="reflect", flip=flip, teacher_targets="cached", ig_p=0.5)
    batch = get_batch(data, idx, cfg, torch.Generator().manual_seed(4), 0, bits, ig_maps=maps)
    assert 0 < int(batch.overlaid.sum()) < len(idx)
    x = normalize(batch.x, mean, std)
    targets = cached_teacher_logits(teacher, cache, idx, batch, x)
    with torch.no_grad():
        online = teacher(x)
    assert torch.allclose(targets[batch.overlaid], online[batch.overlaid], atol=1e-5)
    assert not torch.allclose(targets[~batch.overlaid], online[~batch.overlaid], atol=1e-3)  # translated views


def test_cached_teacher_targets_train_and_refuse_what_needs_the_teacher_every_batch():
    torch.manual_seed(0)
    teacher = create_model("airbench", num_classes=3, width_mult=0.25).eval()
    data, mean, std = _tiny_set(32), [0.5] * 3, [0.25] * 3
    kd = LossConfig(weights={"ce": 0.5, "kd": 0.5}, params={"temperature": 2.0})
    cfg = TrainConfig(epochs=1, batch_size=16, teacher_targets="cached", loss=kd, precise_bn_images=0)
    result = train(create_model("airbench", num_classes=3, width_mult=0.25), data, data, mean, std, cfg,
                   teacher=teacher, show_progress=False)
    assert np.isfinite(result.history[0]["train_kd"]) and result.history[0]["train_kd"] > 0
    for bad in (dict(mix="mixup"), dict(teacher_targets="sometimes")):
        with pytest.raises(EdgekdError, match="teacher_targets"):
            train(create_model("airbench", num_classes=3, width_mult=0.25), data, data, mean, std,
                  TrainConfig(**{**vars(cfg), **bad}), teacher=teacher, show_progress=False)
    with pytest.raises(EdgekdError, match="teacher_targets"):
        resolve_config("cpu", overrides={"teacher_targets": "precomputed"})
    for bad in ({"mix": "mixup"}, {"method": "kd+at"}):  # refused before any work, with the flag that fixes it
        with pytest.raises(EdgekdError, match="--teacher-targets online"):
            resolve_config("cpu", overrides=bad)


@pytest.mark.parametrize("level", [1, 2])
def test_teacher_tta_targets_are_the_teachers_augmented_logits_cached_or_online(level):
    torch.manual_seed(0)
    teacher = create_model("airbench", num_classes=3, width_mult=0.25).eval()
    data, mean, std = _tiny_set(), [0.5] * 3, [0.25] * 3
    cache = mirror_logits(teacher, data, mean, std, torch.device("cpu"), "off", show_progress=False, tta=level)
    plain = mirror_logits(teacher, data, mean, std, torch.device("cpu"), "off", show_progress=False)
    x = normalize(torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 255, mean, std)
    with torch.no_grad():
        assert torch.allclose(cache[:, 0], tta_logits(teacher, x, level), atol=1e-5)
        assert torch.allclose(cache[:, 1], tta_logits(teacher, x.flip(-1), level), atol=1e-5)
        if level == 1:  # the mirror ensemble: the mean of the plain cache's two columns, whichever view is seen
            assert torch.allclose(cache[:, 0], plain.mean(1), atol=1e-5)
        assert not torch.allclose(cache[:, 0], plain[:, 0], atol=1e-3)
        # online (and IG-overlaid images under a cache) take the same augmented logits of the batch
        assert torch.allclose(teacher_logits(teacher, x, chunk=5, tta=level), tta_logits(teacher, x, level), atol=1e-5)
    kd = LossConfig(weights={"ce": 0.5, "kd": 0.5}, params={"temperature": 2.0})
    for targets in ("cached", "online"):
        result = train(create_model("airbench", num_classes=3, width_mult=0.25), _tiny_set(32), _tiny_set(32), mean,
                       std, TrainConfig(epochs=1, batch_size=16, teacher_targets=targets, teacher_tta=level, loss=kd,
                                        precise_bn_images=0), teacher=teacher, show_progress=False)
        assert np.isfinite(result.history[0]["train_kd"]) and result.history[0]["train_kd"] > 0
    with pytest.raises(EdgekdError, match="teacher_tta"):
        resolve_config("cpu", overrides={"teacher_tta": 3})
    with pytest.raises(EdgekdError, match="teacher_tta"):
        resolve_config("cpu", overrides={"teacher_tta": 1, "method": "kd+at", "teacher_targets": "online"})


def test_ce_with_mixed_labels():
    logits = torch.randn(5, 3)
    y, y2 = torch.tensor([0, 1, 2, 0, 1]), torch.tensor([2, 2, 0, 1, 0])
    mixed = ce_loss(LossInputs(y, logits, mixed_labels=y2, mix_weight=0.3))
    expected = 0.3 * torch.nn.functional.cross_entropy(logits, y) + 0.7 * torch.nn.functional.cross_entropy(logits, y2)
    assert mixed.item() == pytest.approx(expected.item(), rel=1e-6)


def test_completeness_error_shrinks_with_steps_and_chooses_the_fewest():
    torch.manual_seed(0)
    model = create_model("airbench", width_mult=0.25).eval()
    x, y = torch.randn(6, 3, 32, 32), torch.randint(0, 10, (6,))
    coarse = np.median(completeness_error(model, x, y, IGSettings(n_steps=2)))
    fine = np.median(completeness_error(model, x, y, IGSettings(n_steps=32)))
    assert fine < coarse
    steps, errors = choose_steps(model, x, y, tolerance=float(fine) * 1.01, candidates=(2, 32, 64))
    assert steps in (2, 32) and errors[steps] <= fine * 1.01 and list(errors)[-1] == steps
    steps, errors = choose_steps(model, x, y, tolerance=1e-12, candidates=(2, 4))
    assert steps == 4 and set(errors) == {2, 4}  # none within tolerance: the most steps tried


def test_fast_recipe_speeds_up_only_the_norm_shifts_of_any_student():
    from edgekd.distill.trainer import make_optimizer

    cfg = student_train_config(resolve_config("cpu"), 45_000)
    model = create_model("resnet20")  # learnable BatchNorm scales, unlike airbench's
    fast, base = make_optimizer(model, cfg).param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert fast["lr"] == pytest.approx(64 * base["lr"])
    assert {names[id(p)].rsplit(".", 1)[-1] for p in fast["params"]} == {"bias"}
    assert names[id(model.stem[1].weight)] in {names[id(p)] for p in base["params"]}  # a norm scale: base rate
    assert "fc.bias" in {names[id(p)] for p in base["params"]}  # not a norm: base rate


def test_a_student_family_changes_the_fast_recipe_through_its_registry_entry():
    from edgekd.models.registry import get_default_cfg

    # (students trained from scratch; one started from its teacher takes a fraction of these, test_prune.py)
    airbench = student_train_config(resolve_config("cpu"), 45_000, from_teacher=False)
    resnet = student_train_config(resolve_config("cpu", overrides={"student_arch": "resnet20"}), 45_000,
                                  from_teacher=False)
    scale = get_default_cfg("resnet20")["fast_recipe"]["lr_scale"]
    assert 0 < scale < 1 and get_default_cfg("airbench_x0_5")["fast_recipe"] == {}
    # airbench's rates diverge on a ResNet (benchmarks/students_converged.md): a smaller rate, plain norm shifts
    assert resnet.lr == pytest.approx(airbench.lr * scale) and resnet.norm_bias_lr_scale == 1.0
    assert airbench.norm_bias_lr_scale == 64.0
    mine = student_train_config(resolve_config("cpu", overrides={"student_arch": "resnet20", "lr_scale": 0.5}), 45_000,
                                from_teacher=False)
    assert mine.lr == pytest.approx(airbench.lr * 0.5)  # --lr-scale wins over the registry
    with pytest.raises(EdgekdError, match="lr_scale must be ≥ 0"):
        resolve_config("cpu", overrides={"lr_scale": -1.0})

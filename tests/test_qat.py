"""Quantisation-aware fine-tuning for ONNX INT8: the simulation is the file, and the export ships the better one."""

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.convert.classifier import LabelledImages, agreement, export_classifier, file_logits, torch_logits
from edgekd.convert.onnx import export_onnx, quantize_onnx_int8
from edgekd.convert.qat import FakeQuant, FinetuneConfig, QATUnavailable, finetune, match_sites, plan_from_qdq


def _training(exported) -> LabelledImages:
    d = exported["data"]
    return LabelledImages(d.train.images[:1100], d.train.labels[:1100], "training")


def test_simulation_reproduces_the_onnx_runtime_int8_file(exported):
    """PyTorch with the plan attached computes what ONNX Runtime computes from the INT8 file — far closer to it than
    the float model is — and taking the plan off restores the float model exactly."""
    model, spec, out, test = exported["model"].eval(), exported["spec"], exported["out"], exported["test"]
    plan = match_sites(plan_from_qdq(out / "model.int8.onnx"), model, out / "model.onnx",
                       spec.preprocess(exported["data"].train.images[:8]), spec.name)
    assert plan.activations and plan.layers and all(a.site for a in plan.activations)
    file = file_logits(out / "model.int8.onnx", spec, test.images)
    float_logits = torch_logits(model, spec, test.images)
    simulated_model = copy.deepcopy(model)
    fake = FakeQuant(simulated_model, plan)
    simulated = torch_logits(simulated_model, spec, test.images)
    assert agreement(simulated, file)["top1_agreement"] >= 0.99
    assert np.abs(simulated - file).mean() < 0.25 * np.abs(float_logits - file).mean()
    fake.remove()
    assert np.array_equal(torch_logits(simulated_model, spec, test.images), float_logits)


def test_finetune_moves_the_simulated_model_towards_the_float_one(exported):
    model, spec, out, val = exported["model"].eval(), exported["spec"], exported["out"], exported["val"]
    plan = match_sites(plan_from_qdq(out / "model.int8.onnx"), model, out / "model.onnx",
                       spec.preprocess(exported["data"].train.images[:8]), spec.name)
    train = _training(exported)
    tuned, stats = finetune(model, plan, spec, train.images, train.labels, FinetuneConfig(steps=40, batch_size=64))
    assert stats["steps"] == 40 and np.isfinite(stats["final_loss"])
    reference = torch_logits(model, spec, train.images[:512])

    def kl_to_float(candidate) -> float:
        simulated = copy.deepcopy(candidate)
        FakeQuant(simulated, plan)
        logits = torch.from_numpy(torch_logits(simulated, spec, train.images[:512]))
        return float(nn.functional.kl_div(logits.log_softmax(1), torch.from_numpy(reference).log_softmax(1),
                                          log_target=True, reduction="batchmean"))

    assert kl_to_float(tuned) < kl_to_float(model)
    assert not any("parametrizations" in name for name, _ in tuned.named_parameters())  # fake quantisers taken off


def test_export_with_qat_ships_the_better_file_and_says_so(exported, tmp_path):
    model, spec, d = exported["model"].eval(), exported["spec"], exported["data"]
    card = export_classifier(model, spec, tmp_path, d.train.images[:256], exported["val"], exported["test"],
                             formats="onnx,onnx-int8", gate_pp=3.0, card_info={"name": "qat"}, log=lambda m: None,
                             robustness_images=0, qat="on", qat_images=_training(exported), qat_steps=40)
    row = card["formats"]["onnx-int8"]
    qat = row["qat"]
    assert qat["status"] in ("shipped", "not better") and qat["steps"] == 40 and qat["seconds"] > 0
    assert qat["split"] == "validation" and 0 < qat["qat"]["agreement"] <= 1
    shipped = qat["qat"] if qat["status"] == "shipped" else qat["post-training"]
    other = qat["post-training"] if qat["status"] == "shipped" else qat["qat"]
    assert shipped["agreement"] >= other["agreement"] or shipped["drop_pp"] < other["drop_pp"]
    val = exported["val"]
    measured = agreement(file_logits(tmp_path / "model.int8.onnx", spec, val.images),
                         torch_logits(model, spec, val.images))["top1_agreement"]
    assert measured == pytest.approx(shipped["agreement"])  # the file on disk is the one the card describes
    assert not list(tmp_path.glob("*.tmp.onnx"))
    assert "QAT (40 steps" in (tmp_path / "card.md").read_text()
    assert json.loads((tmp_path / "card.json").read_text())["formats"]["onnx-int8"]["qat"]["status"] == qat["status"]


def test_qat_auto_runs_only_below_the_agreement_target(exported, tmp_path):
    model, spec, d = exported["model"].eval(), exported["spec"], exported["data"]
    card = export_classifier(model, spec, tmp_path, d.train.images[:256], exported["val"], exported["test"],
                             formats="onnx-int8", gate_pp=3.0, card_info={"name": "qat"}, log=lambda m: None,
                             robustness_images=0, qat="auto", qat_images=_training(exported), agreement_target=0.5)
    assert card["formats"]["onnx-int8"]["qat"]["status"] == "not needed"
    assert "QAT not needed" in (tmp_path / "card.md").read_text()


class FunctionalRelu(nn.Module):
    """A ReLU written as a function call: no module carries its output, so the file cannot be simulated."""

    def __init__(self):
        super().__init__()
        self.conv, self.norm = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(8, 10)

    def forward(self, x):
        x = nn.functional.relu(self.norm(self.conv(x)))
        return self.fc(torch.flatten(self.pool(x) * 2.0, 1))


def test_a_model_the_simulation_cannot_cover_keeps_its_post_training_file(exported, tmp_path):
    torch.manual_seed(0)
    model, spec, d = FunctionalRelu().eval(), exported["spec"], exported["data"]
    calib = spec.preprocess(d.train.images[:64])
    export_onnx(model, spec, tmp_path / "f.onnx")
    quantize_onnx_int8(tmp_path / "f.onnx", tmp_path / "q.onnx", calib)
    with pytest.raises(QATUnavailable, match="match no PyTorch module"):
        match_sites(plan_from_qdq(tmp_path / "q.onnx"), model, tmp_path / "f.onnx", calib[:8], spec.name)
    card = export_classifier(model, spec, tmp_path / "export", d.train.images[:256], exported["val"], exported["test"],
                             formats="onnx-int8", gate_pp=100.0, card_info={"name": "functional"}, log=lambda m: None,
                             robustness_images=0, qat="on", qat_images=_training(exported), qat_steps=5)
    row = card["formats"]["onnx-int8"]
    assert row["status"] == "ok" and row["qat"]["status"] == "unavailable" and "F.relu" in row["qat"]["reason"]


def test_unknown_qat_mode_is_refused(exported, tmp_path):
    from edgekd.errors import EdgekdError

    with pytest.raises(EdgekdError, match="unknown QAT mode"):
        export_classifier(exported["model"].eval(), exported["spec"], tmp_path, exported["data"].train.images[:64],
                          exported["val"], exported["test"], formats="onnx-int8", gate_pp=3.0, log=lambda m: None,
                          robustness_images=0, qat="sometimes")


def test_quantiser_overrides_pin_the_scales(exported, tmp_path):
    """Re-quantising with the plan's overrides reproduces the post-training file's activation scales."""
    out, spec = exported["out"], exported["spec"]
    plan = plan_from_qdq(out / "model.int8.onnx")
    calib = spec.preprocess(exported["data"].train.images[256:320])  # other images: unpinned scales would move
    quantize_onnx_int8(out / "model.onnx", tmp_path / "pinned.onnx", calib, tensor_overrides=plan.overrides(),
                       reduce_range=plan.weight_qmax == 64)
    again = {a.tensor: (a.scale, a.zero_point) for a in plan_from_qdq(tmp_path / "pinned.onnx").activations}
    assert again == {a.tensor: (a.scale, a.zero_point) for a in plan.activations}

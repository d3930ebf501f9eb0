"""Export a classifier, gate every exported file on accuracy, and write its model card.

Every file is evaluated with the runtime that will run it on the device, streamed in
batches (a 10k-image test split never sits in memory as one float tensor). Choices are
made on a *selection* split the model was not trained on (the run's validation split, or
the held-out split the user names); the test split is scored once per format for the card,
and top-1 agreement with PyTorch is measured on the whole test split.

- TFLite INT8: full-integer candidates are built — ai-edge-quantizer (every op int8),
  litert-torch PT2E with min-max activation ranges, and PT2E with histogram ranges when
  neither of those is within the gate — and, among those within the gate on the
  selection split, the one that agrees best with PyTorch is kept (agreement counts
  flipped predictions, so it varies less than an accuracy difference on a few hundred
  images: on a weak digits student ai-edge-quantizer matched fp32 accuracy on 195
  validation images yet lost 4–6 pp on test, benchmarks/export_robustness.md).
- ONNX INT8: MinMax or percentile activation ranges, whichever agrees better with PyTorch on the
  selection split among those within the gate (the same file otherwise: only the scales differ).
- ONNX INT8 gets 7-bit weights (``reduce_range``) when the exporting machine is an x86 CPU
  without VNNI: there ONNX Runtime's U8S8 kernels saturate with 8-bit weights (a digits
  ResNet-8: 94.4 % top-1 agreement with PyTorch at 8 bits, 99.7 % at 7 bits, on an AVX2-only
  AMD EPYC), and the gate is measured on this machine. Choosing on the selection split
  instead was tried and is too noisy on small splits (90 images: 8-bit looked better, lost on test).
- ONNX INT8 may then be fine-tuned (``qat``, :mod:`edgekd.convert.qat`): against an exact PyTorch simulation of
  the post-training file, re-quantised with its scales; the fine-tuned file ships only if it agrees better with
  PyTorch on the selection split.
- If an INT8 file still loses more than ``gate_pp`` on the selection split, its most
  sensitive parts are kept in float, 1, 2, 4 and 8 at a time: ONNX nodes ranked by ONNX
  Runtime's QDQ debugger; TFLite modules ranked by a PyTorch fake-quantisation probe.
- A model whose outputs are not finite is refused before anything is exported.
If a file still fails the gate on test, the card records it and :class:`GateFailed` is raised.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgekd.convert.card import write_card
from edgekd.convert.export import export_model
from edgekd.convert.onnx import saturates_8bit_weights
from edgekd.convert.runners import Predictor
from edgekd.convert.spec import InputSpec
from edgekd.data.corruptions import CORRUPTIONS, SEVERITY_SOURCE, corrupt, evenly_spaced
from edgekd.data.dataset import IndexedArray
from edgekd.errors import EdgekdError
from edgekd.formats import QAT_MODES
from edgekd.utils.io import sha256_file
from edgekd.utils.system import kernels_here

N_SAMPLES = 64  # real training images stored beside the model for benchmarks and examples
BATCH = 256
MAX_FLOAT_PARTS = 8  # retries keep at most this many nodes / modules in float (1, 2, 4, 8): bounded export time


class GateFailed(EdgekdError):
    pass


@dataclass
class LabelledImages:
    images: object  # uint8 (N, H, W, 3): an array, a memmap or an IndexedArray view
    labels: np.ndarray
    name: str = "validation"

    def __len__(self) -> int:
        return len(self.labels)


def torch_logits(model, spec: InputSpec, images, batch: int = BATCH) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for lo in range(0, len(images), batch):
            out.append(model(torch.from_numpy(spec.preprocess(np.asarray(images[lo : lo + batch])))).float().numpy())
    return np.concatenate(out)


def file_logits(path: Path, spec: InputSpec, images, batch: int = BATCH) -> np.ndarray:
    predictor = Predictor(path)
    return np.concatenate([predictor(spec.preprocess(np.asarray(images[lo : lo + batch])))
                           for lo in range(0, len(images), batch)])


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return 100.0 * float((logits.argmax(1) == labels).mean())


def agreement(logits: np.ndarray, reference: np.ndarray) -> dict:
    d = np.abs(logits - reference)
    return {"max_abs_diff": float(d.max()), "mean_abs_diff": float(d.mean()),
            "top1_agreement": float((logits.argmax(1) == reference.argmax(1)).mean())}


def corruption_accuracy(model, spec: InputSpec, files: dict[str, Path], test: LabelledImages, images: int,
                        corruptions=tuple(CORRUPTIONS), seed: int = 0, batch: int = BATCH) -> dict:
    """Top-1 accuracy of PyTorch and of every exported file on ``images`` evenly spaced test images, clean and under
    each corruption (:mod:`edgekd.data.corruptions`). Streamed: each batch is corrupted once and run through every
    model, so memory holds one batch per corruption, never a corrupted copy of the split."""
    import torch

    index = evenly_spaced(len(test), images)
    subset, labels = IndexedArray(test.images, index), test.labels[index]
    predictors = {name: Predictor(path) for name, path in files.items()}
    correct = {name: dict.fromkeys(("clean", *corruptions), 0) for name in ("torch", *predictors)}
    views = {"clean": subset, **{c: corrupt(subset, c, seed) for c in corruptions}}
    with torch.no_grad():
        for lo in range(0, len(index), batch):
            y = labels[lo : lo + batch]
            for cname, view in views.items():
                x = spec.preprocess(np.asarray(view[lo : lo + batch]))
                correct["torch"][cname] += int((model(torch.from_numpy(x)).float().numpy().argmax(1) == y).sum())
                for name, predictor in predictors.items():
                    correct[name][cname] += int((predictor(x).argmax(1) == y).sum())
    acc = {name: {c: 100.0 * k / len(index) for c, k in row.items()} for name, row in correct.items()}
    return {"split": test.name, "images": int(len(index)), "seed": seed, "severity": SEVERITY_SOURCE,
            "corruptions": {c: CORRUPTIONS[c].description for c in corruptions}, "accuracy": acc}


def check_finite_model(model, spec: InputSpec, images) -> None:
    logits = torch_logits(model, spec, images[: min(len(images), 64)])
    if not np.isfinite(logits).all():
        raise EdgekdError("the model outputs NaN or infinite values: nothing was exported",
                          "its weights are broken (check them for NaN) — retrain or re-save it")


def _candidate_score(path: Path, spec: InputSpec, select: LabelledImages, ref_sel_logits: np.ndarray) -> dict:
    """An INT8 candidate on the selection split: top-1 agreement with PyTorch and accuracy drop."""
    logits = file_logits(path, spec, select.images)
    return {"agreement": agreement(logits, ref_sel_logits)["top1_agreement"],
            "drop_pp": accuracy(ref_sel_logits, select.labels) - accuracy(logits, select.labels)}


def _pick_candidate(scores: dict, gate_pp: float, fmt: str, select_name: str, log) -> str:
    """Within the gate on the selection split first; among those the best agreement (ties: smaller drop, then the
    candidate listed first). If none is within the gate: the best agreement."""
    order = list(scores)
    passing = [k for k in order if scores[k]["drop_pp"] <= gate_pp] or order
    best = min(passing, key=lambda k: (-scores[k]["agreement"], scores[k]["drop_pp"], order.index(k)))
    log(f"  {fmt:12s} on {select_name}: " + ", ".join(
        f"{k} agreement {100 * v['agreement']:.2f}% drop {v['drop_pp']:+.2f} pp" for k, v in scores.items())
        + f" → {best}")
    return best


def _choose_onnx_calibration(out_dir: Path, spec: InputSpec, calib: np.ndarray, select: LabelledImages,
                             ref_sel_logits: np.ndarray, row: dict, gate_pp: float, reduce_range: bool, log) -> None:
    """MinMax (the file export_model wrote) or percentile activation ranges, whichever agrees better with PyTorch
    on the selection split among those within the gate (ties: MinMax). Percentile clips the rare extreme
    activations, so the common ones get finer steps: on the shipped CIFAR-10 students it changed 27–37 % fewer test
    predictions (benchmarks/int8_agreement.md). Same graph, same speed: only the scales differ."""
    from edgekd.convert.onnx import quantize_onnx_int8

    fp32, int8 = out_dir / "model.onnx", out_dir / "model.int8.onnx"
    alt = out_dir / "model.int8.percentile.tmp.onnx"
    scores = {"minmax": _candidate_score(int8, spec, select, ref_sel_logits)}
    try:
        quantize_onnx_int8(fp32, alt, calib, spec.name, method="percentile", reduce_range=reduce_range)
        scores["percentile"] = _candidate_score(alt, spec, select, ref_sel_logits)
    except EdgekdError as exc:
        log(f"  onnx-int8    percentile calibration failed: {exc.message}")
    best = _pick_candidate(scores, gate_pp, "onnx-int8", select.name, log)
    if best != "minmax":
        alt.replace(int8)
    alt.unlink(missing_ok=True)
    row["calibration"] = best
    row["calibration_choice"] = {"split": select.name, "images": len(select), **scores}


def _qat_onnx(model, spec: InputSpec, out_dir: Path, calib: np.ndarray, select: LabelledImages,
              ref_sel_logits: np.ndarray, row: dict, gate_pp: float, reduce_range: bool, log, mode: str,
              images: LabelledImages | None, steps: int, target: float) -> None:
    """Quantisation-aware fine-tuning for the ONNX INT8 file when its agreement with PyTorch on the selection split is
    below ``target`` (mode "auto") or always ("on"); the fine-tuned file replaces the post-training one only if it
    does better there (:func:`_pick_candidate`). ``row["qat"]`` says what happened and why."""
    from edgekd.convert.onnx import export_onnx, quantize_onnx_int8
    from edgekd.convert.qat import FinetuneConfig, QATUnavailable, finetune, match_sites, plan_from_qdq

    if mode not in QAT_MODES:
        raise EdgekdError(f"unknown QAT mode {mode!r}", f"use one of {', '.join(QAT_MODES)}")
    ptq = row["calibration_choice"][row["calibration"]]
    base = {"split": select.name, "images": len(select), "target_agreement": target, "post-training": ptq}
    if mode == "off" or (mode == "auto" and ptq["agreement"] >= target):
        row["qat"] = {**base, "status": "off" if mode == "off" else "not needed"}
        return
    if images is None or len(images) == 0:
        row["qat"] = {**base, "status": "skipped", "reason": "no training images were given to fine-tune on"}
        log("  onnx-int8    QAT skipped: no training images")
        return
    int8, fp32_tmp, candidate = out_dir / "model.int8.onnx", out_dir / "model.qat.tmp.onnx", \
        out_dir / "model.int8.qat.tmp.onnx"
    try:
        plan = match_sites(plan_from_qdq(int8), model, out_dir / "model.onnx", calib[:8], spec.name)
    except QATUnavailable as exc:
        row["qat"] = {**base, "status": "unavailable", "reason": f"{exc.message} ({exc.hint})"}
        log(f"  onnx-int8    QAT unavailable: {exc.message}")
        return
    config = FinetuneConfig(steps=steps)
    log(f"  onnx-int8    post-training agreement {100 * ptq['agreement']:.2f}% on {select.name} "
        f"{'< target ' + format(100 * target, '.2f') + '%' if ptq['agreement'] < target else '(QAT asked for)'}: "
        f"QAT, {steps} steps simulating {len(plan.activations)} activations and {len(plan.layers)} layers")
    try:
        with _progress_bar("QAT", steps) as advance:
            student, stats = finetune(model, plan, spec, images.images, images.labels, config,
                                      progress=lambda step, loss: advance())
        export_onnx(student, spec, fp32_tmp)
        quantize_onnx_int8(fp32_tmp, candidate, calib, spec.name, method=row["calibration"],
                           reduce_range=reduce_range, tensor_overrides=plan.overrides())
        scores = {"post-training": ptq, "qat": _candidate_score(candidate, spec, select, ref_sel_logits)}
        best = _pick_candidate(scores, gate_pp, "onnx-int8", select.name, log)
        if best == "qat":
            candidate.replace(int8)
    except EdgekdError as exc:  # e.g. the fine-tuned model does not export: the post-training file still ships
        row["qat"] = {**base, "status": "failed", "reason": exc.message}
        log(f"  onnx-int8    QAT failed: {exc.message}")
        return
    finally:
        fp32_tmp.unlink(missing_ok=True)
        candidate.unlink(missing_ok=True)
    row["qat"] = {**base, "status": "shipped" if best == "qat" else "not better", "qat": scores["qat"],
                  "steps": steps, "lr": config.lr, "batch_size": config.batch_size, "mix": config.mix,
                  "seconds": round(stats["seconds"], 1), "simulated_activations": len(plan.activations),
                  "simulated_layers": len(plan.layers)}


@contextlib.contextmanager
def _progress_bar(label: str, total: int):
    """A rich progress bar on stderr; yields a function that advances it by one."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda: progress.advance(task)


def _retry_onnx(out_dir: Path, spec: InputSpec, calib: np.ndarray, select: LabelledImages, ref_sel: float,
                gate_pp: float, log, reduce_range: bool = False, method: str = "minmax") -> list[str]:
    from edgekd.convert.onnx import onnx_op_sensitivity, quantize_onnx_int8

    fp32, int8 = out_dir / "model.onnx", out_dir / "model.int8.onnx"
    ranked = [name for name, _ in onnx_op_sensitivity(fp32, int8, calib, spec.name)][:MAX_FLOAT_PARTS]
    k = 1
    while k <= len(ranked):
        excluded = ranked[:k]
        quantize_onnx_int8(fp32, int8, calib, spec.name, exclude_nodes=excluded, reduce_range=reduce_range,
                           method=method)
        drop = ref_sel - accuracy(file_logits(int8, spec, select.images), select.labels)
        log(f"  onnx-int8    retry: {k} most sensitive node(s) in float → {select.name} drop {drop:+.2f} pp")
        if drop <= gate_pp:
            return excluded
        k *= 2
    return ranked


def module_sensitivity(model, calib: np.ndarray) -> list[tuple[str, float]]:
    """Leaf conv/linear modules ranked by how much int8-quantising that module alone moves the logits.

    Each module's weights (symmetric, per output channel) and output (per tensor, min-max over
    the calibration images) are fake-quantised in turn; the score is the mean squared change of
    the logits. A cheap PyTorch-side stand-in for a per-layer TFLite debugger.
    """
    import torch
    from torch import nn

    x = torch.from_numpy(calib[:32].astype(np.float32))
    with torch.no_grad():
        ref = model(x)
    scores = []
    for name, m in model.named_modules():
        if not isinstance(m, (nn.Conv2d, nn.Linear)):
            continue
        w = m.weight.data.clone()
        scale = w.abs().flatten(1).amax(1).clamp_min(1e-12) / 127
        shape = (-1,) + (1,) * (w.dim() - 1)
        m.weight.data = torch.round(w / scale.view(shape)).clamp(-127, 127) * scale.view(shape)

        def fake_out(_m, _i, out):
            lo, hi = float(out.min()), float(out.max())
            s = max(hi - lo, 1e-12) / 255
            return torch.round((out - lo) / s) * s + lo

        h = m.register_forward_hook(fake_out)
        try:
            with torch.no_grad():
                scores.append((name, float((model(x) - ref).pow(2).mean())))
        finally:
            h.remove()
            m.weight.data = w
    return sorted(scores, key=lambda s: -s[1])


def _choose_tflite_int8(model, spec: InputSpec, path: Path, calib: np.ndarray, select: LabelledImages,
                        ref_sel_logits: np.ndarray, row: dict, gate_pp: float, log) -> None:
    """Build the TFLite INT8 candidates and keep the best on the selection split (see the module docstring)."""
    from edgekd.convert.tflite import export_tflite_int8

    ref_sel = accuracy(ref_sel_logits, select.labels)
    candidates = {"ai-edge-quantizer": path}
    scores = {"ai-edge-quantizer": _candidate_score(path, spec, select, ref_sel_logits)}
    # PT2E with min-max ranges always; with histogram ranges (litert-torch's default) only when neither
    # of the first two is within the gate — each conversion costs ~20 s
    for observer in ("minmax", "histogram"):
        if observer == "histogram" and min(v["drop_pp"] for v in scores.values()) <= gate_pp:
            break
        alt = path.with_name(f"{path.stem}.pt2e-{observer}.tmp.tflite")
        try:
            export_tflite_int8(model, spec, alt, calib, method="pt2e", activation_observer=observer)
        except EdgekdError as exc:
            log(f"  tflite-int8  pt2e ({observer}) failed: {exc.message}")
            continue
        candidates[f"pt2e-{observer}"] = alt
        scores[f"pt2e-{observer}"] = _candidate_score(alt, spec, select, ref_sel_logits)
    # ties go to the all-int8 file, listed first; if none is within the gate, float retries follow
    best = _pick_candidate(scores, gate_pp, "tflite-int8", select.name, log)
    for name, p in candidates.items():
        if name != best and p != path:
            p.unlink(missing_ok=True)
    if candidates[best] != path:
        candidates[best].replace(path)  # over the ai-edge-quantizer file
    row["method"] = best
    row["method_choice"] = {"split": select.name, "images": len(select), **scores}
    if scores[best]["drop_pp"] > gate_pp:
        observer = best.split("-", 1)[1] if best.startswith("pt2e") else "minmax"
        ranked = [n for n, _ in module_sensitivity(model, calib)][:MAX_FLOAT_PARTS]
        retry = path.with_name(path.stem + ".retry.tmp.tflite")
        k, kept, best_drop = 1, None, scores[best]["drop_pp"]
        while k <= len(ranked):
            export_tflite_int8(model, spec, retry, calib, method="pt2e", float_modules=tuple(ranked[:k]),
                               activation_observer=observer)
            drop = ref_sel - accuracy(file_logits(retry, spec, select.images), select.labels)
            log(f"  tflite-int8  retry: {k} most sensitive module(s) in float (PT2E {observer}) → "
                f"{select.name} drop {drop:+.2f} pp")
            if drop < best_drop:
                retry.replace(path)
                kept, best_drop = ranked[:k], drop
                row["method"] = f"pt2e-{observer}"
            if drop <= gate_pp:
                break
            k *= 2
        retry.unlink(missing_ok=True)
        if kept:
            row["float_modules"] = list(kept)
    chosen = Predictor(path)
    row["input"], row["output"] = chosen.in_spec.to_dict(), chosen.out_spec.to_dict()


def export_classifier(
    model,
    spec: InputSpec,
    out_dir: str | Path,
    calibration_images: np.ndarray,
    val: LabelledImages,
    test: LabelledImages,
    formats=None,
    gate_pp: float = 1.0,
    card_info: dict | None = None,
    log: Callable[[str], None] = print,
    robustness_images: int = 1000,
    qat: str = "auto",
    qat_images: LabelledImages | None = None,
    qat_steps: int = 400,
    agreement_target: float = 0.997,
) -> dict:
    """``val`` is the selection split (never images the model was trained on); ``test`` is scored once.
    ``robustness_images`` test images (0: none) are scored again under corruptions for the card's robustness section.
    ``qat``: "auto" fine-tunes for ONNX INT8 (:mod:`edgekd.convert.qat`) when the post-training file agrees with
    PyTorch on less than ``agreement_target`` of the selection split, "on" always, "off" never; it trains on
    ``qat_images`` (training images, never the selection or test split)."""
    import torch

    out_dir = Path(out_dir)
    model = model.cpu().eval().to(memory_format=torch.contiguous_format)
    calibration_images = np.asarray(calibration_images)
    check_finite_model(model, spec, calibration_images)
    calib = spec.preprocess(calibration_images)
    reduce_range = saturates_8bit_weights()
    results = export_model(model, spec, out_dir, formats, calibration=calib, log=log, onnx_reduce_range=reduce_range)
    same = val.images is test.images  # a model trained elsewhere whose selection split is the test split
    ref_sel_logits = torch_logits(model, spec, val.images)
    ref_test_logits = ref_sel_logits if same else torch_logits(model, spec, test.images)
    ref_sel, ref_test = accuracy(ref_sel_logits, val.labels), accuracy(ref_test_logits, test.labels)
    failures = []
    for name, row in results.items():
        if row["status"] != "ok":
            continue  # recorded in the card; the other formats are still made and gated
        path = out_dir / row["file"]
        if name == "tflite-int8":
            _choose_tflite_int8(model, spec, path, calib, val, ref_sel_logits, row, gate_pp, log)
        elif name == "onnx-int8":
            row["reduce_range"] = reduce_range
            _choose_onnx_calibration(out_dir, spec, calib, val, ref_sel_logits, row, gate_pp, reduce_range, log)
            _qat_onnx(model, spec, out_dir, calib, val, ref_sel_logits, row, gate_pp, reduce_range, log,
                      mode=qat, images=qat_images, steps=qat_steps, target=agreement_target)
            if reduce_range:
                log("  onnx-int8    7-bit weights (reduce_range): this x86 CPU has no VNNI, where 8-bit weights saturate "
                    "ONNX Runtime's U8S8 kernels")
        sel_logits = file_logits(path, spec, val.images)
        drop_sel = ref_sel - accuracy(sel_logits, val.labels)
        if row["int8"] and drop_sel > gate_pp and name == "onnx-int8":
            row["float_nodes"] = _retry_onnx(out_dir, spec, calib, val, ref_sel, gate_pp, log, row["reduce_range"],
                                             row["calibration"])
            if row.get("qat", {}).get("status") == "shipped":  # the retry re-quantises model.onnx itself
                row["qat"]["status"] = "replaced by the float-node retry"
            sel_logits = file_logits(path, spec, val.images)
            drop_sel = ref_sel - accuracy(sel_logits, val.labels)
        test_logits = sel_logits if same else file_logits(path, spec, test.images)
        test_acc = accuracy(test_logits, test.labels)
        row.update(bytes=path.stat().st_size, sha256=sha256_file(path), val_acc=ref_sel - drop_sel,
                   test_acc=test_acc, drop_pp=round(ref_test - test_acc, 4),
                   parity={**agreement(test_logits, ref_test_logits), "split": test.name, "images": len(test)})
        finite = np.isfinite(test_logits).all()
        row["gate"] = "pass" if finite and row["drop_pp"] <= gate_pp else "FAIL"
        if row["gate"] == "FAIL":
            failures.append(f"{name} loses {row['drop_pp']:.2f} pp on {test.name} (gate {gate_pp} pp)" if finite
                            else f"{name} outputs NaN/inf")
        log(f"  {name:12s} {test.name} {test_acc:6.2f}%  drop {row['drop_pp']:+.2f} pp  "
            f"agreement {100 * row['parity']['top1_agreement']:.2f}%  [{row['gate']}]")

    robustness = None
    if robustness_images > 0:
        files = {name: out_dir / row["file"] for name, row in results.items() if row["status"] == "ok"}
        robustness = corruption_accuracy(model, spec, files, test, robustness_images)
        worst = {name: min(v for c, v in acc.items() if c != "clean") for name, acc in robustness["accuracy"].items()}
        log(f"  robustness   {robustness['images']} {test.name} images under {len(robustness['corruptions'])} "
            f"corruptions: worst case " + ", ".join(f"{k} {v:.1f}%" for k, v in worst.items()))

    rng = np.random.default_rng(0)
    samples = calibration_images[rng.permutation(len(calibration_images))[:N_SAMPLES]]
    np.save(out_dir / "samples.npy", samples)
    card = {
        **(card_info or {}),
        "task": "image-classification",
        "preprocess": spec.to_dict(),
        "samples": "samples.npy",
        "samples_note": f"{len(samples)} uint8 RGB training images (calibration set), for benchmarks and examples",
        "reference": {"format": "torch", "val_acc": ref_sel, "test_acc": ref_test},
        "selection": {"split": val.name, "images": len(val),
                      "used_for": "the TFLite INT8 quantiser choice and the float-fallback retries"},
        "gate": {"threshold_pp": gate_pp, "split": test.name, "images": len(test), "passed": not failures,
                 "failures": failures, "kernels": kernels_here()},
        "formats": results,
    }
    if robustness:
        card["robustness"] = robustness
    write_card(out_dir, card)
    if failures:
        raise GateFailed("accuracy gate failed: " + "; ".join(failures),
                         f"see {out_dir / 'card.md'}; raise --gate-pp or use more calibration images")
    return card

"""The export stage of ``edgekd compress`` and the standalone ``edgekd export MODEL``.

Export takes a model, an input spec and data; nothing else. ``export_file`` loads any
model file (an edgekd ``student.pt``, a state_dict ``.pt`` / ``.safetensors`` with its
architecture, TorchScript, ``.pt2``), so a model trained elsewhere exports the same way as
one edgekd distilled. Choices are made on a split the model was not trained on: the run's
own validation split for an edgekd model, else the data set's ``val`` split, else the split
the user names (``select_split``); the card says which.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from edgekd.convert.classifier import LabelledImages, export_classifier
from edgekd.convert.spec import InputSpec
from edgekd.data.dataset import IndexedArray
from edgekd.errors import EdgekdError


def default_name(data_name: str, arch: str, method: str | None = None, cf: float | None = None) -> str:
    arch = arch.replace(":", "-").replace("/", "-").replace(".py", "")
    size = f"-{cf:g}x" if cf else ""
    return f"{data_name}-{arch}{size}" + (f"-{method.replace('+', '-')}" if method else "")


def _command() -> str | None:
    return " ".join(["edgekd"] + sys.argv[1:]) if Path(sys.argv[0]).name in ("edgekd", "__main__.py") else None


def calibration_indices(train_idx: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(train_idx, size=min(n, len(train_idx)), replace=False))


def _run_card(report: dict, name: str) -> dict:
    s, t = report["student"], report.get("teacher")
    teacher_txt = (f" from a {t.get('arch')} teacher ({t['params']:,} parameters, {t['macs'] / 1e6:.1f} M MACs, "
                   f"test {t['test_acc']:.2f} %)") if t else ""
    ratios = (f" — {report['compression_factor']}× fewer parameters and {report['compute_ratio']}× fewer MACs than "
              "the teacher") if t else ""
    return {
        "name": name,
        "summary": (f"A {s['arch']} student ({s['params']:,} parameters, {s['macs'] / 1e6:.1f} M MACs) distilled with "
                    f"{report['method']}{teacher_txt} on {report['data']['name']}{ratios}."),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "edgekd_version": report.get("edgekd_version"),
        "command": _command(),
        "source": {"kind": "edgekd compress run", "report": "report.json"},
        "model": {"arch": s["arch"], "kwargs": s.get("kwargs"), "params": s["params"], "macs": s["macs"],
                  "config": s.get("config"), "compression_factor": report.get("compression_factor"),
                  "compute_ratio": report.get("compute_ratio")},
        "data": {k: report["data"].get(k) for k in ("name", "provenance", "classes", "train_images", "val_images",
                                                    "test_images", "validation", "image_size")},
        "classes": report["data"]["classes"],
        "training": {"method": report["method"], "losses": report.get("losses"), "seed": report["seed"],
                     "hyperparameters": report["hyperparameters"],
                     "teacher": {k: t.get(k) for k in ("arch", "params", "macs", "val_acc", "test_acc", "source")} if t else None,
                     "val_acc": s["val_acc"], "test_acc": s["test_acc"]},
        "cost": {"wall_s": {k: v for k, v in report.get("timings", {}).items()},
                 "machine": report.get("machine", {}).get("cpu"), "cores": report.get("machine", {}).get("cores"),
                 "device": report.get("device")},
    }


def export_run(out: Path, report: dict, data, splits, cfg, model, log=print) -> dict:
    """The export stage of compress: calibration on training images, choices on the run's validation split."""
    calib_idx = calibration_indices(splits.train, cfg.calib_images, cfg.split_seed)
    spec = InputSpec(shape=(1, 3, *data.image_size), mean=tuple(data.mean), std=tuple(data.std))
    cf = cfg.cf if cfg.student_arch == "student" and "blocks_removed" not in cfg.student_kwargs else None
    name = cfg.name or default_name(data.name, report["student"]["arch"], report["method"], cf)
    out_dir = Path(cfg.export_dir or Path(out) / "export") / name
    val = splits.val_set
    log(f"export → {out_dir} (calibration: {len(calib_idx)} training images; choices on validation; "
        f"gate {cfg.gate_pp} pp on test)")
    card = export_classifier(
        model, spec, out_dir, data.train.images[calib_idx],
        val=LabelledImages(val.images, val.labels, f"validation ({splits.val_source})"),
        test=LabelledImages(data.test.images, data.test.labels, "test"),
        formats=cfg.formats, gate_pp=cfg.gate_pp, card_info=_run_card(report, name), log=log,
        robustness_images=cfg.robustness_images, qat=cfg.qat, qat_steps=cfg.qat_steps,
        agreement_target=cfg.int8_agreement,
        qat_images=LabelledImages(IndexedArray(data.train.images, splits.train), data.train.labels[splits.train],
                                  "training"),
    )
    return {"dir": str(out_dir), "gate_passed": card["gate"]["passed"],
            "formats": {k: {kk: v.get(kk) for kk in ("status", "bytes", "test_acc", "drop_pp", "gate", "error")}
                        for k, v in card["formats"].items()}}


def record_cost(export_dir: Path, timings: dict) -> None:
    """Add the export stage's own wall time (known only once it has finished) to the card it wrote."""
    from edgekd.convert.card import write_card
    from edgekd.utils.io import read_json

    card = read_json(export_dir / "card.json")
    card.setdefault("cost", {})["wall_s"] = dict(timings)
    write_card(export_dir, card)


def export_file(model_path: str | Path, data: str | None = None, arch: str | None = None, arch_kwargs: dict | None = None,
                input_range: str | None = None, mean=None, std=None, image_size: int | None = None,
                select_split: str | None = None, formats: str | None = None, export_dir: str = "export",
                name: str | None = None, gate_pp: float = 1.0, calib_images: int = 256, robustness_images: int = 1000,
                qat: str = "auto", qat_steps: int = 400, agreement_target: float = 0.997, log=print) -> dict:
    """``edgekd export MODEL``: any model file, the data to calibrate and check it on, and how it takes its input."""
    from edgekd.data import load_dataset
    from edgekd.models.complexity import count_macs, count_params
    from edgekd.models.sources import load_model
    from edgekd.utils.io import sha256_file

    model_path = Path(model_path).expanduser()
    if not model_path.is_file():
        raise EdgekdError(f"model file not found: {model_path}")
    if input_range and (mean or std):
        raise EdgekdError("give --input-range or --mean/--std, not both")
    if input_range and input_range.replace(" ", "") not in ("0,1", "[0,1]"):
        raise EdgekdError(f"--input-range {input_range!r} is not supported", "use 0,1 (pixels / 255, no mean/std)")
    if bool(mean) != bool(std):
        raise EdgekdError("give both --mean and --std")
    loaded = load_model(model_path, arch=arch, kwargs=arch_kwargs, role="model")
    meta = loaded.meta
    data = data or meta.get("data")
    if not data:
        raise EdgekdError(f"say which data {model_path.name} is checked on", "pass --data (a name or a path)")
    if input_range:
        norm = ([0.0] * 3, [1.0] * 3, "input range 0,1 (--input-range)")
    elif mean:
        norm = (list(mean), list(std), "--mean/--std")
    elif meta.get("mean") and meta.get("std"):
        norm = (meta["mean"], meta["std"], "recorded in the model file")
    else:
        raise EdgekdError(f"{model_path.name} does not record how it takes its input",
                          "pass --input-range 0,1 (x/255) or --mean R,G,B --std R,G,B as it was trained")
    size = image_size or (meta.get("image_size") or [None])[0]
    dataset = load_dataset(data, image_size=size)
    if tuple(meta.get("classes") or dataset.classes) != tuple(dataset.classes):
        raise EdgekdError(f"{model_path.name} was trained on classes {meta['classes'][:4]}…, "
                          f"{dataset.name} has {list(dataset.classes)[:4]}…")
    n_out = _n_classes(loaded.model, dataset)
    if n_out != dataset.num_classes:
        raise EdgekdError(f"{model_path.name} predicts {n_out} classes but {dataset.name} has {dataset.num_classes}")

    select = _selection_split(dataset, meta, select_split)
    train_idx = np.arange(len(dataset.train))
    if select.name.startswith("the run's validation") and meta.get("val_indices"):
        train_idx = np.setdiff1d(train_idx, np.asarray(meta["val_indices"]))
    calib_idx = calibration_indices(train_idx, calib_images, 0)
    spec = InputSpec(shape=(1, 3, *dataset.image_size), mean=tuple(norm[0]), std=tuple(norm[1]))
    label = loaded.arch or model_path.stem
    name = name or default_name(dataset.name, label, meta.get("method"))
    out_dir = Path(export_dir) / name
    shape = (1, 3, *dataset.image_size)
    card_info = {
        "name": name,
        "summary": f"{label} ({count_params(loaded.model):,} parameters) exported from {model_path.name}, "
                   f"checked on {dataset.name}.",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "command": _command(),
        "source": {"kind": loaded.kind, "file": str(model_path), "sha256": sha256_file(model_path),
                   "arch": loaded.arch, "kwargs": loaded.kwargs, "normalisation": norm[2],
                   "trained_by": "edgekd" if meta.get("role") else "elsewhere"},
        "model": {"arch": label, "params": count_params(loaded.model), "macs": count_macs(loaded.model, shape),
                  "kwargs": loaded.kwargs},
        "data": {"name": dataset.name, "provenance": dataset.train.provenance, "classes": list(dataset.classes),
                 "train_images": len(dataset.train), "test_images": len(dataset.test),
                 "image_size": list(dataset.image_size)},
        "classes": list(dataset.classes),
    }
    log(f"export {model_path.name} ({loaded.kind}) → {out_dir}: calibration {len(calib_idx)} training images, "
        f"choices on {select.name} ({len(select)} images), gate {gate_pp} pp on test ({len(dataset.test)} images)")
    card = export_classifier(loaded.model, spec, out_dir, dataset.train.images[calib_idx], val=select,
                             test=LabelledImages(dataset.test.images, dataset.test.labels, "test"), formats=formats,
                             gate_pp=gate_pp, card_info=card_info, log=log, robustness_images=robustness_images,
                             qat=qat, qat_steps=qat_steps, agreement_target=agreement_target,
                             qat_images=LabelledImages(IndexedArray(dataset.train.images, train_idx),
                                                       dataset.train.labels[train_idx], "training"))
    return {"dir": str(out_dir), "card": card}


def _n_classes(model, dataset) -> int:
    import torch

    try:
        with torch.no_grad():
            return int(model(torch.zeros(2, 3, *dataset.image_size)).shape[1])
    except Exception as exc:  # noqa: BLE001
        raise EdgekdError(f"the model cannot run on {dataset.image_size[0]}×{dataset.image_size[1]} images "
                          f"({type(exc).__name__}: {str(exc)[:100]})", "pass --image-size the model takes") from None


def _selection_split(dataset, meta: dict, select_split: str | None) -> LabelledImages:
    """The images quantiser choices are made on — never ones the model was trained on."""
    if select_split not in (None, "val", "test"):
        raise EdgekdError(f"unknown --select-split {select_split!r}", "use val or test")
    if select_split is None and meta.get("val_indices") and meta.get("data"):
        idx = np.asarray(meta["val_indices"])
        sub = dataset.train.subset(idx)
        return LabelledImages(sub.images, sub.labels, f"the run's validation split ({meta.get('validation', '')})")
    if select_split in (None, "val") and dataset.val is not None:
        return LabelledImages(dataset.val.images, dataset.val.labels, "val")
    if select_split == "test":  # the same arrays as the test split: the export scores them once
        return LabelledImages(dataset.test.images, dataset.test.labels,
                              "test (named by the user: the choice and the reported test accuracy share images)")
    if select_split == "val":
        raise EdgekdError(f"{dataset.name} has no val split", "pass --select-split test, or data with a val/ folder")
    raise EdgekdError("this model was trained elsewhere: name a split it never saw for the quantiser choice",
                      "pass --select-split val (if the data has one) or --select-split test; the card records it")

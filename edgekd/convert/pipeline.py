"""The export stage of ``edgekd compress`` and the standalone ``edgekd export``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from edgekd.convert.classifier import LabelledImages, export_classifier
from edgekd.convert.spec import InputSpec
from edgekd.errors import EdgekdError


def default_name(data_name: str, cf: float, method: str) -> str:
    return f"{data_name}-student-{cf:g}x-{method.replace('+', '-')}"


def _card_info(report: dict, name: str) -> dict:
    s, t = report["student"], report["teacher"]
    return {
        "name": name,
        "summary": (f"A {report['compression_factor']}×-smaller MobileNetV2 student ({s['params']:,} parameters, "
                    f"{s['macs'] / 1e6:.1f} M MACs) distilled with {report['method']} from a CIFAR MobileNetV2 teacher "
                    f"({t['params']:,} parameters, {t['macs'] / 1e6:.1f} M MACs) on {report['data']['name']}."),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "edgekd_version": report.get("edgekd_version"),
        "command": " ".join(["edgekd"] + sys.argv[1:]) if Path(sys.argv[0]).name in ("edgekd", "__main__.py") else None,
        "model": {"arch": "student", "params": s["params"], "macs": s["macs"], "config": s["config"],
                  "compression_factor": report["compression_factor"], "compute_ratio": report.get("compute_ratio")},
        "data": {k: report["data"][k] for k in ("name", "provenance", "classes", "train_images", "val_images", "test_images")},
        "classes": report["data"]["classes"],
        "training": {"method": report["method"], "seed": report["seed"], "hyperparameters": report["hyperparameters"],
                     "teacher": {k: t.get(k) for k in ("arch", "params", "val_acc", "test_acc", "source")},
                     "val_acc": s["val_acc"], "test_acc": s["test_acc"]},
    }


def export_from_report(out: Path, report: dict, data, cfg, log=print, student=None) -> dict:
    """Export OUT/student.pt as described by the run's report; gate and write the card.

    Calibration images come from the training split, gate decisions from validation,
    and the reported accuracy from the test split (recomputed from the run's config).
    """
    from edgekd.models.checkpoint import load_model

    if student is None:
        student, _ = load_model(Path(out) / "student.pt")
    from edgekd.distill.pipeline import split_indices

    train_idx, val_idx = split_indices(data, cfg)
    rng = np.random.default_rng(cfg.split_seed)
    calib_idx = rng.choice(train_idx, size=min(cfg.calib_images, len(train_idx)), replace=False)
    spec = InputSpec(shape=(1, 3, *data.image_size), mean=tuple(data.mean), std=tuple(data.std))
    name = cfg.name or default_name(data.name, report["compression_factor"], report["method"])
    out_dir = Path(cfg.export_dir) / name
    log(f"export → {out_dir} (calibration: {len(calib_idx)} training images; gate {cfg.gate_pp} pp on test)")
    card = export_classifier(
        student, spec, out_dir, data.train.images[calib_idx],
        val=LabelledImages(data.train.images[val_idx], data.train.labels[val_idx]),
        test=LabelledImages(data.test.images, data.test.labels),
        formats=cfg.formats, gate_pp=cfg.gate_pp, card_info=_card_info(report, name), log=log,
    )
    return {"dir": str(out_dir), "gate_passed": card["gate"]["passed"],
            "formats": {k: {kk: v.get(kk) for kk in ("status", "bytes", "test_acc", "drop_pp", "gate", "error")}
                        for k, v in card["formats"].items()}}


def export_student(student_path: str | Path, formats: str | None = None, export_dir: str = "export",
                   name: str | None = None, gate_pp: float = 1.0, calib_images: int = 256,
                   data: str | None = None, log=print) -> dict:
    """``edgekd export STUDENT.pt``: data and split come from the run's report.json beside the file."""
    from edgekd.data import load_dataset
    from edgekd.distill.config import CompressConfig
    from edgekd.distill.pipeline import load_report

    student_path = Path(student_path)
    if not student_path.is_file():
        raise EdgekdError(f"model file not found: {student_path}")
    try:
        report = load_report(student_path.parent)
    except FileNotFoundError:
        raise EdgekdError(f"no report.json beside {student_path}",
                          "export a student written by `edgekd compress` (its run directory holds report.json)") from None
    cfg = CompressConfig(**{**report["config"], "formats": formats or report["config"].get("formats", "all"),
                            "export_dir": export_dir, "name": name or report["config"].get("name", ""),
                            "gate_pp": gate_pp, "calib_images": calib_images,
                            **({"data": data} if data else {})})
    dataset = load_dataset(cfg.data)
    from edgekd.models.checkpoint import load_model

    student, _ = load_model(student_path)
    return export_from_report(student_path.parent, report, dataset, cfg, log=log, student=student)

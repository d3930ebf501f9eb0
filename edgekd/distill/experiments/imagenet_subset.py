"""The ImageNet-subset check: CIFAR-trained models, no fine-tuning, on ImageNet images mapped to CIFAR-10."""

from __future__ import annotations

import json
from pathlib import Path

from edgekd.distill.experiments.report import _fmt
from edgekd.distill.experiments.runner import code_version
from edgekd.errors import EdgekdError


def load_imagenet_cifar10(folder: str | Path):
    """The ImageNet images whose class maps to CIFAR-10, resized to 32×32, CIFAR label order."""
    import numpy as np

    from edgekd.data.dataset import CIFAR10_CLASSES, ImageSet
    from edgekd.data.imagefolder import FileSource, decode_image, find_layout

    folder = Path(folder)
    src = FileSource(folder)
    layout = find_layout(src.names)
    by_class = layout.get("all") or layout.get("train") or {}
    unknown = set(by_class) - set(CIFAR10_CLASSES)
    if unknown:
        raise EdgekdError(f"{folder}: folders {sorted(unknown)} are not CIFAR-10 classes")
    items = [(n, CIFAR10_CLASSES.index(c)) for c in sorted(by_class) for n in sorted(by_class[c])]
    images = np.stack([decode_image(src.read(n), n, 32) for n, _ in items])
    return ImageSet(images, np.array([lab for _, lab in items]), CIFAR10_CLASSES,
                    {"source": str(folder), "files": len(items)})


def balanced_accuracy(labels, predictions, num_classes: int) -> float:
    """Mean per-class recall over the classes present (in percent)."""
    import numpy as np

    labels, predictions = np.asarray(labels), np.asarray(predictions)
    recalls = [float((predictions[labels == c] == c).mean()) for c in range(num_classes) if (labels == c).any()]
    return 100.0 * float(np.mean(recalls))


def evaluate_on_imagenet_subset(models_dir: str | Path, folder: str | Path, teacher: str | None = None,
                                out_dir: str | Path | None = None) -> dict:
    """Score every finished run's student in ``models_dir`` (and the teacher) on the full mapped set, no fine-tuning."""
    import numpy as np

    from edgekd.data.dataset import CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD
    from edgekd.distill.experiments.families import DEFAULT_VARIANT
    from edgekd.distill.stats import summarize
    from edgekd.distill.trainer import predict
    from edgekd.models.checkpoint import load_model
    from edgekd.utils.io import write_json

    images = load_imagenet_cifar10(folder)
    models_dir = Path(models_dir)
    entries = []
    candidates = []
    for p in sorted(models_dir.glob("*/student.pt")):
        if not (p.parent / "report.json").exists():
            continue
        rep = json.loads((p.parent / "report.json").read_text())
        if tuple(rep["data"]["classes"]) != CIFAR10_CLASSES or rep["data"]["name"] != "cifar10":
            raise EdgekdError(f"{p.parent} was trained on {rep['data']['name']}, not CIFAR-10",
                              "evaluate a family trained with --data ../shared/data/cifar10-png.zip")
        run_file = p.parent / "run.json"
        variant = json.loads(run_file.read_text()).get("run", {}).get("variant", DEFAULT_VARIANT) if run_file.exists() \
            else DEFAULT_VARIANT
        label = rep["method"] if variant == DEFAULT_VARIANT else f"{variant}/{rep['method']}"  # as in the tables
        candidates.append((p.parent.name, p, label))
        teacher = teacher or rep["teacher"].get("source")  # the teacher these students were distilled from
    teacher_path = Path(teacher) if teacher else models_dir / "teacher" / "teacher.pt"
    if teacher_path.exists():
        candidates.insert(0, ("teacher", teacher_path, "teacher"))
    if not candidates:
        raise EdgekdError(f"no trained models in {models_dir}", "point --root/--from at a finished ablation or sweep")
    for run_id, path, method in candidates:
        model, _ = load_model(path)
        pred = predict(model, images, CIFAR10_MEAN, CIFAR10_STD).argmax(1)
        entries.append({"run_id": run_id, "method": method,
                        "accuracy": 100.0 * float((pred == images.labels).mean()),
                        "balanced_accuracy": balanced_accuracy(images.labels, pred, 10)})
    by_method = {}
    for m in dict.fromkeys(e["method"] for e in entries):
        vals = [e for e in entries if e["method"] == m]
        by_method[m] = {"accuracy": summarize([e["accuracy"] for e in vals]).to_dict(),
                        "balanced_accuracy": summarize([e["balanced_accuracy"] for e in vals]).to_dict()}
    counts = np.bincount(images.labels, minlength=10).tolist()
    lines = [f"### ImageNet images mapped to CIFAR-10 ({len(images)} images, per class {counts}), no fine-tuning", "",
             "| model | n | accuracy mean ± sd | balanced accuracy mean ± sd |", "|---|---|---|---|"]
    for m, s in by_method.items():
        a, b = s["accuracy"], s["balanced_accuracy"]
        lines.append(f"| {m} | {a['n']} | {_fmt(a['mean'])} ± {_fmt(a['sd'])} | {_fmt(b['mean'])} ± {_fmt(b['sd'])} |")
    result = {"images": len(images), "per_class": counts, "source": str(folder), "models_dir": str(models_dir),
              "runs": entries, "by_method": by_method, "markdown": "\n".join(lines) + "\n", "code": code_version()}
    if out_dir:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / "results.json", result)
        (out_dir / "results.md").write_text(result["markdown"])
    return result

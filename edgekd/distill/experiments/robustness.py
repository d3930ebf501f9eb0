"""Each finished run's student under the card's corruptions, so an experiment can ask what a method does to
robustness (the IG overlay, KD, AT …), not only to clean accuracy.

The student (``student.pt``, loaded without unpickling) scores ``images`` evenly spaced test images, clean
and under every corruption of :mod:`edgekd.data.corruptions` (the same deterministic corruptions, seed and
selection for every run, so runs pair image by image). The result is cached as the run's
``robustness.json`` and recomputed only when the images, corruptions or student change.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekd.data.corruptions import CORRUPTIONS, SEVERITY_SOURCE, corrupt, evenly_spaced
from edgekd.data.dataset import IndexedArray
from edgekd.errors import EdgekdError

BATCH = 500
CORRUPTION_SEED = 0


def score_student(run_dir: Path, data_cache: dict, images: int) -> dict:
    """PyTorch top-1 of ``run_dir/student.pt`` on ``images`` test images, clean and corrupted."""
    import torch

    from edgekd.data import load_dataset
    from edgekd.models.sources import load_model
    from edgekd.utils.io import read_json, sha256_file

    report = read_json(run_dir / "report.json")
    data = report["data"]
    cfg = report.get("config", {})
    key = (cfg.get("data") or data["name"], tuple(data.get("image_size") or ()))
    if key not in data_cache:
        size = data.get("image_size")
        data_cache[key] = load_dataset(key[0], image_size=size[0] if size else None, show_progress=False)
    test = data_cache[key].test
    mean = np.asarray(data["mean"], np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(data["std"], np.float32).reshape(1, 3, 1, 1)
    model = load_model(run_dir / "student.pt", role="student").model.eval()
    index = evenly_spaced(len(test), images)
    subset, labels = IndexedArray(test.images, index), test.labels[index]
    views = {"clean": subset, **{c: corrupt(subset, c, CORRUPTION_SEED) for c in CORRUPTIONS}}
    correct = dict.fromkeys(views, 0)
    with torch.no_grad():
        for lo in range(0, len(index), BATCH):
            y = labels[lo : lo + BATCH]
            for name, view in views.items():
                x = np.asarray(view[lo : lo + BATCH]).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
                logits = model(torch.from_numpy((x - mean) / std)).float().numpy()
                correct[name] += int((logits.argmax(1) == y).sum())
    return {"images": int(len(index)), "split": "test", "seed": CORRUPTION_SEED, "severity": SEVERITY_SOURCE,
            "student_sha256": sha256_file(run_dir / "student.pt"),
            "accuracy": {name: 100.0 * k / len(index) for name, k in correct.items()}}


def _complete(path: Path, images: int) -> dict | None:
    """The scores in ``path`` if they cover every corruption for ``images`` requested images, else None."""
    from edgekd.utils.io import read_json

    try:
        cached = read_json(path)
    except (OSError, ValueError):
        return None  # missing or damaged
    if cached.get("requested") == images and set(cached.get("accuracy", {})) == {"clean", *CORRUPTIONS}:
        return cached
    return None


def run_robustness(run_dir: Path, data_cache: dict, images: int) -> dict:
    """The run's cached robustness.json, computed if missing or made with other images, corruptions or weights;
    a run kept without its weights (:func:`~edgekd.distill.experiments.runner.copy_records`) has only the cache."""
    from edgekd.utils.io import sha256_file, write_json

    run_dir = Path(run_dir)
    path = run_dir / "robustness.json"
    if not (run_dir / "student.pt").is_file():
        # a run kept as records only (copy_records): its scores are the result; without them it must be redone
        kept = _complete(path, images)
        if kept is None:
            raise EdgekdError(f"{run_dir} has a report but neither student.pt nor corruption scores for {images} images "
                              "(robustness.json)", "delete that run's folder and run it again, or report with the "
                              "--robustness-images it was scored with")
        return kept
    cached = _complete(path, images)
    if cached is not None and cached.get("student_sha256") == sha256_file(run_dir / "student.pt"):
        return cached
    result = {**score_student(run_dir, data_cache, images), "requested": images}
    write_json(path, result)
    return result


def add_robustness(rows: list[dict], family_dir: Path, images: int, log=print) -> list[str]:
    """Adds ``acc_<corruption>`` and ``corruption_loss`` (clean − mean corrupted, pp) to every row; returns the
    corruption names. ``images`` = 0: nothing is added."""
    if images <= 0:
        return []
    cache: dict = {}
    for i, row in enumerate(rows):
        run = run_robustness(Path(family_dir) / row["run_id"], cache, images)
        acc = run["accuracy"]
        for name, value in acc.items():
            row[f"acc_{name}"] = value
        row["corruption_loss"] = acc["clean"] - float(np.mean([acc[c] for c in CORRUPTIONS]))
        row["robustness_images"] = run["images"]
        log(f"robustness {i + 1}/{len(rows)}: {row['run_id']} clean {acc['clean']:.2f} %, "
            f"mean loss under corruption {row['corruption_loss']:.2f} pp")
    return list(CORRUPTIONS)

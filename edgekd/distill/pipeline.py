"""``edgekd compress`` as plain functions: data → teacher → IG maps → student → test → export.

Every stage leaves its result in ``OUT/`` (teacher.pt, ig-cache/, student.ckpt,
student.pt, report.json); running the same command again reuses finished stages and
resumes an interrupted one.
"""

from __future__ import annotations

import hashlib
import platform
import time
from pathlib import Path

import numpy as np
import torch

from edgekd.data import Dataset, load_dataset, stratified_split, stratified_subset
from edgekd.distill.config import CompressConfig, parse_method
from edgekd.distill.ig import IGSettings, precompute_ig
from edgekd.distill.losses import LossConfig
from edgekd.distill.trainer import TrainConfig, evaluate, pick_device, train
from edgekd.errors import EdgekdError
from edgekd.models import create_model
from edgekd.models.checkpoint import load_model, save_model
from edgekd.models.complexity import count_macs, count_params
from edgekd.utils.config import to_toml
from edgekd.utils.io import atomic_write_bytes, read_json, write_json
from edgekd.utils.system import machine_record


def training_pool(data: Dataset, cfg: CompressConfig) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/validation split, then an optional stratified training subset: (pool, val)."""
    train_idx, val_idx = stratified_split(data.train.labels, cfg.val_fraction, cfg.split_seed)
    if cfg.train_subset:
        seed = cfg.split_seed if cfg.subset_seed < 0 else cfg.subset_seed
        train_idx = stratified_subset(data.train.labels, cfg.train_subset, seed, pool=train_idx)
    return train_idx, val_idx


def split_indices(data: Dataset, cfg: CompressConfig) -> tuple[np.ndarray, np.ndarray]:
    """The student's (train, val) indices: the training pool, or its ``train_fraction`` draw (Monte Carlo)."""
    pool_idx, val_idx = training_pool(data, cfg)
    return draw_from_pool(data, cfg, pool_idx), val_idx


def draw_from_pool(data: Dataset, cfg: CompressConfig, pool_idx: np.ndarray) -> np.ndarray:
    """The pool itself, or its stratified ``train_fraction`` drawn with ``fraction_seed``."""
    if not 0.0 < cfg.train_fraction <= 1.0:
        raise EdgekdError(f"train_fraction must be in (0, 1], got {cfg.train_fraction}")
    if cfg.train_fraction == 1.0:
        return pool_idx
    n = int(round(cfg.train_fraction * len(pool_idx)))
    return stratified_subset(data.train.labels, n, cfg.fraction_seed, pool=pool_idx)


def teacher_accuracy(teacher, split_name: str, images, indices, mean, std, device) -> float:
    """Accuracy of the teacher on a split, cached per (teacher weights, images), since every run of an
    experiment family shares one teacher and scoring it on 10,000 test images costs as much as an epoch."""
    from edgekd.data import cache_dir
    from edgekd.distill.ig import model_fingerprint

    key_hash = hashlib.sha256(np.ascontiguousarray(images.labels).data)
    key_hash.update(np.asarray(indices if indices is not None else [], dtype=np.int64).tobytes())
    key_hash.update(f"{images.provenance}|{len(images)}|{list(mean)}|{list(std)}".encode())
    path = cache_dir() / "teacher-scores" / f"{model_fingerprint(teacher)[:24]}.json"
    key = f"{split_name}:{key_hash.hexdigest()[:24]}"
    scores = read_json(path) if path.exists() else {}
    if key in scores:
        return float(scores[key])
    subset = images.subset(indices) if indices is not None else images
    acc = evaluate(teacher, subset, mean, std, device)
    try:
        scores = read_json(path) if path.exists() else {}
        scores[key] = acc
        write_json(path, scores)
    except (OSError, ValueError):
        pass  # a cache only: a read-only cache folder must not stop the run
    return acc


def _teacher_settings(cfg: CompressConfig) -> dict:
    return {k: getattr(cfg, k) for k in ("data", "val_fraction", "split_seed", "subset_seed", "train_subset", "teacher_arch",
                                          "teacher_epochs", "teacher_lr", "teacher_optimizer",
                                          "teacher_weight_decay", "teacher_subset", "batch_size", "seed")}


def get_teacher(cfg: CompressConfig, data: Dataset, train_idx, val_idx, out: Path, device, show_progress=True):
    """Load ``cfg.teacher``, reuse ``OUT/teacher.pt`` trained with the same settings, or train one."""
    if cfg.teacher:
        teacher, info = load_model(cfg.teacher, arch=cfg.teacher_arch, config={"num_classes": data.num_classes})
        n_out = teacher(torch.zeros(1, 3, *data.image_size)).shape[1]
        if n_out != data.num_classes:
            raise EdgekdError(f"teacher {cfg.teacher} predicts {n_out} classes but {data.name} has {data.num_classes}",
                              "use a teacher trained on this data set")
        return teacher.to(device), {"source": str(cfg.teacher), "trained_here": False, **info.get("meta", {})}

    path = out / "teacher.pt"
    settings = _teacher_settings(cfg)
    if path.exists():
        teacher, info = load_model(path)
        if info["meta"].get("settings") == settings:
            return teacher.to(device), {"source": str(path), "trained_here": True, "reused": True, **info["meta"]}
        raise EdgekdError(f"{path} was trained with other settings", "use another --out, or delete it to retrain")

    teacher = create_model(cfg.teacher_arch, num_classes=data.num_classes)
    t_idx = train_idx
    if cfg.teacher_subset:
        t_idx = stratified_subset(data.train.labels, cfg.teacher_subset, cfg.split_seed + 1, pool=train_idx)
    tcfg = TrainConfig(epochs=cfg.teacher_epochs, batch_size=cfg.batch_size, lr=cfg.teacher_lr,
                       optimizer=cfg.teacher_optimizer, weight_decay=cfg.teacher_weight_decay,
                       schedule="cosine", seed=cfg.seed)
    result = train(teacher, data.train.subset(t_idx), data.train.subset(val_idx), data.mean, data.std, tcfg,
                   checkpoint=out / "teacher.ckpt", device=device, progress_label="teacher",
                   show_progress=show_progress)
    meta = {"settings": settings, "val_acc": result.best_val_acc, "best_epoch": result.best_epoch,
            "train_images": int(len(t_idx)), "seconds": result.seconds, "history": result.history}
    save_model(path, teacher.cpu(), cfg.teacher_arch, {"num_classes": data.num_classes}, meta=meta)
    return teacher.to(device), {"source": str(path), "trained_here": True, "reused": False, **meta}


def compress(cfg: CompressConfig, show_progress: bool = True, log=print) -> dict:
    """Run the whole compression job and return the report (also written to OUT/report.json)."""
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    parts = parse_method(cfg.method)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    atomic_write_bytes(out / "config.toml", to_toml(cfg.to_dict()).encode())

    t = time.perf_counter()
    data = load_dataset(cfg.data, show_progress=show_progress)
    pool_idx, val_idx = training_pool(data, cfg)
    train_idx = draw_from_pool(data, cfg, pool_idx)
    train_set, val_set = data.train.subset(train_idx), data.train.subset(val_idx)
    timings["data_s"] = round(time.perf_counter() - t, 2)
    log(f"data: {data.name}, {len(train_idx)} train / {len(val_idx)} val / {len(data.test)} test images, "
        f"{data.num_classes} classes")

    t = time.perf_counter()
    # A teacher trained here sees the whole training pool, so every Monte Carlo draw shares it.
    teacher, teacher_info = get_teacher(cfg, data, pool_idx, val_idx, out, device, show_progress)
    teacher_val = teacher_accuracy(teacher, "val", data.train, val_idx, data.mean, data.std, device)
    timings["teacher_s"] = round(time.perf_counter() - t, 2)
    log(f"teacher: {teacher_info['source']} — val {teacher_val:.2f}%")

    ig_maps, ig_info = None, None
    if "ig" in parts:
        t = time.perf_counter()
        settings = IGSettings(n_steps=cfg.ig_steps, internal_batch_size=cfg.ig_internal_batch)
        # Maps for the whole training pool: Monte Carlo draws (train_fraction < 1) share one cache.
        cache = precompute_ig(teacher, data.train.images, data.train.labels, pool_idx, out / "ig-cache",
                              data.mean, data.std, settings, device=str(device), show_progress=show_progress)
        cached_idx, ig_maps = cache.load()
        if not np.array_equal(cached_idx, pool_idx):  # guarded by the manifest; a cheap second check
            raise EdgekdError(f"IG cache {cache.dir} indexes other images", "delete it to recompute")
        if len(train_idx) != len(pool_idx):
            ig_maps = ig_maps[np.searchsorted(cached_idx, train_idx)]
        manifest = cache.manifest()
        timings["ig_s"] = round(time.perf_counter() - t, 2)
        ig_info = {"n_steps": cfg.ig_steps, "images": int(len(train_idx)), "cache": str(cache.dir),
                   "images_per_second": manifest.get("images_per_second"), "p": cfg.ig_p}
        log(f"IG maps: {len(train_idx)} images, {cfg.ig_steps} steps ({ig_info['images_per_second']} img/s)")

    t = time.perf_counter()
    torch.manual_seed(cfg.seed)
    student = create_model("student", cf=cfg.cf, num_classes=data.num_classes, early_width=cfg.early_width)
    loss_cfg = LossConfig(kd="kd" in parts, at="at" in parts, alpha=cfg.alpha, temperature=cfg.temperature, gamma=cfg.gamma)
    scfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, optimizer=cfg.optimizer,
                       weight_decay=cfg.weight_decay, schedule=cfg.schedule, seed=cfg.seed, ig_p=cfg.ig_p, loss=loss_cfg,
                       precise_bn_images=cfg.precise_bn_images)
    result = train(student, train_set, val_set, data.mean, data.std, scfg,
                   teacher=teacher if loss_cfg.needs_teacher else None, ig_maps=ig_maps,
                   checkpoint=out / "student.ckpt", device=device, progress_label=f"student ({cfg.method})",
                   show_progress=show_progress)
    timings["student_s"] = round(time.perf_counter() - t, 2)

    # The test set is scored once, after model selection on validation.
    student_test = evaluate(student, data.test, data.mean, data.std, device)
    teacher_test = teacher_accuracy(teacher, "test", data.test, None, data.mean, data.std, device)
    student = student.cpu()
    teacher = teacher.cpu()
    t_params, s_params = count_params(teacher), count_params(student)
    shape = (1, 3, *data.image_size)
    report = {
        "edgekd_version": __import__("edgekd").__version__,
        "method": cfg.method,
        "data": {"name": data.name, "provenance": data.train.provenance, "classes": list(data.classes),
                 "train_images": int(len(train_idx)), "val_images": int(len(val_idx)), "test_images": len(data.test),
                 "split_seed": cfg.split_seed, "val_fraction": cfg.val_fraction,
                 "mean": list(data.mean), "std": list(data.std), "image_size": list(data.image_size)},
        "teacher": {"arch": cfg.teacher_arch, "params": t_params, "macs": count_macs(teacher, shape),
                    "val_acc": teacher_val, "test_acc": teacher_test,
                    **{k: v for k, v in teacher_info.items() if k not in ("history", "settings")}},
        "student": {"arch": "student", "config": student.config, "params": s_params,
                    "macs": count_macs(student, shape), "val_acc": result.best_val_acc, "best_epoch": result.best_epoch,
                    "test_acc": student_test, "history": result.history},
        "compression_factor": round(t_params / s_params, 2),
        "compute_ratio": round(count_macs(teacher, shape) / count_macs(student, shape), 2),
        "hyperparameters": {k: getattr(cfg, k) for k in ("epochs", "batch_size", "lr", "optimizer", "schedule",
                                                          "weight_decay", "alpha", "temperature", "gamma", "ig_p",
                                                          "ig_steps", "cf", "early_width")},
        "seed": cfg.seed,
        "ig": ig_info,
        "timings": timings,
        "device": str(device),
        "machine": machine_record(),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "config": cfg.to_dict(),
    }
    save_model(out / "student.pt", student, "student", student.config,
               meta={"method": cfg.method, "val_acc": result.best_val_acc, "test_acc": student_test,
                     "mean": list(data.mean), "std": list(data.std), "classes": list(data.classes)})
    timings["total_s"] = round(time.perf_counter() - t_start, 2)
    write_json(out / "report.json", report)
    log(f"student ({cfg.method}, {report['compression_factor']}× fewer parameters): "
        f"val {result.best_val_acc:.2f}%, test {student_test:.2f}% (teacher test {teacher_test:.2f}%)")

    if cfg.export:
        from edgekd.convert.pipeline import export_from_report

        t = time.perf_counter()
        report["export"] = export_from_report(out, report, data, cfg, log=log, student=student)
        timings["export_s"] = round(time.perf_counter() - t, 2)
        timings["total_s"] = round(time.perf_counter() - t_start, 2)
        write_json(out / "report.json", report)
    return report


def train_teacher(cfg: CompressConfig, show_progress: bool = True) -> dict:
    """Only the teacher stage of ``compress``: OUT/teacher.pt, evaluated on validation."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    data = load_dataset(cfg.data, show_progress=show_progress)
    train_idx, val_idx = training_pool(data, cfg)
    teacher, info = get_teacher(CompressConfig(**{**cfg.to_dict(), "teacher": ""}), data, train_idx, val_idx, out,
                                device, show_progress)
    info["val_acc"] = evaluate(teacher, data.train.subset(val_idx), data.mean, data.std, device)
    return info


def load_report(out: str | Path) -> dict:
    return read_json(Path(out) / "report.json")

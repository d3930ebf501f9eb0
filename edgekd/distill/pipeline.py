"""``edgekd compress`` as plain functions: data → teacher → IG maps → student → test → export.

Every stage leaves its result in ``OUT/`` (teacher.pt, ig-cache/, student.ckpt, student.pt,
report.json, export/); running the same command again reuses finished stages and resumes an
interrupted one. ``OUT`` is locked while a run uses it, so two runs cannot write into it at once.

From Python, any stage input may be an object instead of a path:
``compress(cfg, teacher=my_module, student=my_student, data=my_dataset)``.
"""

from __future__ import annotations

import hashlib
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.data import Dataset, load_dataset, stratified_split, stratified_subset
from edgekd.distill.config import CompressConfig, input_normalisation, loss_config, parse_method, resolve_config
from edgekd.distill.distributed import barrier, device_for
from edgekd.distill.distributed import setup as setup_dist
from edgekd.distill.ig import IGCache, IGSettings, model_fingerprint, precompute_ig
from edgekd.distill.recipes import plain_batch_size, student_train_config, teacher_train_config
from edgekd.distill.trainer import evaluate, pick_device, to_input, train
from edgekd.errors import EdgekdError
from edgekd.models.complexity import count_macs, count_params
from edgekd.models.features import auto_pairs, check_pairs
from edgekd.models.prune import PruneError, init_from_teacher
from edgekd.models.sources import LoadedModel, builder_arguments, load_model, save_model
from edgekd.utils.config import to_toml
from edgekd.utils.io import atomic_write_bytes, file_lock, read_json, write_json
from edgekd.utils.system import machine_record


@dataclass
class Splits:
    """Which images each stage sees: indices into ``data.train`` (and the validation set)."""

    pool: np.ndarray  # training pool (teacher, IG maps); Monte Carlo draws come from it
    train: np.ndarray  # the student's training images
    val_set: object  # an ImageSet: data.val, or held out of data.train
    val_idx: np.ndarray | None  # its indices into data.train when held out, else None
    val_source: str


def as_config(cfg: CompressConfig | dict | None = None, **overrides) -> CompressConfig:
    """A validated config from a CompressConfig, a dict of settings or keywords (for Python callers)."""
    if cfg is None or isinstance(cfg, dict):
        return resolve_config((cfg or {}).get("preset", overrides.pop("preset", "quick")), None,
                              {**{k: v for k, v in (cfg or {}).items() if k != "preset"}, **overrides})
    from dataclasses import replace

    from edgekd.distill.config import validate

    return validate(replace(cfg, **overrides)) if overrides else validate(cfg)


def load_run_data(cfg: CompressConfig, show_progress: bool = True) -> Dataset:
    mean, std = input_normalisation(cfg)
    return load_dataset(cfg.data, image_size=cfg.image_size or None, show_progress=show_progress, mean=mean, std=std)


def make_splits(data: Dataset, cfg: CompressConfig) -> Splits:
    """Validation = the data's own val split, or a stratified ``val_fraction`` of train; then the
    optional training subset and the Monte Carlo draw."""
    if data.val is not None:
        pool, val_idx, val_set = np.arange(len(data.train)), None, data.val
        source = "the data set's own validation split"
    else:
        pool, val_idx = stratified_split(data.train.labels, cfg.val_fraction, cfg.split_seed)
        val_set = data.train.subset(val_idx)
        source = f"stratified {cfg.val_fraction:.0%} of train (seed {cfg.split_seed})"
    if cfg.val_subset and cfg.val_subset < len(val_set):
        keep = stratified_subset(val_set.labels, cfg.val_subset, cfg.split_seed)
        val_set = val_set.subset(keep)
        val_idx = val_idx[keep] if val_idx is not None else None
        source += f", {cfg.val_subset} of them (stratified)"
    if cfg.train_subset:
        seed = cfg.split_seed if cfg.subset_seed < 0 else cfg.subset_seed
        pool = stratified_subset(data.train.labels, cfg.train_subset, seed, pool=pool)
    train_idx = pool
    if cfg.train_fraction < 1.0:
        n = int(round(cfg.train_fraction * len(pool)))
        train_idx = stratified_subset(data.train.labels, n, cfg.fraction_seed, pool=pool)
    return Splits(pool, train_idx, val_set, val_idx, source)


def teacher_accuracy(teacher, split_name: str, images, indices, mean, std, device) -> float:
    """Accuracy of the teacher on a split, cached per (teacher weights, images), since every run of an
    experiment family shares one teacher and scoring it on 10,000 test images costs as much as an epoch."""
    from edgekd.data import cache_dir

    key_hash = hashlib.sha256(np.ascontiguousarray(images.labels).data)
    key_hash.update(np.asarray(indices if indices is not None else [], dtype=np.int64).tobytes())
    key_hash.update(f"{images.provenance}|{len(images)}|{list(mean)}|{list(std)}".encode())
    path = cache_dir() / "teacher-scores" / f"{model_fingerprint(teacher)[:24]}.json"
    key = f"{split_name}:{key_hash.hexdigest()[:24]}"
    try:
        scores = read_json(path) if path.exists() else {}
    except (OSError, ValueError):
        scores = {}
    if key in scores:
        return float(scores[key])
    subset = images.subset(indices) if indices is not None else images
    acc = evaluate(teacher, subset, mean, std, device)
    try:
        write_json(path, {**scores, key: acc})
    except (OSError, ValueError, EdgekdError):
        pass  # a cache only: a read-only cache folder must not stop the run
    return acc


def _teacher_settings(cfg: CompressConfig) -> dict:
    return {**{k: getattr(cfg, k) for k in ("data", "image_size", "mean", "std", "input_range", "val_fraction",
                                             "split_seed", "subset_seed", "train_subset", "teacher_arch", "teacher_kwargs",
                                             "teacher_recipe", "teacher_epochs", "teacher_lr", "teacher_optimizer",
                                             "teacher_weight_decay", "teacher_subset", "seed")},
            "batch_size": plain_batch_size(cfg),
            # (only when set: teachers cached before the setting existed keep their key)
            **({"teacher_label_smoothing": cfg.teacher_label_smoothing} if cfg.teacher_label_smoothing >= 0 else {})}


def _n_outputs(model: nn.Module, data: Dataset, device) -> int:
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, 3, *data.image_size, device=device))
    except Exception as exc:  # noqa: BLE001 - the user's model rejects this input
        raise EdgekdError(f"the model cannot run on {data.image_size[0]}×{data.image_size[1]} RGB images "
                          f"({type(exc).__name__}: {str(exc)[:120]})",
                          "pass --image-size the model was built for, or the matching architecture") from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise EdgekdError(f"the model's forward returns {type(out).__name__} {getattr(out, 'shape', '')}, not logits (N, classes)",
                          "a teacher or student is any nn.Module whose forward returns class scores")
    return int(out.shape[1])


def _check_classes(model: nn.Module, data: Dataset, device, role: str, where: str) -> None:
    n_out = _n_outputs(model, data, device)
    if n_out != data.num_classes:
        raise EdgekdError(f"the {role} {where} predicts {n_out} classes but {data.name} has {data.num_classes}",
                          f"use a {role} trained on this data set, or build it with num_classes={data.num_classes}")


def shipped_teacher_for(cfg: CompressConfig, data: Dataset) -> Path | None:
    """The teacher edgekd ships for this architecture and data (airbench on 32×32 CIFAR-10), or None."""
    from edgekd.models.weights import SHIPPED

    if cfg.teacher or not cfg.pretrained_teacher or cfg.teacher_kwargs:
        return None
    for entry in SHIPPED:
        if (entry["arch"] == cfg.teacher_arch and entry["classes"] == list(data.classes)
                and tuple(entry["image_size"]) == tuple(data.image_size)
                and np.allclose(entry["mean"], data.mean, atol=1e-4) and np.allclose(entry["std"], data.std, atol=1e-4)
                and entry["path"].is_file()):
            return entry["path"]
    return None


def get_teacher(cfg: CompressConfig, data: Dataset, splits: Splits, out: Path, device, show_progress=True,
                teacher: nn.Module | None = None, dist=None) -> tuple[nn.Module, dict]:
    """The user's module, ``cfg.teacher`` (any model file), ``OUT/teacher.pt`` trained with the same settings,
    or a teacher trained here."""
    if teacher is not None:
        teacher = teacher.to(device).eval()
        _check_classes(teacher, data, device, "teacher", f"({type(teacher).__name__})")
        return teacher, {"source": "python object", "arch": type(teacher).__name__, "trained_here": False}
    shipped = shipped_teacher_for(cfg, data)
    if shipped is not None:
        from dataclasses import replace

        teacher, info = get_teacher(replace(cfg, teacher=str(shipped)), data, splits, out, device, show_progress,
                                    dist=dist)
        return teacher, {**info, "shipped": True}
    if cfg.teacher:
        arch = cfg.teacher_arch if _needs_arch(cfg.teacher) else None
        loaded = load_model(cfg.teacher, arch=arch, kwargs=cfg.teacher_kwargs or None, num_classes=data.num_classes,
                            role="teacher")
        meta = loaded.meta
        if meta.get("role") == "student" and not cfg.allow_student_teacher:
            raise EdgekdError(f"{cfg.teacher} is a student written by edgekd compress, not a teacher",
                              "pass the teacher's weights (e.g. OUT/teacher.pt), or set allow_student_teacher = true")
        if meta.get("classes") and tuple(meta["classes"]) != tuple(data.classes):
            raise EdgekdError(f"{cfg.teacher} was trained on classes {meta['classes'][:4]}…, {data.name} has "
                              f"{list(data.classes)[:4]}…", "use a teacher trained on this data set")
        teacher = loaded.model.to(device).eval()
        _check_classes(teacher, data, device, "teacher", cfg.teacher)
        return teacher, {"source": str(cfg.teacher), "trained_here": False, **loaded.describe(),
                         **{k: v for k, v in meta.items() if k not in ("history", "settings")}}

    path = out / "teacher.pt"
    settings = _teacher_settings(cfg)
    if path.exists():
        loaded = load_model(path, role="teacher")
        if loaded.meta.get("settings") == settings:
            return loaded.model.to(device), {"source": str(path), "trained_here": True, "reused": True,
                                             **loaded.describe(), **loaded.meta}
        raise EdgekdError(f"{path} was trained with other settings", "use another --out, or delete it to retrain")

    built = load_model(arch=cfg.teacher_arch, kwargs=cfg.teacher_kwargs, num_classes=data.num_classes, role="teacher")
    t_idx = splits.pool
    if cfg.teacher_subset:
        t_idx = stratified_subset(data.train.labels, cfg.teacher_subset, cfg.split_seed + 1, pool=splits.pool)
    torch.manual_seed(cfg.seed)
    result = train(built.model, data.train.subset(t_idx), splits.val_set, data.mean, data.std, teacher_train_config(cfg, len(t_idx)),
                   checkpoint=out / "teacher.ckpt", device=device, progress_label=f"teacher ({cfg.teacher_arch})",
                   show_progress=show_progress)
    meta = {"role": "teacher", "settings": settings, "val_acc": result.best_val_acc, "best_epoch": result.best_epoch,
            "train_images": int(len(t_idx)), "seconds": result.seconds, "history": result.history,
            "classes": list(data.classes), "mean": list(data.mean), "std": list(data.std),
            "image_size": list(data.image_size)}
    if dist is None or dist.main:
        save_model(path, built.model.cpu(), cfg.teacher_arch, builder_arguments(built),
                   meta=meta)
    return built.model.to(device), {"source": str(path), "trained_here": True, "reused": False, **built.describe(),
                                    **meta}


def _needs_arch(path: str) -> bool:
    """A plain state_dict needs the architecture; edgekd files, TorchScript and .pt2 carry their own."""
    from edgekd.models.sources import file_kind, read_weights

    p = Path(path).expanduser()
    if not p.is_file():
        raise EdgekdError(f"teacher file not found: {p}", "check the path given to --teacher")
    if file_kind(p) in ("torchscript", "exported"):
        return False
    return read_weights(p).get("arch") is None


def build_student(cfg: CompressConfig, data: Dataset, student: nn.Module | None = None) -> LoadedModel:
    """The user's module, or ``student_arch`` built with its kwargs (the truncated student also takes cf)."""
    if student is not None:
        return LoadedModel(student, "python", type(student).__name__, {})
    kwargs = dict(cfg.student_kwargs)
    if cfg.student_arch == "student" and "blocks_removed" not in kwargs:
        kwargs.setdefault("cf", cfg.cf)
    if cfg.early_width != 1.0 and "early_width" not in kwargs:
        kwargs["early_width"] = cfg.early_width
    torch.manual_seed(cfg.seed)
    return load_model(arch=cfg.student_arch, kwargs=kwargs, num_classes=data.num_classes, role="student")


PRUNE_IMAGES = 2048  # training images that rank the teacher's channels (more change the ranking little)


def start_from_teacher(cfg: CompressConfig, student: nn.Module, teacher: nn.Module, train_set, data: Dataset,
                       splits: Splits, device) -> dict:
    """``student_init = "teacher"`` (or ``auto``): load the teacher's most useful channels into the student
    (structured pruning as initialisation, :mod:`edgekd.models.prune`); returns what was kept and the student's
    validation accuracy before any training."""
    n = len(train_set)
    sample = np.sort(np.random.default_rng(cfg.seed).permutation(n)[: min(n, PRUNE_IMAGES)])
    images = to_input(train_set.images[sample], data.mean, data.std, next(teacher.parameters()).device)
    info = init_from_teacher(student, teacher, images)
    info["val_acc"] = evaluate(student, splits.val_set, data.mean, data.std, device)
    student.cpu()
    return info


def attention_pairs(cfg: CompressConfig, student: nn.Module, teacher: nn.Module, data: Dataset) -> list[tuple[str, str]]:
    shape = (1, 3, *data.image_size)
    if cfg.at_pairs == "auto":
        return auto_pairs(student, teacher, shape)
    return check_pairs(student, teacher, cfg.at_pairs, shape)


def model_summary(model: nn.Module, shape) -> dict:
    return {"params": count_params(model), "macs": count_macs(model, shape)}


def compress(cfg: CompressConfig | dict | None = None, show_progress: bool = True, log=print,
             teacher: nn.Module | None = None, student: nn.Module | None = None, data: Dataset | None = None) -> dict:
    """Run the whole compression job and return the report (also written to OUT/report.json).

    Under ``torchrun`` every rank calls this; rank 0 holds the run folder's lock, logs and writes,
    and after training it alone scores the test set and exports (the others return ``{}``).
    """
    cfg = as_config(cfg)
    dist = setup_dist(cfg.device, cfg.dist_timeout_s)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    with _run_lock(dist, out):
        selection = None
        if cfg.latency_budget_ms:
            if dist.active:
                raise EdgekdError("--latency-budget-ms chooses the student in one process, not under torchrun",
                                  "run `edgekd students` first, then torchrun with the chosen --student-arch/kwargs")
            if student is not None:
                raise EdgekdError("a latency budget chooses the student: do not pass a student module as well")
            from edgekd.select.choose import choose_for_run

            data = data if data is not None else load_run_data(cfg, show_progress)
            cfg, selection = choose_for_run(cfg, data, out, show_progress, log)
        report = _compress(cfg, out, show_progress and dist.main, log if dist.main else _silent, teacher, student,
                           data, dist)
        if selection is not None:
            from edgekd.select.choose import ship_within_budget

            ship_within_budget(report, selection, cfg, out, log)
        return report


def _silent(_msg: str) -> None:
    pass


def _run_lock(dist, out: Path):
    from contextlib import nullcontext

    return file_lock(out / ".compress.lock", wait=False, what=f"the run folder {out}") if dist.main else nullcontext()


def _compress(cfg, out: Path, show_progress, log, teacher_module, student_module, data, dist) -> dict:
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    parts = parse_method(cfg.method)
    losses = loss_config(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = device_for(dist, cfg.device) or pick_device(cfg.device)
    if dist.main:
        atomic_write_bytes(out / "config.toml", to_toml(cfg.to_dict()).encode())

    t = time.perf_counter()
    data = data if data is not None else load_run_data(cfg, show_progress)
    splits = make_splits(data, cfg)
    train_set = data.train.subset(splits.train)
    timings["data_s"] = round(time.perf_counter() - t, 2)
    log(f"data: {data.name}, {len(splits.train)} train / {len(splits.val_set)} val ({splits.val_source}) / "
        f"{len(data.test)} test images, {data.num_classes} classes, {data.image_size[0]}×{data.image_size[1]}")

    t = time.perf_counter()
    student = build_student(cfg, data, student_module)
    _check_classes(student.model, data, "cpu", "student", f"({student.arch})")
    teacher, teacher_info = None, {}
    if losses.needs_teacher or "ig" in parts or cfg.student_init == "teacher":  # "auto" uses one only if loaded
        # A teacher trained here sees the whole training pool, so every Monte Carlo draw shares it.
        teacher, teacher_info = get_teacher(cfg, data, splits, out, device, show_progress, teacher_module, dist)
        if dist.main:
            teacher_info["val_acc"] = teacher_accuracy(teacher, "val", data.train if splits.val_idx is not None
                                                       else data.val, splits.val_idx, data.mean, data.std, device)
            log(f"teacher: {teacher_info['source']} — val {teacher_info['val_acc']:.2f}%")
    timings["teacher_s"] = round(time.perf_counter() - t, 2)

    ig_maps, ig_info = None, None
    if "ig" in parts:
        t = time.perf_counter()
        ig_maps, ig_info = get_ig_maps(cfg, teacher, data, splits, out, device, show_progress, dist)
        timings["ig_s"] = round(time.perf_counter() - t, 2)
        chosen = f" (chosen: {ig_info['chosen_by']})" if "chosen_by" in ig_info else ""
        log(f"IG maps: {len(splits.pool)} images, {ig_info['n_steps']} steps{chosen} "
            f"({ig_info['images_per_second']} img/s)")

    student_init = {"from": "random"}
    if cfg.student_init != "random" and teacher is not None:
        t = time.perf_counter()
        try:
            student_init = start_from_teacher(cfg, student.model, teacher, train_set, data, splits, device)
        except PruneError as err:
            if cfg.student_init == "teacher":
                raise
            student_init = {"from": "random", "why": str(err)}  # auto: this student is not a narrower teacher
        timings["student_init_s"] = round(time.perf_counter() - t, 2)
        if student_init["from"] == "teacher":
            log(f"student: started from the teacher's channels ({student_init['kept_channels']} of "
                f"{student_init['of_channels']} kept in {student_init['narrowed_spaces']} narrowed layers): "
                f"val {student_init['val_acc']:.2f}% before training")
        else:
            log(f"student: starts at random ({student_init['why']})")

    pairs = attention_pairs(cfg, student.model, teacher, data) if losses.needs_features else None
    if pairs:
        log("attention transfer pairs (student ↔ teacher): " + ", ".join(f"{s} ↔ {t}" for s, t in pairs))
    t = time.perf_counter()
    train_cfg = student_train_config(cfg, len(train_set), from_teacher=student_init["from"] == "teacher")
    if dist.active:
        log(f"distributed: {dist.world} processes ({dist.backend}); global batch {train_cfg.batch_size} = "
            f"{train_cfg.batch_size // dist.world} per rank, lr {train_cfg.lr:g}")
    result = train(student.model, train_set, splits.val_set, data.mean, data.std, train_cfg,
                   teacher=teacher if losses.needs_teacher else None, ig_maps=ig_maps, at_pairs=pairs,
                   checkpoint=out / "student.ckpt", device=device, progress_label=f"student ({cfg.method})",
                   show_progress=show_progress)
    timings["student_s"] = round(time.perf_counter() - t, 2)
    if not dist.main:
        return {}  # rank 0 scores the test set once, writes the report and exports

    # The test set is scored once, after model selection on validation.
    student_test = evaluate(student.model, data.test, data.mean, data.std, device)
    shape = (1, 3, *data.image_size)
    s_model = student.model.cpu()
    s_sum = model_summary(s_model, shape)
    report = {
        "edgekd_version": __import__("edgekd").__version__,
        "method": cfg.method,
        "losses": losses.active,
        "data": {"name": data.name, "provenance": data.train.provenance, "classes": list(data.classes),
                 "train_images": int(len(splits.train)), "val_images": int(len(splits.val_set)),
                 "test_images": len(data.test), "validation": splits.val_source, "split_seed": cfg.split_seed,
                 "val_fraction": cfg.val_fraction, "mean": list(data.mean), "std": list(data.std),
                 "image_size": list(data.image_size)},
        "student": {"arch": student.arch, "kwargs": student.kwargs, "config": dict(getattr(s_model, "config", {}) or {}),
                    "init": student_init, **s_sum, "val_acc": result.best_val_acc, "best_epoch": result.best_epoch,
                    "test_acc": student_test, "history": result.history},
        # what the student was trained with (the fast recipe sets its own batch, lr and schedule)
        "hyperparameters": {"recipe": cfg.recipe,
                            **{k: getattr(train_cfg, k) for k in ("epochs", "batch_size", "lr", "optimizer", "schedule",
                                                                  "weight_decay", "mix", "teacher_targets",
                                                                  "teacher_tta")},
                            **{k: getattr(cfg, k) for k in ("alpha", "temperature", "gamma", "label_smoothing", "ig_p",
                                                            "cf", "early_width", "amp", "loss_weights", "student_init")},
                            "ig_steps": ig_info["n_steps"] if ig_info else cfg.ig_steps},
        "attention_pairs": pairs,
        "seed": cfg.seed,
        "distributed": {**dist.describe(), "global_batch": train_cfg.batch_size,
                        "per_rank_batch": train_cfg.batch_size // dist.world, "lr": train_cfg.lr} if dist.active else None,
        "ig": ig_info,
        "timings": timings,
        "device": str(device),
        "machine": machine_record(),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "config": cfg.to_dict(),
    }
    if teacher is not None:
        teacher_test = teacher_accuracy(teacher, "test", data.test, None, data.mean, data.std, device)
        t_sum = model_summary(teacher.cpu(), shape)
        report["teacher"] = {**{k: v for k, v in teacher_info.items() if k not in ("history", "settings")},
                             **t_sum, "test_acc": teacher_test}
        report["compression_factor"] = round(t_sum["params"] / s_sum["params"], 2)
        report["compute_ratio"] = round(t_sum["macs"] / s_sum["macs"], 2)
    save_model(out / "student.pt", s_model, student.arch if student.kind != "python" else "python-object",
               builder_arguments(student),
               meta={"role": "student", "method": cfg.method, "val_acc": result.best_val_acc, "test_acc": student_test,
                     "mean": list(data.mean), "std": list(data.std), "classes": list(data.classes),
                     "image_size": list(data.image_size), "data": data.name,
                     "validation": splits.val_source,
                     "val_indices": None if splits.val_idx is None else splits.val_idx.tolist()})
    timings["total_s"] = round(time.perf_counter() - t_start, 2)
    write_json(out / "report.json", report)
    ratio = f", {report['compression_factor']}× fewer parameters than the teacher" if teacher is not None else ""
    log(f"student ({student.arch}, {cfg.method}{ratio}): val {result.best_val_acc:.2f}%, test {student_test:.2f}%"
        + (f" (teacher test {report['teacher']['test_acc']:.2f}%)" if teacher is not None else ""))

    if cfg.export:
        from edgekd.convert.pipeline import export_run

        t = time.perf_counter()
        report["export"] = export_run(out, report, data, splits, cfg, s_model, log=log)
        timings["export_s"] = round(time.perf_counter() - t, 2)
        timings["total_s"] = round(time.perf_counter() - t_start, 2)
        write_json(out / "report.json", report)
        if report["export"].get("dir"):
            from edgekd.convert.pipeline import record_cost

            record_cost(Path(report["export"]["dir"]), timings)
    return report


def ig_steps_for(cfg: CompressConfig, teacher: nn.Module, splits: Splits, data: Dataset, device,
                 amp: str = "off") -> tuple[int, dict]:
    """``cfg.ig_steps``, or with 0 the fewest steps whose completeness error on 64 validation images is within
    ``ig_tolerance`` (IG's quadrature error; the paper's 50 steps are far more than a CIFAR teacher needs)."""
    if cfg.ig_steps:
        return cfg.ig_steps, {}
    from edgekd.data.transforms import normalize, to_float
    from edgekd.distill.ig import choose_steps

    val = splits.val_set
    pick = np.sort(np.random.default_rng(cfg.split_seed).permutation(len(val))[:64])
    x = normalize(to_float(torch.from_numpy(np.ascontiguousarray(val.images[pick]))), data.mean, data.std).to(device)
    y = torch.from_numpy(val.labels[pick]).to(device)
    steps, errors = choose_steps(teacher, x, y, cfg.ig_tolerance, internal_batch_size=cfg.ig_internal_batch,
                                 amp=amp)
    return steps, {"chosen_by": f"completeness error ≤ {cfg.ig_tolerance} on {len(pick)} validation images (median)",
                   "completeness_median": errors}


def get_ig_maps(cfg: CompressConfig, teacher: nn.Module, data: Dataset, splits: Splits, out: Path, device,
                show_progress: bool, dist) -> tuple[object, dict]:
    """The teacher's IG maps of the student's training images (computed once into OUT/ig-cache) and what they cost."""
    from edgekd.distill.trainer import pick_amp

    amp = pick_amp(cfg.ig_amp, torch.device(device))
    cached = IGCache(out / "ig-cache").manifest()
    if cfg.ig_steps == 0 and cached and cached.get("chosen_steps", {}).get("tolerance") == cfg.ig_tolerance:
        steps = cached["n_steps"]  # a resumed run keeps the step count it chose
        choice = cached["chosen_steps"]["choice"]
    else:
        steps, choice = ig_steps_for(cfg, teacher, splits, data, device, amp)
    settings = IGSettings(n_steps=steps, internal_batch_size=cfg.ig_internal_batch, amp=amp)
    # Maps for the whole training pool: Monte Carlo draws (train_fraction < 1) share one cache.
    cache = precompute_ig(teacher, data.train.images, data.train.labels, splits.pool, out / "ig-cache",
                          data.mean, data.std, settings, device=str(device), show_progress=show_progress,
                          rank=dist.rank, world=dist.world,
                          extra={"chosen_steps": {"tolerance": cfg.ig_tolerance, "choice": choice}} if choice else None)
    barrier(dist, "computing IG maps")
    cached_idx, maps = cache.load()
    if not np.array_equal(cached_idx, splits.pool):  # guarded by the manifest; a cheap second check
        raise EdgekdError(f"IG cache {cache.dir} indexes other images", f"delete {cache.dir} to recompute it")
    rows = np.searchsorted(cached_idx, splits.train)
    ig_maps = maps if len(rows) == len(cached_idx) else _Rows(maps, rows)
    manifest = cache.manifest()
    info = {"n_steps": steps, "amp": amp, "images": int(len(splits.train)), "cache": str(cache.dir),
            "images_per_second": manifest.get("images_per_second"), "p": cfg.ig_p, **choice}
    return ig_maps, info


class _Rows:
    """Rows ``rows`` of a (memory-mapped) array, gathered only when indexed."""

    def __init__(self, base, rows):
        self.base, self.rows = base, np.asarray(rows)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, idx):
        return self.base[self.rows[idx]]


def train_teacher(cfg: CompressConfig | dict, show_progress: bool = True) -> dict:
    """Only the teacher stage of ``compress``: OUT/teacher.pt, scored on validation (and the test set once)."""
    cfg = as_config(cfg)
    dist = setup_dist(cfg.device, cfg.dist_timeout_s)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    with _run_lock(dist, out):
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        device = device_for(dist, cfg.device) or pick_device(cfg.device)
        data = load_run_data(cfg, show_progress and dist.main)
        splits = make_splits(data, cfg)
        from dataclasses import replace

        teacher, info = get_teacher(replace(cfg, teacher="", pretrained_teacher=False), data, splits, out, device,
                                    show_progress and dist.main, dist=dist)
        barrier(dist, "saving the teacher")
        if not dist.main:
            return {}
        info["val_acc"] = evaluate(teacher, splits.val_set, data.mean, data.std, device)
        # the test set once, plain and with flip test-time augmentation (reported side by side, chosen by neither)
        info["test_acc"] = teacher_accuracy(teacher, "test", data.test, None, data.mean, data.std, device)
        info["test_acc_flip_tta"] = evaluate(teacher, data.test, data.mean, data.std, device, tta=1)
        write_json(out / "teacher.json", {k: v for k, v in info.items() if k != "history"} | {"history": info.get("history")})
        return info


def load_report(out: str | Path) -> dict:
    return read_json(Path(out) / "report.json")

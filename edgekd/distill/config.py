"""Run settings for ``edgekd compress``: presets, TOML files and flags, in that order, all type-checked.

A preset gives every field; a TOML file (``--config run.toml``) overrides some; flags
override last; Python callers pass a dict or keywords. Every setting is checked for its
type and range before any data is loaded or a model trained (``epochs = 2.7``,
``export = "no"`` or ``lr = "fast"`` are one-line errors, not a crash 17 minutes in). The
resolved config is written to ``OUT/config.toml`` with the report.
"""

from __future__ import annotations

import math
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from edgekd.errors import EdgekdError
from edgekd.formats import QAT_MODES

AUGMENTATIONS = ("ig",)  # method parts that are augmentations, not losses


@dataclass
class CompressConfig:
    # data
    data: str = "digits"  # digits | cifar10 | cifar100 | a path (ImageFolder dir/zip/tar, .csv, .npz, CIFAR archive)
    image_size: int = 0  # 0 = the images' own size (they must all share it)
    mean: list = field(default_factory=list)  # per-channel, [0, 1] units; empty = from the training split
    std: list = field(default_factory=list)
    input_range: str = ""  # "0,1": the models take x/255 with no mean/std (like the paper's published students)
    val_fraction: float = 0.1  # held out of train when the data has no val/ split
    val_subset: int = 0  # score validation on a stratified subset of this many held-out images (0 = all)
    split_seed: int = 0
    train_subset: int = 0  # 0 = all training images (after the validation split)
    subset_seed: int = -1  # seed of the training-subset draw; -1 = split_seed
    # Monte Carlo: train on a stratified fraction of the training images above, drawn with fraction_seed.
    # IG maps are computed once for all those images and shared by every draw.
    train_fraction: float = 1.0
    fraction_seed: int = 0
    # teacher
    teacher: str = ""  # weights or a TorchScript / .pt2 file; empty = the shipped one, or train one into OUT/teacher.pt
    pretrained_teacher: bool = True  # use the teacher edgekd ships for this architecture and data, where there is one
    teacher_arch: str = "mobilenetv2_cifar"  # registry name or package.module:callable
    teacher_kwargs: dict = field(default_factory=dict)
    teacher_recipe: str = "auto"  # auto (fast for airbench, else plain) | plain (teacher_* settings) | fast (airbench's)
    teacher_epochs: int = 5
    teacher_lr: float = 1e-3
    teacher_optimizer: str = "adam"
    teacher_weight_decay: float = 0.0
    teacher_subset: int = 0  # 0 = same images as the student
    teacher_label_smoothing: float = -1.0  # -1 = the recipe's own (fast: airbench's 0.2; plain: label_smoothing)
    allow_student_teacher: bool = False  # distil from a model edgekd wrote as a student
    # student
    student_arch: str = "student"  # registry name or package.module:callable
    student_kwargs: dict = field(default_factory=dict)
    cf: float = 4.12  # the paper's truncated student: pick the truncation by its compression factor
    early_width: float = 1.0
    # random: the builder's initialisation | teacher: start from the teacher's most useful channels (the student
    # must be the teacher's structure, narrower or with fewer blocks; edgekd.models.prune) | auto: from the teacher
    # where the student has its structure, else at random (the reason is logged and in report.json)
    student_init: str = "random"
    # method: student | any registered loss or augmentation joined by + (kd, at, dist, dkd, ig)
    method: str = "kd+ig"
    loss_weights: dict = field(default_factory=dict)  # e.g. {ce = 0.5, dist = 2.0}: overrides the method's weights
    alpha: float = 0.01  # KD weight (CE gets 1 − alpha)
    temperature: float = 2.5
    gamma: float = 0.8  # attention-transfer weight
    at_pairs: Any = "auto"  # "auto" or [[student_path, teacher_path], ...]
    label_smoothing: float = 0.0
    # choosing the student by measured latency (0 = off: student_arch/cf as given)
    latency_budget_ms: float = 0.0  # ship the most accurate candidate whose INT8 file runs within this (p50)
    latency_format: str = "onnx-int8"  # the format the budget is for: onnx-int8 | tflite-int8
    latency_table: str = ""  # an `edgekd bench --json` file measured on the device; empty = measure here
    latency_profile: str = ""  # bench settings (threads, runs) when measuring here: a profile name or file
    latency_threads: int = 1  # intra-op threads of the runtime when measuring here (not torch's training threads)
    latency_families: str = "all"  # candidate families: truncated, mobilenetv2, resnet, airbench (comma-separated)
    latency_candidates: list = field(default_factory=list)  # or exactly these: "resnet8" / {arch = ..., kwargs = {...}}
    proxy_candidates: int = 3  # short proxy runs rank this many fastest-growing candidates under the budget
    proxy_epochs: int = 2
    proxy_train_subset: int = 2000
    # training
    recipe: str = "plain"  # plain (the settings below) | fast (airbench's recipe, its batch, lr and schedule)
    mix: str = "none"  # none | mixup | cutmix: input mixing; with KD the teacher scores the mixed images
    mix_alpha: float = 1.0
    # online: the teacher scores every batch the student sees (function matching); cached: it scores each
    # training image and its mirror once and only IG-overlaid images online (KD without the teacher's pass)
    teacher_targets: str = "online"
    # KD's targets are the teacher's test-time-augmented logits: 0 its view of the image, 1 the mean over the image
    # and its mirror, 2 also over ±1 px translations (a more accurate teacher for the price of more teacher passes:
    # free with cached targets at 1, which score the mirror anyway)
    teacher_tta: int = 0
    epochs: int = 5
    batch_size: int = 0  # 0 = the recipe's own: plain 64; fast airbench's 1024 (smaller for small sets)
    lr: float = 1e-3
    lr_scale: float = 0.0  # fast recipe: multiplies its learning rate (0 = the student's registry default)
    optimizer: str = "adam"
    schedule: str = "cosine"
    weight_decay: float = 0.0
    amp: str = "off"  # off | bf16 | auto (bf16 where the CPU has AVX-512-BF16/AMX, or on a GPU)
    ig_p: float = 0.1
    ig_steps: int = 50  # 0 = the fewest steps whose completeness error on validation images is within ig_tolerance
    ig_tolerance: float = 0.05
    ig_amp: str = "off"  # off | bf16 | auto: the teacher's IG forward/backward under bf16 autocast
    ig_internal_batch: int = 64
    precise_bn_images: int = 2048  # BN statistics recomputed on this many training images before each validation
    seed: int = 0
    # export (the export stage reads these)
    export: bool = True
    formats: str = "all"
    calib_images: int = 256
    gate_pp: float = 1.0
    robustness_images: int = 1000  # test images scored again under corruptions for the card (0 = no robustness section)
    qat: str = "auto"  # auto: QAT for ONNX INT8 when post-training agreement on validation < int8_agreement | on | off
    qat_steps: int = 400
    int8_agreement: float = 0.997
    # runtime
    device: str = "auto"
    sync_bn: bool = False  # under torchrun on GPUs: SyncBatchNorm across ranks
    dist_timeout_s: float = 600.0  # under torchrun: how long a rank waits for a dead peer before stopping
    threads: int = 0  # 0 = torch default
    out: str = "runs/compress"
    name: str = ""  # export/<name>; empty = derived from data, student and method
    export_dir: str = ""  # empty = OUT/export (a run never writes over the project's files)
    preset: str = "quick"
    verbose: bool = False
    notes: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    # CPU, minutes: the embedded default (digits) runs end to end in about 3 minutes on 2 cores
    # (benchmarks/default_job.md). A fast dense teacher (airbench), bf16 where the CPU has it,
    # short schedules and IG with 8 steps; on CIFAR-10 a stratified 5,000-image subset. No QAT: the fine-tune
    # would not fit the 3 minutes, and on the students measured it did not beat post-training INT8 on test
    # (benchmarks/qat.md); `edgekd export OUT/student.pt --qat on` applies it afterwards.
    "quick": dict(
        teacher_arch="airbench", teacher_recipe="auto", teacher_epochs=8, epochs=6, ig_steps=8, train_subset=5000,
        teacher_subset=0, batch_size=64, lr=2e-3, teacher_lr=2e-3, amp="auto", precise_bn_images=1024, qat="off",
    ),
    # CPU, under half an hour on 2 cores for CIFAR-10 (benchmarks/students_converged.md): every training
    # image, airbench's recipe for the student, KD from the shipped teacher, IG with the step count chosen
    # by IG's completeness error, an airbench ×0.5 student (0.5 M parameters, ≥ 6× the teacher's speed).
    # The student starts from the teacher's most useful channels (student_init, edgekd.models.prune) and is
    # fine-tuned at FROM_TEACHER's fraction of airbench's rate (edgekd.distill.recipes): after 8 epochs of KD it
    # is 1.3 pp ahead of one started at random on validation; at 24 epochs the two are level (3 seeds each, 92.28 %
    # test against the random start's 28 epochs), in 25–27 min instead of 28.6–30.3. The teacher scores each image
    # and its mirror once and every IG-overlaid image online (teacher_targets cached): an epoch with IG overlays takes
    # ~37 s instead of ~60 s, at a validation cost within one seed's noise (8-epoch KD: 91.42 vs 91.66 %). 24 epochs
    # leave ~3 minutes of the half hour for a slower machine (IG ~8.5 min + cache 0.8 + 24 × ~38 s + export 1.3). KD
    # weight α 0.8 and T 2 were chosen on validation among T 1 / 2 / 4 at α 0.5 and α 0.8 at T 2 (8-epoch runs); the
    # teacher's mirror ensemble as targets (teacher_tta 1) did not beat its own logits there. QAT is off: its ~2.5 min
    # (benchmarks/qat.md) do not fit the half hour, and on these students it did not beat post-training INT8 on test;
    # `edgekd export OUT/student.pt --qat on` applies it afterwards.
    "cpu": dict(
        teacher_arch="airbench", teacher_recipe="auto", teacher_epochs=12, recipe="fast", epochs=24,
        teacher_targets="cached", student_arch="airbench_x0_5", student_init="auto", method="kd+ig", alpha=0.8,
        temperature=2.0, label_smoothing=0.2, ig_steps=0, ig_tolerance=0.1, ig_amp="auto", train_subset=0, amp="auto",
        precise_bn_images=0, qat="off",
    ),
    # The paper's recipe (arXiv 2506.14440): 100 epochs, Adam 1e-3, batch 64, IG 50 steps. For a GPU.
    "paper": dict(
        teacher_arch="mobilenetv2_cifar", teacher_recipe="plain", teacher_epochs=200, teacher_lr=0.1,
        teacher_optimizer="sgd", teacher_weight_decay=5e-4, epochs=100, ig_steps=50, train_subset=0, batch_size=64,
        lr=1e-3, optimizer="adam", schedule="constant", alpha=0.01, temperature=2.5, gamma=0.8, ig_p=0.1,
        pretrained_teacher=False,
    ),
}

CHOICES = {
    "optimizer": ("adam", "sgd"), "teacher_optimizer": ("adam", "sgd"),
    "schedule": ("cosine", "constant", "triangle"), "amp": ("off", "bf16", "auto"), "ig_amp": ("off", "bf16", "auto"),
    "teacher_recipe": ("auto", "plain", "fast"), "preset": tuple(PRESETS), "recipe": ("plain", "fast"),
    "mix": ("none", "mixup", "cutmix"), "teacher_targets": ("online", "cached"), "qat": QAT_MODES,
    "student_init": ("random", "teacher", "auto"),
    "latency_format": ("onnx-int8", "tflite-int8", "onnx", "tflite"),
}
# (minimum, maximum, minimum is exclusive)
RANGES = {
    "epochs": (1, None, False), "teacher_epochs": (1, None, False), "batch_size": (0, None, False),
    "ig_steps": (0, None, False), "ig_tolerance": (0, None, True), "ig_internal_batch": (1, None, False), "calib_images": (1, None, False),
    "lr": (0, None, True), "lr_scale": (0, None, False), "teacher_lr": (0, None, True), "weight_decay": (0, None, False),
    "teacher_weight_decay": (0, None, False), "val_fraction": (0, 1, True), "train_fraction": (0, 1, True),
    "ig_p": (0, 1, False), "teacher_tta": (0, 2, False), "alpha": (0, 1, False), "temperature": (0, None, True), "gamma": (0, None, False),
    "label_smoothing": (0, 1, False), "teacher_label_smoothing": (-1, 1, False), "cf": (1, None, False), "early_width": (0, None, True),
    "train_subset": (0, None, False), "teacher_subset": (0, None, False), "precise_bn_images": (0, None, False),
    "val_subset": (0, None, False), "mix_alpha": (0, None, True),
    "threads": (0, None, False), "gate_pp": (0, None, False), "robustness_images": (0, None, False), "image_size": (0, None, False),
    "subset_seed": (-1, None, False), "split_seed": (0, None, False), "seed": (0, None, False),
    "fraction_seed": (0, None, False), "dist_timeout_s": (0, None, True),
    "latency_budget_ms": (0, None, False), "latency_threads": (1, None, False), "proxy_candidates": (1, None, False), "proxy_epochs": (1, None, False),
    "proxy_train_subset": (0, None, False), "qat_steps": (1, None, False), "int8_agreement": (0, 1, True),
}


def _check_type(name: str, value: Any, kind) -> Any:
    """The value as the field's type, or a one-line error. Ints are accepted for floats; nothing else converts."""
    origin = typing.get_origin(kind) or kind
    if kind is Any:
        return value
    if origin is bool:
        if isinstance(value, bool):
            return value
    elif origin is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif origin is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise EdgekdError(f"setting {name} = {value!r} is not a finite number")
            return float(value)
    elif origin is str:
        if isinstance(value, str):
            return value
    elif origin in (dict, list):
        if isinstance(value, origin):
            return value
        if origin is list and isinstance(value, tuple):
            return list(value)
    type_name = getattr(origin, "__name__", str(origin))
    want = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string",
            "dict": "a table (TOML) / dict", "list": "a list"}.get(type_name, type_name)
    raise EdgekdError(f"setting {name} must be {want}, got {value!r} ({type(value).__name__})")


def validate(cfg: CompressConfig) -> CompressConfig:
    """Type, range and choice checks of every field (in place); returns the config."""
    hints = typing.get_type_hints(CompressConfig)
    for f in fields(CompressConfig):
        setattr(cfg, f.name, _check_type(f.name, getattr(cfg, f.name), hints[f.name]))
    for name, (lo, hi, exclusive) in RANGES.items():
        v = getattr(cfg, name)
        if lo is not None and (v <= lo if exclusive else v < lo):
            raise EdgekdError(f"setting {name} must be {'>' if exclusive else '≥'} {lo}, got {v}")
        if hi is not None and v > hi:
            raise EdgekdError(f"setting {name} must be ≤ {hi}, got {v}")
    for name, options in CHOICES.items():
        if getattr(cfg, name) not in options:
            raise EdgekdError(f"unknown {name} {getattr(cfg, name)!r}", f"choose one of: {', '.join(options)}")
    if cfg.image_size and cfg.image_size < 8:
        raise EdgekdError(f"image_size must be 0 (the images' own size) or ≥ 8, got {cfg.image_size}")
    if cfg.input_range and (cfg.mean or cfg.std):
        raise EdgekdError("give input_range or mean/std, not both")
    input_normalisation(cfg)
    if cfg.teacher_targets == "cached" and (cfg.mix != "none" or "at" in parse_method(cfg.method)):
        raise EdgekdError(f"teacher_targets = cached cannot serve {'mix = ' + cfg.mix if cfg.mix != 'none' else 'attention transfer'}"
                          ": the teacher must score every batch", "add --teacher-targets online (teacher_targets = \"online\")")
    if cfg.teacher_tta and "at" in parse_method(cfg.method):
        raise EdgekdError("teacher_tta cannot serve attention transfer: it matches the teacher's features of the "
                          "student's own view", "use teacher_tta = 0 (--teacher-tta 0) with at")
    if not (cfg.device in ("auto", "cpu", "cuda") or cfg.device.startswith("cuda:")):
        raise EdgekdError(f"unknown device {cfg.device!r}", "use auto, cpu, cuda or cuda:N")
    if not (cfg.at_pairs == "auto" or isinstance(cfg.at_pairs, list)):
        raise EdgekdError(f"at_pairs must be \"auto\" or a list of [student_path, teacher_path], got {cfg.at_pairs!r}")
    from edgekd.formats import parse_formats

    parse_formats(cfg.formats)
    loss_config(cfg)
    if cfg.latency_budget_ms:
        from edgekd.select.candidates import parse_families

        parse_families(cfg.latency_families)
        if cfg.latency_candidates:
            from edgekd.select.candidates import parse_candidates

            parse_candidates(cfg.latency_candidates)
        if cfg.latency_table and cfg.latency_profile:
            raise EdgekdError("give latency_table (measured on the device) or latency_profile (measure here), not both")
    for key in ("teacher_kwargs", "student_kwargs"):
        bad = [k for k in getattr(cfg, key) if not isinstance(k, str)]
        if bad:
            raise EdgekdError(f"{key} keys must be argument names, got {bad}")
    if cfg.student_arch == "student" and "blocks_removed" not in cfg.student_kwargs:
        from edgekd.models.student import blocks_for_cf

        blocks_for_cf(cfg.cf)
    return cfg


def input_normalisation(cfg: CompressConfig) -> tuple[list | None, list | None]:
    """(mean, std) the models take, or (None, None) for the data set's own statistics."""
    if cfg.input_range:
        if cfg.input_range.replace(" ", "") not in ("0,1", "[0,1]"):
            raise EdgekdError(f"input_range {cfg.input_range!r} is not supported", "use 0,1 (pixels / 255)")
        return [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    for name in ("mean", "std"):
        v = getattr(cfg, name)
        if v and (len(v) != 3 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)):
            raise EdgekdError(f"{name} must be three numbers (R, G, B in [0, 1] units), got {v!r}")
    if any(s <= 0 for s in cfg.std):
        raise EdgekdError(f"std must be positive, got {cfg.std}")
    if bool(cfg.mean) != bool(cfg.std):
        raise EdgekdError("give both mean and std, or neither")
    return (list(cfg.mean) or None), (list(cfg.std) or None)


def parse_method(method: str) -> set[str]:
    """``"student"`` (plain CE) or a ``+``-joined mix of registered losses and ``ig``, e.g. ``"kd+ig"``."""
    from edgekd.distill.losses import LOSSES

    if not isinstance(method, str):
        raise EdgekdError(f"method must be a string such as kd+ig, got {method!r}")
    m = method.strip().lower()
    if m in ("student", "ce", "baseline", "none"):
        return set()
    parts = {p.strip() for p in m.split("+")}
    known = (set(LOSSES) - {"ce"}) | set(AUGMENTATIONS)
    bad = parts - known
    if bad or not parts or "" in parts:
        raise EdgekdError(f"unknown method {method!r}",
                          f"use student, or a mix of {', '.join(sorted(known))} joined by + (e.g. kd+ig+at)")
    return parts


def loss_config(cfg: CompressConfig):
    """The method's losses with their weights: the paper's α·KD + (1−α)·CE, γ·AT, 1·others; loss_weights override."""
    from edgekd.distill.losses import LossConfig

    parts = parse_method(cfg.method)
    weights = {"ce": 1.0 - cfg.alpha if "kd" in parts else 1.0}
    for p in sorted(parts - set(AUGMENTATIONS)):
        weights[p] = {"kd": cfg.alpha, "at": cfg.gamma}.get(p, 1.0)
    for k, v in cfg.loss_weights.items():
        weights[k] = v
    params = {"temperature": cfg.temperature, "label_smoothing": cfg.label_smoothing}
    return LossConfig(weights=weights, params=params)


def resolve_config(preset: str = "quick", toml: dict | None = None, overrides: dict | None = None) -> CompressConfig:
    if preset not in PRESETS:
        raise EdgekdError(f"unknown preset {preset!r}", f"choose one of: {', '.join(PRESETS)}")
    known = {f.name for f in fields(CompressConfig)}
    merged: dict[str, Any] = {"preset": preset, **PRESETS[preset]}
    for source, values in (("config file", toml or {}), ("flags", overrides or {})):
        unknown = set(values) - known
        if unknown:
            raise EdgekdError(f"unknown setting(s) in {source}: {', '.join(sorted(unknown))}",
                              f"known settings: {', '.join(sorted(known - {'notes'}))}")
        merged.update({k: v for k, v in values.items() if v is not None})
    return validate(CompressConfig(**merged))

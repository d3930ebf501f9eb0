"""Run settings for ``edgekd compress``: presets, TOML files and flags, in that order.

A preset gives every field; a TOML file (``--config run.toml``) overrides some; flags
override last. The resolved config is written to ``OUT/config.toml`` with the report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from edgekd.errors import EdgekdError

METHOD_PARTS = ("kd", "ig", "at")


def parse_method(method: str) -> set[str]:
    """``"student"`` (plain CE) or a ``+``-joined mix of kd, ig, at, e.g. ``"kd+ig"``."""
    m = method.strip().lower()
    if m in ("student", "ce", "baseline", "none"):
        return set()
    parts = {p.strip() for p in m.split("+")}
    bad = parts - set(METHOD_PARTS)
    if bad or not parts:
        raise EdgekdError(f"unknown method {method!r}", "use student, or a mix of kd, ig, at joined by + (e.g. kd+ig+at)")
    return parts


@dataclass
class CompressConfig:
    # data
    data: str = "digits"  # digits | cifar10 | path to cifar-10-python.tar.gz | ImageFolder dir/zip
    val_fraction: float = 0.1
    split_seed: int = 0
    train_subset: int = 0  # 0 = all training images (after the validation split)
    subset_seed: int = -1  # seed of the training-subset draw; -1 = split_seed
    # Monte Carlo: train on a stratified fraction of the training images above, drawn with fraction_seed.
    # IG maps are computed once for all those images and shared by every draw.
    train_fraction: float = 1.0
    fraction_seed: int = 0
    # teacher
    teacher: str = ""  # path to weights; empty = train one (or reuse OUT/teacher.pt)
    teacher_arch: str = "mobilenetv2_cifar"
    teacher_epochs: int = 5
    teacher_lr: float = 1e-3
    teacher_optimizer: str = "adam"
    teacher_weight_decay: float = 0.0
    teacher_subset: int = 0  # 0 = same images as the student
    # student and method
    cf: float = 4.12
    early_width: float = 1.0
    method: str = "kd+ig"
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    schedule: str = "cosine"
    weight_decay: float = 0.0
    alpha: float = 0.01
    temperature: float = 2.5
    gamma: float = 0.8
    ig_p: float = 0.1
    ig_steps: int = 50
    ig_internal_batch: int = 64
    precise_bn_images: int = 2048  # BN statistics recomputed on this many training images before each validation
    seed: int = 0
    # export (the export stage reads these)
    export: bool = True
    formats: str = "all"
    calib_images: int = 256
    gate_pp: float = 1.0
    # runtime
    device: str = "auto"
    threads: int = 0  # 0 = torch default
    out: str = "runs/compress"
    name: str = ""  # export/<name>; empty = derived from data, cf and method
    export_dir: str = "export"
    preset: str = "quick"
    notes: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    # CPU, minutes. On digits (1,438 training images) the whole pipeline takes a few minutes on 2 cores.
    # On CIFAR-10 it trains on a stratified 5,000-image subset, short schedules and IG with 16 steps so
    # teacher + IG + one student finish in about half an hour; these are not the paper's figures.
    "quick": dict(
        teacher_epochs=8, epochs=8, ig_steps=8, train_subset=5000, teacher_subset=0, batch_size=64,
        lr=2e-3, teacher_lr=2e-3,
    ),
    # The paper's recipe (arXiv 2506.14440): 100 epochs, Adam 1e-3, batch 64, IG 50 steps. For a GPU.
    "paper": dict(
        teacher_epochs=200, teacher_lr=0.1, teacher_optimizer="sgd", teacher_weight_decay=5e-4, epochs=100, ig_steps=50, train_subset=0, batch_size=64, lr=1e-3,
        optimizer="adam", schedule="constant", alpha=0.01, temperature=2.5, gamma=0.8, ig_p=0.1,
    ),
}


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
    cfg = CompressConfig(**merged)
    # Check what can be checked before any data is loaded or a teacher trained.
    parse_method(cfg.method)
    from edgekd.models.student import blocks_for_cf

    blocks_for_cf(cfg.cf)
    for name in ("epochs", "batch_size", "ig_steps"):
        if getattr(cfg, name) < 1:
            raise EdgekdError(f"{name} must be at least 1, got {getattr(cfg, name)}")
    if not 0.0 <= cfg.ig_p <= 1.0:
        raise EdgekdError(f"ig_p is a probability, got {cfg.ig_p}")
    return cfg

"""Training recipes: how the teacher and student stages turn settings into a :class:`TrainConfig`.

``plain`` is the generic one (``teacher_epochs``, ``teacher_lr``, ``teacher_optimizer``,
cosine schedule). ``fast`` is Keller Jordan's airbench94 recipe (arXiv 2404.00498) written
in PyTorch's mean-loss units: Nesterov SGD with momentum 0.85, the learning rate and
weight decay of 11.5 and 0.0153 per 1024 examples, BatchNorm shifts learning 64× faster,
label smoothing 0.2, a triangular schedule (0.2 → 1 at 23 % → 0.07), lookahead every five
steps, alternating flips and ±2 px reflect-padded translations, the whitening bias
trained for three epochs. It is meant for the ``airbench`` network.

Students take the same two recipes (``recipe``): ``fast`` keeps airbench's optimiser,
schedule and augmentation and swaps in the method's losses, so KD is function matching: the
teacher scores the very crop, flip, IG overlay and mix the student sees, every step.
``batch_size`` sets the student's batch under either recipe (0: the recipe's own); the fast
recipe scales its learning rate with it, as airbench's per-example rate asks.
"""

from __future__ import annotations

from dataclasses import replace

from edgekd.distill.losses import LossConfig
from edgekd.distill.trainer import TrainConfig

PLAIN_BATCH_SIZE = 64
AIRBENCH = dict(lr_per_1024=11.5, wd_per_1024=0.0153, momentum=0.85, bias_scaler=64.0, label_smoothing=0.2,
                whiten_bias_epochs=3, batch_size=1024)


def fast_recipe(epochs: int, batch_size: int = AIRBENCH["batch_size"], seed: int = 0, amp: str = "auto") -> TrainConfig:
    a = AIRBENCH
    momentum = a["momentum"]
    # airbench sums the loss over the batch and divides its lr by 1024·(1 + 1/(1 − momentum)); with a
    # mean loss the same steps need lr × batch size, and a weight decay independent of the batch size.
    kilostep_scale = 1024 * (1 + 1 / (1 - momentum))
    lr = a["lr_per_1024"] / kilostep_scale * batch_size
    weight_decay = a["wd_per_1024"] / a["lr_per_1024"]
    return TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, optimizer="sgd", momentum=momentum, weight_decay=weight_decay,
        norm_bias_lr_scale=a["bias_scaler"], schedule="triangle", triangle=(0.2, 0.23, 0.07), seed=seed,
        crop_pad=2, pad_mode="reflect", flip="alternating", lookahead=True, amp=amp,
        freeze_after={"whiten.bias": a["whiten_bias_epochs"]}, precise_bn_images=0,
        loss=LossConfig(weights={"ce": 1.0}, params={"label_smoothing": a["label_smoothing"]}),
    )


def fast_batch_size(n_images: int) -> int:
    """airbench's 1024, or a smaller power of two for small sets (at least 16 steps an epoch, at least 64)."""
    b = 1024
    while b > 64 and n_images < 16 * b:
        b //= 2
    return b


def plain_batch_size(cfg) -> int:
    """The plain recipe's batch: the setting, or 64 (``batch_size = 0``)."""
    return cfg.batch_size or PLAIN_BATCH_SIZE


def student_batch_size(cfg, n_images: int) -> int:
    """The student's batch: the setting, or the recipe's own (fast: airbench's 1024, smaller for small sets)."""
    if cfg.batch_size:
        return cfg.batch_size
    return fast_batch_size(n_images) if cfg.recipe == "fast" else PLAIN_BATCH_SIZE


def teacher_train_config(cfg, n_images: int) -> TrainConfig:
    """The teacher stage's TrainConfig from a CompressConfig and the number of training images."""
    if cfg.teacher_recipe == "fast" or (cfg.teacher_recipe == "auto" and cfg.teacher_arch == "airbench"):
        tc = replace(fast_recipe(cfg.teacher_epochs, fast_batch_size(n_images), seed=cfg.seed, amp=cfg.amp),
                     sync_bn=cfg.sync_bn)
        if cfg.teacher_label_smoothing >= 0:  # teachers trained with smoothing may distil worse (Müller et al. 2019)
            tc = replace(tc, loss=LossConfig(weights={"ce": 1.0}, params={"label_smoothing": cfg.teacher_label_smoothing}))
        return tc
    smoothing = cfg.label_smoothing if cfg.teacher_label_smoothing < 0 else cfg.teacher_label_smoothing
    return TrainConfig(epochs=cfg.teacher_epochs, batch_size=plain_batch_size(cfg), lr=cfg.teacher_lr,
                       optimizer=cfg.teacher_optimizer, weight_decay=cfg.teacher_weight_decay, schedule="cosine",
                       seed=cfg.seed, amp=cfg.amp, precise_bn_images=cfg.precise_bn_images, sync_bn=cfg.sync_bn,
                       loss=LossConfig(weights={"ce": 1.0}, params={"label_smoothing": smoothing}))


def fast_overrides(cfg) -> dict:
    """What the student's registry entry changes in the fast recipe (``default_cfg["fast_recipe"]``)."""
    from edgekd.models.registry import get_default_cfg, is_registered

    return dict(get_default_cfg(cfg.student_arch).get("fast_recipe", {})) if is_registered(cfg.student_arch) else {}


# A student started from its teacher's channels (student_init) is fine-tuned, not trained from scratch: at the
# rate it would train from scratch the first epochs undo what it inherited (benchmarks/students_converged.md).
FROM_TEACHER = dict(lr_scale=0.1)


def fast_lr_scale(cfg, from_teacher: bool = False) -> float:
    """The factor on the fast recipe's learning rate: the setting; else the student's registry default (1), times
    ``FROM_TEACHER``'s for a student started from its teacher."""
    if cfg.lr_scale:
        return cfg.lr_scale
    return fast_overrides(cfg).get("lr_scale", 1.0) * (FROM_TEACHER["lr_scale"] if from_teacher else 1.0)


def student_train_config(cfg, n_images: int, from_teacher: bool | None = None) -> TrainConfig:
    """The student stage's TrainConfig: the method's losses on the plain or the fast recipe.

    ``from_teacher``: whether the student was started from the teacher's channels (default: ``student_init`` asks
    for it; with ``auto`` the pipeline passes what happened)."""
    from edgekd.distill.config import loss_config

    if from_teacher is None:
        from_teacher = cfg.student_init != "random"
    if cfg.recipe == "fast":
        tc = fast_recipe(cfg.epochs, student_batch_size(cfg, n_images), seed=cfg.seed, amp=cfg.amp)
        return replace(tc, lr=tc.lr * fast_lr_scale(cfg, from_teacher), norm_bias_lr_scale=fast_overrides(cfg).get(
                           "norm_bias_lr_scale", tc.norm_bias_lr_scale),
                       loss=loss_config(cfg), ig_p=cfg.ig_p, mix=cfg.mix, mix_alpha=cfg.mix_alpha,
                       teacher_targets=cfg.teacher_targets, teacher_tta=cfg.teacher_tta,
                       precise_bn_images=cfg.precise_bn_images, sync_bn=cfg.sync_bn,
                       init_from_data=not from_teacher)
    return TrainConfig(epochs=cfg.epochs, batch_size=plain_batch_size(cfg), lr=cfg.lr, optimizer=cfg.optimizer,
                       weight_decay=cfg.weight_decay, schedule=cfg.schedule, seed=cfg.seed, ig_p=cfg.ig_p,
                       mix=cfg.mix, mix_alpha=cfg.mix_alpha, teacher_targets=cfg.teacher_targets, teacher_tta=cfg.teacher_tta,
                       loss=loss_config(cfg),
                       precise_bn_images=cfg.precise_bn_images, amp=cfg.amp, sync_bn=cfg.sync_bn,
                       init_from_data=not from_teacher)

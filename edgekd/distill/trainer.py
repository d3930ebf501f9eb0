"""The training loop: plain PyTorch, one function, read top to bottom.

It trains teachers and students alike: any ``nn.Module`` whose ``forward`` returns
logits. Students may mix any registered losses (``edgekd.distill.losses``); teacher
logits come from ``teacher(x)`` on the batch (or, with ``teacher_targets = "cached"``, from
its logits of each image and mirror computed once) and intermediate features from forward
hooks on declared module paths. Model selection uses the validation split only; the caller scores
the test set once, after training. A checkpoint is written atomically after every epoch
and a run with the same settings resumes from it exactly.

Small named helpers feed the loop: ``get_batch`` (gather + augment + IG overlay),
``teacher_logits`` / ``cached_teacher_logits`` (the targets), ``make_optimizer`` /
``lr_factor`` (optimiser and schedule), ``evaluate`` and ``recompute_bn_stats``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.data.dataset import ImageSet
from edgekd.data.transforms import normalize, random_crop_flip, to_float
from edgekd.distill.distributed import Dist, all_sum, barrier, broadcast_buffers, current
from edgekd.distill.losses import LossConfig, LossInputs, total_loss
from edgekd.distill.overlay import overlay_ig
from edgekd.errors import EdgekdError
from edgekd.models.features import FeatureTaps
from edgekd.utils.io import atomic_torch_save


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | sgd (Nesterov)
    momentum: float = 0.9
    weight_decay: float = 0.0
    norm_bias_lr_scale: float = 1.0  # BatchNorm shifts learn this much faster (airbench: 64)
    schedule: str = "cosine"  # cosine | constant | triangle
    triangle: tuple[float, float, float] = (0.2, 0.23, 0.07)  # start factor, peak position, end factor
    seed: int = 0
    label_smoothing: float = 0.0
    crop_pad: int = 4
    pad_mode: str = "constant"  # constant (zeros) | reflect
    flip: str = "random"  # random | alternating (each image flipped every other epoch) | none
    lookahead: bool = False  # airbench's lookahead EMA of the weights, merged at the end
    amp: str = "off"  # off | bf16 (autocast); see pick_amp
    freeze_after: dict = field(default_factory=dict)  # parameter name → epochs it trains, then frozen
    ig_p: float = 0.1  # fraction of images overlaid with their IG map (when maps are given)
    ig_power: tuple[float, float] = (1.0, 2.0)
    # Input mixing after crop/flip/overlay (function matching, Beyer et al. arXiv 2106.05237): the teacher
    # scores the mixed image the student sees; CE takes both labels weighted by the mixing fraction.
    mix: str = "none"  # none | mixup | cutmix
    mix_alpha: float = 1.0  # Beta(α, α) of the mixing fraction
    # Where the teacher's targets come from. "online": the teacher scores every batch the student sees.
    # "cached": it scores every training image and its mirror once, before the first epoch; batches take
    # those logits (the ±crop_pad translation is the only difference from the student's view) and only
    # IG-overlaid or mixed images are scored online. On a CPU the teacher's pass is ~40 % of a KD step.
    teacher_targets: str = "online"
    # The targets are the teacher's test-time-augmented logits (tta_logits' levels): 1 averages the image and its
    # mirror, which the cache scores anyway, so a cached flip ensemble costs nothing per step.
    teacher_tta: int = 0
    # Recompute BatchNorm statistics on this many training images before each validation.
    # In short schedules the running averages lag far behind the weights (seen here: 9 % in
    # eval mode vs 34 % with recomputed statistics after 2 epochs on digits).
    precise_bn_images: int = 2048
    eval_every: int = 1  # validate every N epochs (and always after the last)
    sync_bn: bool = False  # SyncBatchNorm across ranks (GPUs only: PyTorch has no CPU SyncBatchNorm)
    init_from_data: bool = True  # set data-dependent first layers (airbench's whitening) from the training images
    loss: LossConfig = field(default_factory=LossConfig)

    def fingerprint(self) -> str:
        settings = asdict(self)
        for name, default in ADDED_SETTINGS.items():  # checkpoints made before these existed still resume
            if settings[name] == default:
                del settings[name]
        return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


# Settings added after checkpoints were already being written, with the value those checkpoints used.
ADDED_SETTINGS = {"sync_bn": False, "mix": "none", "mix_alpha": 1.0, "teacher_targets": "online", "init_from_data": True}


@dataclass
class TrainResult:
    best_val_acc: float
    best_epoch: int
    history: list[dict]
    seconds: float


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise EdgekdError("CUDA was requested but no GPU is visible", "use --device cpu")
    try:
        return torch.device(requested)
    except RuntimeError:
        raise EdgekdError(f"unknown device {requested!r}", "use auto, cpu or cuda") from None


def cpu_has_bf16() -> bool:
    """AVX-512-BF16 or AMX: where oneDNN runs bf16 convolutions natively (about 2× fp32 here)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_amp(requested: str, device: torch.device) -> str:
    if requested not in ("off", "bf16", "auto"):
        raise EdgekdError(f"unknown amp setting {requested!r}", "use off, bf16 or auto")
    if requested == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "off"
        return "bf16" if cpu_has_bf16() else "off"
    return requested


def _autocast(device: torch.device, amp: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16")


def to_input(images_uint8, mean, std, device) -> torch.Tensor:
    # memory-mapped splits are read-only; torch wants a writable buffer
    x = normalize(to_float(torch.from_numpy(np.require(images_uint8, requirements=["C", "W"]))), mean, std)
    return x.to(device).contiguous(memory_format=torch.channels_last)


def tta_logits(model: nn.Module, x: torch.Tensor, level: int) -> torch.Tensor:
    """Test-time augmentation: 0 none, 1 mean over the image and its mirror, 2 also ±1 px translations."""
    if level == 0:
        return model(x)

    def mirror(t):
        return 0.5 * model(t) + 0.5 * model(t.flip(-1))

    logits = mirror(x)
    if level == 1:
        return logits
    padded = nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    h, w = x.shape[-2:]
    shifted = 0.5 * mirror(padded[..., :h, :w]) + 0.5 * mirror(padded[..., 2:, 2:])
    return 0.5 * logits + 0.5 * shifted


@torch.no_grad()
def predict(model: nn.Module, data: ImageSet, mean, std, device="cpu", batch_size: int = 500, tta: int = 0,
            amp: str = "off") -> np.ndarray:
    """Logits for every image, streamed in batches (never the whole split at once)."""
    model.eval()
    device = torch.device(device)
    out = []
    for images, _ in data.batches(batch_size):
        with _autocast(device, amp):
            out.append(tta_logits(model, to_input(images, mean, std, device), tta).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


class TrainingDiverged(EdgekdError):
    """The weights or the outputs became NaN/inf from finite inputs: this configuration diverged (a result, not a
    fault of the data); an experiment records it as a failed run and goes on."""


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageSet, mean, std, device="cpu", batch_size: int = 500, tta: int = 0,
             amp: str = "off", dist: Dist | None = None) -> float:
    """Top-1 accuracy in percent on un-augmented images. With several ranks each scores its share once."""
    if len(data) == 0:
        return float("nan")
    dist = dist or Dist()
    part = data.subset(np.arange(dist.rank, len(data), dist.world)) if dist.active else data
    logits = predict(model, part, mean, std, device, batch_size, tta, amp)
    finite = float(np.isfinite(logits).all())
    correct = float((logits.argmax(1) == part.labels).sum()) if len(part) else 0.0
    correct, finite, n = all_sum(dist, [correct, finite, float(len(part))], "scoring validation")
    if finite < dist.world:
        raise TrainingDiverged("the model outputs NaN or infinite values", "its weights are broken: retrain it "
                               "(with a lower learning rate if training diverged)")
    return 100.0 * correct / n


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, data: ImageSet, mean, std, n_images: int, device="cpu", batch_size: int = 128,
                       amp: str = "off"):
    """Replace BatchNorm running statistics by exact averages over ``n_images`` training images."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or n_images <= 0:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    # A fixed random sample: image files are often stored class by class.
    pick = np.sort(np.random.default_rng(0).permutation(len(data))[: min(n_images, len(data))])
    device = torch.device(device)
    for lo in range(0, len(pick), batch_size):
        with _autocast(device, amp):
            model(to_input(data.images[pick[lo : lo + batch_size]], mean, std, device))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()


def _param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    norm_types = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)
    norm_params = {id(p) for m in model.modules() if isinstance(m, norm_types) for p in m.parameters(recurse=False)}
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if cfg.norm_bias_lr_scale == 1.0:  # (this order: checkpoints' optimizer states index parameters by position)
        norm = [p for _, p in trainable if id(p) in norm_params]
        return [{"params": norm + [p for _, p in trainable if id(p) not in norm_params], "lr": cfg.lr,
                 "weight_decay": cfg.weight_decay}]
    # only the shifts learn faster (airbench freezes its norm scales; a student with learnable scales keeps
    # them at the base rate, where 64× would throw them far from 1)
    norm = [p for n, p in trainable if id(p) in norm_params and n.endswith("bias")]
    other = [p for n, p in trainable if not (id(p) in norm_params and n.endswith("bias"))]
    scale = cfg.norm_bias_lr_scale
    # weight decay per step stays lr·wd: the faster-learning group gets proportionally less decay
    return [{"params": norm, "lr": cfg.lr * scale, "weight_decay": cfg.weight_decay / scale},
            {"params": other, "lr": cfg.lr, "weight_decay": cfg.weight_decay}]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = _param_groups(model, cfg)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    raise EdgekdError(f"unknown optimizer {cfg.optimizer!r}", "use adam or sgd")


def lr_factor(cfg: TrainConfig, step: int, total: int) -> float:
    """The schedule's multiplier of the base learning rate at ``step`` of ``total``."""
    x = min(step, total) / max(1, total)
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * x))
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "triangle":
        start, peak, end = cfg.triangle
        return start + (1 - start) * x / peak if x < peak else 1 + (end - 1) * (x - peak) / (1 - peak)
    raise EdgekdError(f"unknown schedule {cfg.schedule!r}", "use cosine, constant or triangle")


class Batch(typing.NamedTuple):
    x: torch.Tensor  # images in [0, 1], (B, 3, H, W)
    y: torch.Tensor  # labels
    flipped: torch.Tensor | None  # which images were mirrored (None: not recorded)
    overlaid: torch.Tensor | None  # which images carry their IG map (None: no maps)


def get_batch(train_set: ImageSet, idx: np.ndarray, cfg: TrainConfig, generator: torch.Generator, epoch: int,
              flip_bits: np.ndarray | None, ig_maps=None, on_device: dict | None = None) -> Batch:
    """Gather a batch, crop and flip it (its IG maps move with it) and overlay maps on a fraction ``ig_p``.

    ``on_device`` holds the whole split (and maps) as tensors already on the GPU, so batches are gathered and
    augmented there."""
    if on_device is not None:
        sel = torch.from_numpy(idx).to(on_device["images"].device)
        x, y = to_float(on_device["images"][sel]), on_device["labels"][sel]
    else:
        x = to_float(torch.from_numpy(np.require(train_set.images[idx], requirements=["C", "W"])))
        y = torch.from_numpy(train_set.labels[idx])
    flip = None
    if cfg.flip == "none":
        flip = torch.zeros(len(idx), dtype=torch.bool)
    elif cfg.flip == "alternating":
        flip = torch.from_numpy((flip_bits[idx] + epoch) % 2 == 1)
    elif cfg.teacher_targets == "cached":  # drawn here so the cache knows which mirror each image is
        flip = torch.rand(len(idx), generator=generator) < 0.5
    overlaid = None
    if ig_maps is not None:
        m = (on_device["maps"][sel].float() if on_device is not None and "maps" in on_device
             else torch.from_numpy(np.asarray(ig_maps[idx], dtype=np.float32)).to(x.device)).unsqueeze(1)
        x, m = random_crop_flip(x, m, pad=cfg.crop_pad, generator=generator, mode=cfg.pad_mode, flip=flip)
        x, overlaid = overlay_ig(x, m, cfg.ig_p, cfg.ig_power, generator=generator)
    elif cfg.crop_pad or cfg.flip != "none":
        x = random_crop_flip(x, pad=cfg.crop_pad, generator=generator, mode=cfg.pad_mode, flip=flip)
    return Batch(x, y, flip, overlaid)


@torch.no_grad()
def mirror_logits(teacher: nn.Module, train_set: ImageSet, mean, std, device: torch.device, amp: str,
                  show_progress: bool = True, batch_size: int = 256, tta: int = 0) -> torch.Tensor:
    """The teacher's logits of every training image (``[:, 0]``) and its mirror (``[:, 1]``), float32; with
    ``tta``, its test-time-augmented logits of each (at level 1 the two are the same mean)."""
    from rich.progress import Progress

    teacher.eval()
    out = []
    with Progress(disable=not show_progress) as progress:
        task = progress.add_task("teacher targets (images and mirrors)", total=len(train_set))
        for images, _ in train_set.batches(batch_size):
            x = to_input(images, mean, std, device)
            with _autocast(device, amp):
                if tta == 1:
                    mean_of_both = tta_logits(teacher, x, 1)
                    both = torch.stack([mean_of_both, mean_of_both], 1)
                else:
                    both = torch.stack([tta_logits(teacher, x, tta), tta_logits(teacher, x.flip(-1), tta)], 1)
            out.append(both.float())
            progress.advance(task, len(images))
    return torch.cat(out)


def cached_teacher_logits(teacher: nn.Module, cache: torch.Tensor, idx: np.ndarray, batch: Batch,
                          x: torch.Tensor, tta: int = 0) -> torch.Tensor:
    """Targets of a batch from the mirror cache; images the cache has not seen (IG-overlaid) scored online."""
    which = batch.flipped.long() if batch.flipped is not None else torch.zeros(len(idx), dtype=torch.long)
    t = cache[torch.from_numpy(idx).to(cache.device), which.to(cache.device)].to(x.device)
    if batch.overlaid is not None and batch.overlaid.any():
        fresh = batch.overlaid.to(x.device)
        t[fresh] = teacher_logits(teacher, x[fresh], tta=tta).float()
    return t


@torch.no_grad()
def teacher_logits(teacher: nn.Module, x: torch.Tensor, chunk: int = 256, tta: int = 0) -> torch.Tensor:
    """The teacher's logits of the batch the student sees (test-time-augmented at level ``tta``). On a CPU in chunks
    of ``chunk`` (0: one pass): the same logits (the teacher is in eval mode), about 1.3× faster than one
    1024-image pass of the airbench teacher on 2 cores (cache; benchmarks/students_converged.md)."""
    if x.device.type != "cpu" or not chunk or len(x) <= chunk:
        return tta_logits(teacher, x, tta)
    return torch.cat([tta_logits(teacher, x[lo : lo + chunk], tta) for lo in range(0, len(x), chunk)])


def mix_batch(x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, generator: torch.Generator
              ) -> tuple[torch.Tensor, tuple[torch.Tensor, float] | None]:
    """Mixup or CutMix of a batch with its own reversal: (images, (second labels, weight of the first)) or no mix.

    One fraction per batch, as in the papers; CutMix's weight is the area actually kept after clipping the box."""
    if cfg.mix == "none":
        return x, None
    # drawn from the run's generator, so a resumed run mixes exactly as the uninterrupted one
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
    lam = float(rng.beta(cfg.mix_alpha, cfg.mix_alpha))
    other = x.flip(0)
    if cfg.mix == "mixup":
        return lam * x + (1 - lam) * other, (y.flip(0), lam)
    h, w = x.shape[-2:]
    cut_h, cut_w = int(round(h * math.sqrt(1 - lam))), int(round(w * math.sqrt(1 - lam)))
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h - cut_h // 2, h)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w - cut_w // 2, w)
    x = x.clone()
    x[..., top:bottom, left:right] = other[..., top:bottom, left:right]
    return x, (y.flip(0), 1 - (bottom - top) * (right - left) / (h * w))


class _Lookahead:
    """airbench's lookahead: every 5 steps the weights move to an EMA of themselves, which they then continue from."""

    def __init__(self, model: nn.Module):
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def update(self, model: nn.Module, decay: float) -> None:
        with torch.no_grad():
            for k, v in model.state_dict().items():
                if v.dtype.is_floating_point:
                    self.ema[k].lerp_(v, 1 - decay)
                    v.copy_(self.ema[k])


def _check_finite(loss: torch.Tensor, epoch: int, step: int, model: nn.Module, x: torch.Tensor,
                  logits: torch.Tensor) -> None:
    if torch.isfinite(loss):
        return
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise TrainingDiverged(f"the model's weights became NaN/inf at epoch {epoch + 1} ({bad[0]} …)",
                               "lower the learning rate (--lr)")
    if torch.isfinite(x).all() and not torch.isfinite(logits).all():
        raise TrainingDiverged(f"the model's outputs overflowed at epoch {epoch + 1}, step {step + 1} (finite inputs "
                               "and weights)", "lower the learning rate (--lr)")
    raise EdgekdError(f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1} while the weights are finite",
                      "check the inputs: IG maps or images may hold NaN/inf; recompute the IG cache")


def train(
    model: nn.Module,
    train_set: ImageSet,
    val_set: ImageSet,
    mean,
    std,
    cfg: TrainConfig,
    teacher: nn.Module | None = None,
    ig_maps=None,
    at_pairs: list[tuple[str, str]] | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = True,
    device: str | torch.device = "cpu",
    progress_label: str = "train",
    show_progress: bool = True,
) -> TrainResult:
    """Train ``model`` in place and leave it holding the weights of its best validation epoch.

    ``ig_maps[i]`` is the IG map of ``train_set.images[i]`` (same order), or None.
    ``at_pairs`` are (student module path, teacher module path) for attention transfer.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    device = torch.device(device)
    amp = pick_amp(cfg.amp, device)
    if cfg.loss.needs_teacher and teacher is None:
        raise EdgekdError(f"the losses {', '.join(cfg.loss.active)} need a teacher")
    if cfg.loss.needs_features and not at_pairs:
        raise EdgekdError("attention transfer needs (student, teacher) module pairs", "pass at_pairs")
    if ig_maps is not None and len(ig_maps) != len(train_set):
        raise EdgekdError(f"{len(ig_maps)} IG maps for {len(train_set)} training images")
    if cfg.mix not in ("none", "mixup", "cutmix") or not cfg.mix_alpha > 0:
        raise EdgekdError(f"unknown mixing mix={cfg.mix!r} mix_alpha={cfg.mix_alpha!r}",
                          "mix: none | mixup | cutmix, with mix_alpha > 0")
    if cfg.flip not in ("random", "alternating", "none") or cfg.pad_mode not in ("constant", "reflect"):
        raise EdgekdError(f"unknown augmentation flip={cfg.flip!r} pad_mode={cfg.pad_mode!r}",
                          "flip: random | alternating | none; pad_mode: constant | reflect")
    pairs = at_pairs if cfg.loss.needs_features else []
    if cfg.teacher_targets not in ("online", "cached"):
        raise EdgekdError(f"unknown teacher_targets {cfg.teacher_targets!r}", "use online or cached")
    if cfg.teacher_tta not in (0, 1, 2):
        raise EdgekdError(f"unknown teacher_tta {cfg.teacher_tta!r}", "use 0 (none), 1 (mirror) or 2 (mirror and ±1 px)")
    if cfg.teacher_tta and pairs:
        raise EdgekdError("attention transfer matches the teacher's features of the student's own view: it cannot "
                          "take test-time-augmented targets", "use teacher_tta = 0 with attention transfer")
    cache_targets = cfg.teacher_targets == "cached" and cfg.loss.needs_teacher
    if cache_targets and (pairs or cfg.mix != "none"):
        raise EdgekdError("cached teacher targets hold logits of whole, unmixed images only: attention transfer "
                          "and mixup/cutmix need the teacher on every batch", "use teacher_targets = online")
    dist = current()
    if dist.active and cfg.batch_size % dist.world:
        raise EdgekdError(f"the batch size {cfg.batch_size} does not split evenly over {dist.world} ranks",
                          f"use a multiple of {dist.world} (it is the global batch; each rank takes its share)")
    if cfg.sync_bn and dist.active and device.type != "cuda":
        raise EdgekdError("sync_bn needs GPUs: PyTorch's SyncBatchNorm does not run on CPU",
                          "drop sync_bn on CPU (each rank then normalises its own slice of the batch)")
    show_progress = show_progress and dist.main
    # channels_last runs convolutions ~1.6x faster on CPU (measured here, benchmarks/teacher.md).
    model.to(device, memory_format=torch.channels_last)
    if teacher is not None:
        teacher.to(device, memory_format=torch.channels_last).eval()
    s_taps = FeatureTaps(model, [s for s, _ in pairs], "student")
    t_taps = FeatureTaps(teacher, [t for _, t in pairs], "teacher") if teacher is not None else None

    n = len(train_set)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    opt = make_optimizer(model, cfg)
    base_lrs = [g["lr"] for g in opt.param_groups]
    gen = torch.Generator().manual_seed(cfg.seed)  # the permutation: the same on every rank
    aug = gen if not dist.active else torch.Generator().manual_seed(cfg.seed * 1000 + dist.rank)
    torch.manual_seed(cfg.seed)
    flip_bits = np.random.default_rng(cfg.seed).integers(0, 2, n) if cfg.flip == "alternating" else None
    lookahead = _Lookahead(model) if cfg.lookahead else None
    on_device = None
    if device.type == "cuda":  # the split as uint8 (and the maps as float16) on the GPU: augmentation runs there
        on_device = {"images": torch.from_numpy(np.ascontiguousarray(train_set.images[np.arange(n)])).to(device),
                     "labels": torch.from_numpy(train_set.labels).to(device)}
        if ig_maps is not None:
            on_device["maps"] = torch.from_numpy(np.asarray(ig_maps[np.arange(n)], dtype=np.float16)).to(device)
    history: list[dict] = []
    best_val, best_epoch, best_state, start_epoch = -1.0, -1, None, 0

    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt is not None and ckpt.exists() and resume:
        state = _read_checkpoint(ckpt)
        if state.get("config") != cfg.fingerprint():
            raise EdgekdError(f"checkpoint {ckpt} belongs to a run with other settings",
                              "use the same settings to resume, or delete the checkpoint / use another --out")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        if dist.active and "aug_generators" in state and dist.rank < len(state["aug_generators"]):
            aug.set_state(state["aug_generators"][dist.rank])
        torch.set_rng_state(state["torch_rng"])
        if lookahead is not None:
            lookahead.ema = state["lookahead"]
        history, best_val, best_epoch = json.loads(state["history"]), state["best_val"], state["best_epoch"]
        best_state, start_epoch = state["best_model"], state["epoch"] + 1
    elif cfg.init_from_data and hasattr(model, "init_whitening"):
        # airbench-style nets set their first layer from the training images' patch statistics
        sample = np.random.default_rng(cfg.seed).permutation(n)[: min(n, 5000)]
        model.init_whitening(to_input(train_set.images[np.sort(sample)], mean, std, "cpu").to(device))
        if lookahead is not None:
            lookahead = _Lookahead(model)
    net = model
    if dist.active:
        if cfg.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                                  broadcast_buffers=True)

    started = time.perf_counter()
    target_cache = (mirror_logits(teacher, train_set, mean, std, device, amp, show_progress, tta=cfg.teacher_tta)
                    if cache_targets else None)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, disable=not show_progress) as progress:
            task = progress.add_task(progress_label, total=total_steps, completed=start_epoch * steps_per_epoch, info="")
            for epoch in range(start_epoch, cfg.epochs):
                for name, p in model.named_parameters():
                    if name in cfg.freeze_after:
                        p.requires_grad_(epoch < cfg.freeze_after[name])
                model.train()
                order = torch.randperm(n, generator=gen).numpy()
                sums: dict[str, float] = {}
                for step in range(steps_per_epoch):
                    global_step = epoch * steps_per_epoch + step
                    for g, base in zip(opt.param_groups, base_lrs):
                        g["lr"] = base * lr_factor(cfg, global_step, total_steps)
                    idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
                    batch = get_batch(train_set, idx, cfg, gen, epoch, flip_bits, ig_maps, on_device)
                    x, y = batch.x, batch.y
                    x, mixed = mix_batch(x, y, cfg, gen)
                    x = normalize(x, mean, std).to(device).contiguous(memory_format=torch.channels_last)
                    y = y.to(device)
                    with _autocast(device, amp):
                        logits = model(x)
                        t_logits = None
                        if target_cache is not None:
                            t_logits = cached_teacher_logits(teacher, target_cache, idx, batch, x, cfg.teacher_tta)
                        elif teacher is not None:
                            # feature taps record one forward pass: with attention transfer, one pass
                            t_logits = teacher_logits(teacher, x, chunk=0 if pairs else 256, tta=cfg.teacher_tta)
                    inputs = LossInputs(y, logits, t_logits, s_taps.take() if pairs else [],
                                        t_taps.take() if pairs else [],
                                        mixed_labels=mixed[0].to(device) if mixed else None,
                                        mix_weight=mixed[1] if mixed else 1.0)
                    loss, parts = total_loss(cfg.loss, inputs)
                    _check_finite(loss, epoch, step, model, x, logits)

                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if lookahead is not None and (global_step + 1) % 5 == 0:
                        lookahead.update(model, 0.95**5 * ((global_step + 1) / total_steps) ** 3)
                    for k, v in parts.items():
                        sums[k] = sums.get(k, 0.0) + v
                    progress.update(task, advance=1, info=f"epoch {epoch + 1}/{cfg.epochs} loss {loss.item():.3f}")

                last = epoch + 1 == cfg.epochs
                if lookahead is not None and last:
                    lookahead.update(model, 1.0)
                record = {"epoch": epoch + 1, "lr": opt.param_groups[-1]["lr"],
                          **{f"train_{k}": v / steps_per_epoch for k, v in sums.items()},
                          "seconds": round(time.perf_counter() - started, 1)}
                if last or (epoch + 1) % max(1, cfg.eval_every) == 0:
                    recompute_bn_stats(model, train_set, mean, std, cfg.precise_bn_images, device, amp=amp)
                    val_acc = evaluate(model, val_set, mean, std, device, amp=amp)
                    record["val_acc"] = val_acc
                    if val_acc > best_val:
                        best_val, best_epoch = val_acc, epoch + 1
                        best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                    progress.update(task, info=f"epoch {epoch + 1}/{cfg.epochs} val {val_acc:.2f}% (best {best_val:.2f}%)")
                history.append(record)
                if ckpt is not None:
                    state = {
                        "config": cfg.fingerprint(), "epoch": epoch, "model": model.state_dict(),
                        "optimizer": opt.state_dict(), "generator": gen.get_state(),
                        "torch_rng": torch.get_rng_state(), "history": json.dumps(history), "best_val": best_val,
                        "best_epoch": best_epoch, "best_model": best_state,
                        "lookahead": lookahead.ema if lookahead is not None else {},
                    }
                    atomic_torch_save(ckpt, state)
    finally:  # an interrupted run must not leave hooks on the user's models
        s_taps.remove()
        if t_taps is not None:
            t_taps.remove()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(best_val, best_epoch, history, round(time.perf_counter() - started, 2))


def _gather_generator_states(dist: Dist, aug: torch.Generator) -> list:
    """Every rank's augmentation generator, so that a resumed run continues each rank's stream."""
    if not dist.active:
        return [aug.get_state()]
    out = [None] * dist.world
    torch.distributed.all_gather_object(out, aug.get_state())
    return out


def _read_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file
        raise EdgekdError(f"the checkpoint {path} is unreadable ({type(exc).__name__})",
                          "delete it to start that stage again (finished stages are kept)") from None

"""Distillation losses in a registry, combined by weights from the config (torchdistill style).

total = Σ weightᵢ · lossᵢ over the losses a method names. Each loss is one registered
function of a :class:`LossInputs`; a new loss is one more ``@register_loss`` function and
then usable by name in ``method`` (``"dist+ig"``) and ``loss_weights``. The IG overlay is an
augmentation, not a loss (``edgekd.distill.overlay``).

- ``ce``: cross-entropy with the true labels (optional label smoothing).
- ``kd``: T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) (Hinton et al.); the paper weights it
  α = 0.01 and CE 1 − α.
- ``at``: attention transfer (Zagoruyko & Komodakis): channel-mean of squared
  activations, flattened, L2-normalised, MSE, summed over the (student, teacher) pairs
  (maps of nearly equal size, e.g. 16×16 and 15×15, are pooled to the smaller).
- ``dist``: DIST (Huang et al., NeurIPS 2022): 1 − Pearson correlation between student
  and teacher class probabilities, across classes per image (inter) and across the
  batch per class (intra), at temperature T.
- ``dkd``: Decoupled KD (Zhao et al., CVPR 2022): target-class KD (α) + non-target KD (β).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from edgekd.errors import EdgekdError


@dataclass
class LossInputs:
    labels: torch.Tensor
    student_logits: torch.Tensor
    teacher_logits: torch.Tensor | None = None
    student_feats: list[torch.Tensor] = field(default_factory=list)
    teacher_feats: list[torch.Tensor] = field(default_factory=list)
    # input mixing (mixup / cutmix): each image's second label and the weight of the first
    mixed_labels: torch.Tensor | None = None
    mix_weight: float = 1.0


@dataclass(frozen=True)
class LossEntry:
    name: str
    fn: Callable
    needs_teacher: bool
    needs_features: bool
    params: tuple[str, ...]  # settings it reads from LossConfig.params


LOSSES: dict[str, LossEntry] = {}


def register_loss(name: str, needs_teacher: bool = True, needs_features: bool = False, params: tuple[str, ...] = ()):
    def deco(fn):
        if name in LOSSES:
            raise ValueError(f"loss {name!r} registered twice")
        LOSSES[name] = LossEntry(name, fn, needs_teacher, needs_features, params)
        return fn

    return deco


def get_loss(name: str) -> LossEntry:
    if name not in LOSSES:
        raise EdgekdError(f"unknown loss {name!r}", f"registered losses: {', '.join(sorted(LOSSES))}")
    return LOSSES[name]


@register_loss("ce", needs_teacher=False, params=("label_smoothing",))
def ce_loss(x: LossInputs, label_smoothing: float = 0.0) -> torch.Tensor:
    logits = x.student_logits.float()
    loss = F.cross_entropy(logits, x.labels, label_smoothing=label_smoothing)
    if x.mixed_labels is None:
        return loss
    return x.mix_weight * loss + (1 - x.mix_weight) * F.cross_entropy(logits, x.mixed_labels,
                                                                       label_smoothing=label_smoothing)


def kd_div(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(softmax(z_t/T) ‖ softmax(z_s/T)), batch mean."""
    t = temperature
    log_p_s = F.log_softmax(student_logits.float() / t, dim=1)
    p_t = F.softmax(teacher_logits.float() / t, dim=1)
    return F.kl_div(log_p_s, p_t, reduction="batchmean") * (t * t)


@register_loss("kd", params=("temperature",))
def kd_loss(x: LossInputs, temperature: float = 2.5) -> torch.Tensor:
    return kd_div(x.student_logits, x.teacher_logits, temperature)


def attention_map(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) → (B, H·W): channel mean of squared activations, L2-normalised."""
    a = features.float().pow(2).mean(1).flatten(1)
    return F.normalize(a, dim=1)


@register_loss("at", needs_features=True)
def at_loss(x: LossInputs) -> torch.Tensor:
    if len(x.student_feats) != len(x.teacher_feats) or not x.student_feats:
        raise EdgekdError(f"attention transfer got {len(x.student_feats)} student and {len(x.teacher_feats)} "
                          "teacher feature maps", "declare the same number of pairs for both (at_pairs)")
    from edgekd.models.features import resolutions_match

    losses = []
    for s, t in zip(x.student_feats, x.teacher_feats, strict=True):
        if s.shape[-2:] != t.shape[-2:]:
            if not resolutions_match(tuple(s.shape[-2:]), tuple(t.shape[-2:])):
                raise EdgekdError(f"attention transfer pair has resolutions {tuple(s.shape[-2:])} vs "
                                  f"{tuple(t.shape[-2:])}, more than 4/3 apart", "pair modules of nearly the same size")
            # nearly equal sizes (e.g. 16 vs 15): pool the larger map to the smaller
            size = tuple(min(a, b) for a, b in zip(s.shape[-2:], t.shape[-2:]))
            s, t = F.adaptive_avg_pool2d(s, size), F.adaptive_avg_pool2d(t, size)
        losses.append(F.mse_loss(attention_map(s), attention_map(t)))
    return torch.stack(losses).sum()


def _pearson_distance(a: torch.Tensor, b: torch.Tensor, dim: int) -> torch.Tensor:
    a = a - a.mean(dim, keepdim=True)
    b = b - b.mean(dim, keepdim=True)
    return 1 - F.cosine_similarity(a, b, dim=dim, eps=1e-8).mean()


@register_loss("dist", params=("temperature", "dist_inter", "dist_intra"))
def dist_loss(x: LossInputs, temperature: float = 4.0, dist_inter: float = 1.0, dist_intra: float = 1.0) -> torch.Tensor:
    t = temperature
    p_s = F.softmax(x.student_logits.float() / t, dim=1)
    p_t = F.softmax(x.teacher_logits.float() / t, dim=1)
    inter = _pearson_distance(p_s, p_t, dim=1)
    intra = _pearson_distance(p_s, p_t, dim=0)
    return t * t * (dist_inter * inter + dist_intra * intra)


@register_loss("dkd", params=("temperature", "dkd_alpha", "dkd_beta"))
def dkd_loss(x: LossInputs, temperature: float = 4.0, dkd_alpha: float = 1.0, dkd_beta: float = 8.0) -> torch.Tensor:
    t = temperature
    s, te = x.student_logits.float(), x.teacher_logits.float()
    gt = F.one_hot(x.labels, s.shape[1]).bool()
    p_s, p_t = F.softmax(s / t, dim=1), F.softmax(te / t, dim=1)
    # target vs all non-target classes, as two-way distributions
    b_s = torch.stack([(p_s * gt).sum(1), (p_s * ~gt).sum(1)], 1).clamp_min(1e-8)
    b_t = torch.stack([(p_t * gt).sum(1), (p_t * ~gt).sum(1)], 1).clamp_min(1e-8)
    tckd = F.kl_div(b_s.log(), b_t, reduction="batchmean") * t * t
    # among the non-target classes only (target masked out by a large negative logit)
    log_q_s = F.log_softmax(s / t - 1000.0 * gt, dim=1)
    q_t = F.softmax(te / t - 1000.0 * gt, dim=1)
    nckd = F.kl_div(log_q_s, q_t, reduction="batchmean") * t * t
    return dkd_alpha * tckd + dkd_beta * nckd


@dataclass
class LossConfig:
    """Weights by loss name (e.g. ``{"ce": 0.99, "kd": 0.01}``) and the losses' own settings."""

    weights: dict[str, float] = field(default_factory=lambda: {"ce": 1.0})
    params: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        for name, w in self.weights.items():
            get_loss(name)  # an unknown name is an error naming the registered ones
            if isinstance(w, bool) or not isinstance(w, (int, float)) or w != w or w < 0:
                raise EdgekdError(f"loss weight {name} = {w!r} must be a number ≥ 0")

    @property
    def active(self) -> dict[str, float]:
        return {k: float(w) for k, w in self.weights.items() if w}

    @property
    def needs_teacher(self) -> bool:
        return any(get_loss(n).needs_teacher for n in self.active)

    @property
    def needs_features(self) -> bool:
        return any(get_loss(n).needs_features for n in self.active)


def total_loss(cfg: LossConfig, inputs: LossInputs) -> tuple[torch.Tensor, dict[str, float]]:
    """Σ weight · loss over the active losses; also each part's value for logging."""
    total, parts = None, {}
    for name, w in cfg.active.items():
        entry = get_loss(name)
        value = entry.fn(inputs, **{p: cfg.params[p] for p in entry.params if p in cfg.params})
        parts[name] = float(value.detach())
        total = w * value if total is None else total + w * value
    if total is None:
        raise EdgekdError("no loss has a weight above zero", "give at least ce a weight")
    return total, parts

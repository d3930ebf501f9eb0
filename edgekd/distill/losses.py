"""Distillation losses, composable: total = Σ weightᵢ · lossᵢ, chosen from config.

KD follows the paper: ``α·T²·KL(p_t^T ‖ p_s^T) + (1−α)·CE``. Attention transfer
(Zagoruyko & Komodakis) compares channel-mean squared activations, flattened and
L2-normalised, by mean squared error, summed over the chosen layers and scaled by γ.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(softmax(z_t/T) ‖ softmax(z_s/T)), batch mean."""
    t = temperature
    log_p_s = F.log_softmax(student_logits / t, dim=1)
    p_t = F.softmax(teacher_logits / t, dim=1)
    return F.kl_div(log_p_s, p_t, reduction="batchmean") * (t * t)


def attention_map(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) → (B, H·W): channel mean of squared activations, L2-normalised."""
    a = features.pow(2).mean(1).flatten(1)
    return F.normalize(a, dim=1)


def at_loss(student_feats: list[torch.Tensor], teacher_feats: list[torch.Tensor]) -> torch.Tensor:
    losses = []
    for s, t in zip(student_feats, teacher_feats):
        if s.shape[-2:] != t.shape[-2:]:
            t = F.adaptive_avg_pool2d(t, s.shape[-2:])
        losses.append(F.mse_loss(attention_map(s), attention_map(t)))
    return torch.stack(losses).sum()


@dataclass
class LossConfig:
    kd: bool = False
    at: bool = False
    alpha: float = 0.01  # weight of the KD term (the paper's α)
    temperature: float = 2.5
    gamma: float = 0.8  # attention-transfer weight

    @property
    def needs_teacher(self) -> bool:
        return self.kd or self.at


def distillation_loss(
    cfg: LossConfig,
    labels: torch.Tensor,
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None = None,
    student_feats: list[torch.Tensor] | None = None,
    teacher_feats: list[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The configured combination; returns the total and its parts for logging."""
    ce = F.cross_entropy(student_logits, labels)
    parts = {"ce": ce.item()}
    if cfg.kd:
        kd = kd_loss(student_logits, teacher_logits, cfg.temperature)
        total = cfg.alpha * kd + (1 - cfg.alpha) * ce
        parts["kd"] = kd.item()
    else:
        total = ce
    if cfg.at:
        at = at_loss(student_feats, teacher_feats)
        total = total + cfg.gamma * at
        parts["at"] = at.item()
    return total, parts

"""Students: the first blocks of an (untrained) MobileNetV2, then pool + linear.

The compression factor (CF) is teacher parameters ÷ student parameters. Removing the
last L feature modules gives the reference table below; ``create_model("student",
cf=4.12)`` picks the nearest entry. ``early_width`` < 1 thins the stem and the first
``early_blocks`` blocks, which run at 32×32 and dominate compute: truncation alone
removes parameters (late, 4×4 blocks) but keeps most multiply-accumulates.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgekd.errors import EdgekdError
from edgekd.models.mobilenetv2 import build_features, init_weights
from edgekd.models.registry import register_model

TEACHER_PARAMS = 2_236_682
# removed modules L → (student params, CF) for the 10-class CIFAR MobileNetV2.
REFERENCE_TABLE = {
    3: (1_019_402, 2.19),
    5: (543_498, 4.12),
    7: (306_954, 7.29),
    9: (185_738, 12.04),
    11: (77_194, 28.97),
    13: (40_970, 54.59),
    15: (16_042, 139.43),
    17: (1_994, 1121.71),
}
# Indices of the feature modules that end a resolution stage (attention-transfer taps).
STAGE_ENDS = (1, 3, 6, 10, 13, 16, 17)


def blocks_for_cf(cf: float) -> int:
    """Number of removed modules whose compression factor is nearest ``cf`` (log scale)."""
    if not (isinstance(cf, (int, float)) and math.isfinite(cf) and cf >= 1.0):
        raise EdgekdError(f"impossible compression factor {cf!r}", "use a number ≥ 1, e.g. 4.12")
    best = min(REFERENCE_TABLE, key=lambda L: abs(math.log(REFERENCE_TABLE[L][1] / cf)))
    got = REFERENCE_TABLE[best][1]
    if abs(math.log(got / cf)) > math.log(1.25):
        choices = ", ".join(f"{v[1]}" for v in REFERENCE_TABLE.values())
        raise EdgekdError(
            f"no student near compression factor {cf} (nearest is {got}×)",
            f"choose one of {choices}, or set blocks_removed / early_width directly",
        )
    return best


class Student(nn.Module):
    def __init__(
        self,
        blocks_removed: int = 5,
        num_classes: int = 10,
        early_width: float = 1.0,
        early_blocks: int = 6,
    ):
        super().__init__()
        if not 1 <= blocks_removed <= 18:
            raise EdgekdError(
                f"blocks_removed={blocks_removed} is impossible", "MobileNetV2 has 19 feature modules: use 1…18"
            )
        features, channels = build_features(early_width=early_width, early_blocks=early_blocks)
        self.features = features[:-blocks_removed]
        self.classifier = nn.Linear(channels[: -blocks_removed][-1], num_classes)
        self.blocks_removed = blocks_removed
        self.config = {
            "blocks_removed": blocks_removed,
            "num_classes": num_classes,
            "early_width": early_width,
            "early_blocks": early_blocks,
        }
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    def attention_layers(self) -> list[int]:
        """Stage-end modules this student still has (shared with the teacher)."""
        return [i for i in STAGE_ENDS if i < len(self.features)]


@register_model("student")
def student(
    cf: float | None = None,
    blocks_removed: int | None = None,
    num_classes: int = 10,
    early_width: float = 1.0,
    early_blocks: int = 6,
    **_,
) -> Student:
    if blocks_removed is None:
        blocks_removed = blocks_for_cf(4.12 if cf is None else cf)
    return Student(blocks_removed, num_classes, early_width, early_blocks)


def forward_with_features(model: nn.Module, x: torch.Tensor, layers: list[int]):
    """Logits and the outputs of ``model.features[i]`` for i in ``layers``.

    Works for the teacher and every student: both are ``features`` → pool → classifier.
    """
    feats = []
    wanted = set(layers)
    for i, module in enumerate(model.features):
        x = module(x)
        if i in wanted:
            feats.append(x)
    x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
    return model.classifier(x), feats

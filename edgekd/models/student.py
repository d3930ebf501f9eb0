"""The paper's students: the first blocks of an (untrained) MobileNetV2, then pool + linear.

The compression factor (CF) is the CIFAR MobileNetV2's parameters ÷ the student's.
Removing the last L feature modules gives the reference table below;
``create_model("student", cf=4.12)`` picks the nearest entry. ``early_width`` < 1 thins
the stem and the first ``early_blocks`` blocks, which run at 32×32 and dominate compute:
truncation alone removes parameters (late, 4×4 blocks) but keeps most multiply-accumulates;
``stage2_stride=2`` halves the resolution from the second stage on.

The head is ``classifier = Sequential(Dropout, Linear)`` as in the reference code, so the
authors' published students load unchanged; their other key layout
(``front_layers.* / middle_layer / end_layers.*``) is mapped by :func:`checkpoint_filter_fn`.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from edgekd.errors import EdgekdError
from edgekd.models.mobilenetv2 import CIFAR_MEAN, CIFAR_STD, STAGE_ENDS, build_features, init_weights
from edgekd.models.registry import STANDARD_NET_FAST_RECIPE, register_model

TEACHER_PARAMS = 2_236_682  # the 10-class CIFAR MobileNetV2 the table is relative to
# removed modules L → (student params, CF) for 10 classes.
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


def blocks_for_cf(cf: float) -> int:
    """Number of removed modules whose compression factor is nearest ``cf`` (log scale)."""
    if isinstance(cf, bool) or not (isinstance(cf, (int, float)) and math.isfinite(cf) and cf >= 1.0):
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
    def __init__(self, blocks_removed: int = 5, num_classes: int = 10, early_width: float = 1.0,
                 early_blocks: int = 6, dropout: float = 0.2, stage2_stride: int = 1):
        super().__init__()
        if not 1 <= blocks_removed <= 18:
            raise EdgekdError(f"blocks_removed={blocks_removed} is impossible",
                              "MobileNetV2 has 19 feature modules: use 1…18")
        features, channels = build_features(early_width=early_width, early_blocks=early_blocks,
                                            stage2_stride=stage2_stride)
        self.features = features[:-blocks_removed]
        self.num_features = channels[:-blocks_removed][-1]
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))
        self.blocks_removed = blocks_removed
        self.config = {"blocks_removed": blocks_removed, "num_classes": num_classes, "early_width": early_width,
                       "early_blocks": early_blocks, "dropout": dropout}
        if stage2_stride != 1:  # recorded only when used, so files written before it existed read the same
            self.config["stage2_stride"] = stage2_stride
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def feature_taps(self) -> list[str]:
        """Stage-end modules this student still has; the teacher has the same names (the paper's AT)."""
        return [f"features.{i}" for i in STAGE_ENDS if i < len(self.features)]

    @staticmethod
    def checkpoint_filter_fn(state: dict, model: "Student") -> dict:
        return checkpoint_filter_fn(state, model)


def checkpoint_filter_fn(state: dict, model: nn.Module | None = None) -> dict:
    """Map the reference repository's layouts onto ``features.<i>`` / ``classifier.1``.

    The authors saved their students either as ``features.*`` or split into
    ``front_layers.<i>``, one ``middle_layer`` and ``end_layers.<j>`` (in that order), and
    edgekd ≤ 0.1 saved the head as a bare ``classifier`` Linear.
    """
    if not any(k.startswith(("front_layers.", "middle_layer.", "end_layers.")) for k in state) and \
            "classifier.weight" not in state:
        return state
    n_front = 1 + max((int(k.split(".")[1]) for k in state if k.startswith("front_layers.")), default=-1)
    has_middle = any(k.startswith("middle_layer.") for k in state)
    out = {}
    for k, v in state.items():
        if m := re.match(r"front_layers\.(\d+)\.(.*)", k):
            k = f"features.{m[1]}.{m[2]}"
        elif k.startswith("middle_layer."):
            k = f"features.{n_front}." + k[len("middle_layer."):]
        elif m := re.match(r"end_layers\.(\d+)\.(.*)", k):
            k = f"features.{n_front + int(has_middle) + int(m[1])}.{m[2]}"
        elif k in ("classifier.weight", "classifier.bias"):
            k = "classifier.1." + k.split(".")[1]
        out[k] = v
    return out


_CFG = dict(input_size=(3, 32, 32), mean=CIFAR_MEAN, std=CIFAR_STD, classifier="classifier.1",
            family="mobilenetv2-truncated", fast_recipe=STANDARD_NET_FAST_RECIPE)


@register_model("student", default_cfg={**_CFG, "description": "the paper's truncated MobileNetV2 student"})
def student(cf: float | None = None, blocks_removed: int | None = None, num_classes: int = 10,
            early_width: float = 1.0, early_blocks: int = 6, dropout: float = 0.2, stage2_stride: int = 1) -> Student:
    """The paper's student: MobileNetV2 features[:-L] + pool + linear, L chosen by cf (4.12 → L=5).

    ``stage2_stride=2`` runs the 24-channel stage and everything after it at half resolution
    (16×16 on CIFAR): about a quarter of the multiply-accumulates of the blocks it moves."""
    if cf is not None and blocks_removed is not None:
        raise EdgekdError("give cf or blocks_removed, not both")
    if blocks_removed is None:
        blocks_removed = blocks_for_cf(4.12 if cf is None else cf)
    return Student(blocks_removed, num_classes, early_width, early_blocks, dropout, stage2_stride)

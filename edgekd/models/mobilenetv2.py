"""MobileNetV2: the paper's CIFAR teacher and the width-scaled student family.

torchvision's layout and module names (``features.<i>``, ``classifier.1``) so that
reference checkpoints load unchanged. The CIFAR variant keeps the stem and the 24-channel
stage at stride 1 for 32×32 inputs; ``stem_stride=2`` (and ``stage2_stride=2``) give the
ImageNet strides for large inputs. Written in plain torch because torchvision's registry
build does not load here.

Width scaling (``width_mult``) thins every layer; ``early_width`` thins only the stem and
the first ``early_blocks`` blocks, which run at the highest resolution and hold most of
the multiply-accumulates but few parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekd.models.registry import STANDARD_NET_FAST_RECIPE, register_model

# (expansion t, output channels c, repeats n, first stride s).
INVERTED_RESIDUAL_SETTING = [
    (1, 16, 1, 1),
    (6, 24, 2, 1),  # stride 1 (not 2) for 32×32 inputs, as in the reference; stage2_stride sets it
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]
LAST_CHANNELS = 1280
# Feature modules that end a resolution stage: the paper's attention-transfer taps.
STAGE_ENDS = (1, 3, 6, 10, 13, 16, 17)
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = int(round(cin * expand))
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNReLU(cin, hidden, kernel=1))
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def build_features(
    width_mult: float = 1.0,
    early_width: float = 1.0,
    early_blocks: int = 0,
    stem_stride: int = 1,
    stage2_stride: int = 1,
) -> tuple[nn.Sequential, list[int]]:
    """The 19 feature modules: stem, 17 inverted-residual blocks, 1×1 head conv.

    Returns the modules and each module's output channel count.
    """
    if width_mult <= 0 or early_width <= 0:
        raise ValueError("width_mult and early_width must be positive")
    if stem_stride not in (1, 2) or stage2_stride not in (1, 2):
        raise ValueError("stem_stride and stage2_stride are 1 or 2")

    def scaled(c: float, idx: int) -> int:
        w = width_mult * (early_width if idx <= early_blocks else 1.0)
        return _make_divisible(c * w)

    cin = scaled(32, 0)
    modules: list[nn.Module] = [ConvBNReLU(3, cin, stride=stem_stride)]
    channels = [cin]
    idx = 1
    for stage, (t, c, n, s) in enumerate(INVERTED_RESIDUAL_SETTING):
        s = stage2_stride if stage == 1 else s
        for i in range(n):
            cout = scaled(c, idx)
            modules.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
            channels.append(cout)
            cin = cout
            idx += 1
    last = _make_divisible(LAST_CHANNELS * max(1.0, width_mult))
    modules.append(ConvBNReLU(cin, last, kernel=1))
    channels.append(last)
    return nn.Sequential(*modules), channels


class MobileNetV2(nn.Module):
    """features → global average pool → dropout → linear (torchvision naming)."""

    def __init__(self, num_classes: int = 10, width_mult: float = 1.0, early_width: float = 1.0,
                 early_blocks: int = 6, stem_stride: int = 1, stage2_stride: int = 1, dropout: float = 0.2):
        super().__init__()
        self.features, channels = build_features(width_mult, early_width, early_blocks, stem_stride, stage2_stride)
        self.num_features = channels[-1]
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels[-1], num_classes))
        self.config = {"num_classes": num_classes, "width_mult": width_mult, "early_width": early_width,
                       "early_blocks": early_blocks, "stem_stride": stem_stride, "stage2_stride": stage2_stride,
                       "dropout": dropout}
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def feature_taps(self) -> list[str]:
        """Where each resolution stage ends (the paper's attention-transfer taps)."""
        return [f"features.{i}" for i in STAGE_ENDS if i < len(self.features)]


def init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


_CFG = dict(input_size=(3, 32, 32), mean=CIFAR_MEAN, std=CIFAR_STD, classifier="classifier.1",
            family="mobilenetv2", fast_recipe=STANDARD_NET_FAST_RECIPE)


@register_model("mobilenetv2_cifar", default_cfg={**_CFG, "description": "CIFAR MobileNetV2 (the paper's teacher)"})
def mobilenetv2_cifar(num_classes: int = 10, width_mult: float = 1.0, early_width: float = 1.0, early_blocks: int = 6,
                      stem_stride: int = 1, stage2_stride: int = 1, dropout: float = 0.2) -> MobileNetV2:
    """MobileNetV2 with CIFAR strides; width_mult/early_width scale it into a student."""
    return MobileNetV2(num_classes, width_mult, early_width, early_blocks, stem_stride, stage2_stride, dropout)


@register_model("mobilenetv2_x0_5", default_cfg={**_CFG, "description": "MobileNetV2 ×0.5 (0.70 M parameters at 10 classes)"})
def mobilenetv2_x0_5(num_classes: int = 10, stem_stride: int = 1, stage2_stride: int = 1,
                     dropout: float = 0.2) -> MobileNetV2:
    """Width-scaled MobileNetV2 ×0.5, the published 92.9 % CIFAR-10 model's shape."""
    return MobileNetV2(num_classes, 0.5, 1.0, 6, stem_stride, stage2_stride, dropout)

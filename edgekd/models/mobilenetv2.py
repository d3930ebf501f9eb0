"""CIFAR MobileNetV2, the teacher.

torchvision's MobileNetV2 layout and module names (``features.<i>``, ``classifier.1``)
so that reference checkpoints load unchanged, with the stem at stride 1 for 32×32
inputs. Written in plain torch because torchvision's registry build does not load here.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekd.models.registry import register_model

# (expansion t, output channels c, repeats n, first stride s). The CIFAR variant keeps the
# stem and the 24-channel stage at stride 1, so 32×32 inputs end at 4×4 (88.0 M MACs).
INVERTED_RESIDUAL_SETTING = [
    (1, 16, 1, 1),
    (6, 24, 2, 1),  # stride 1 (not 2) for 32×32 inputs, as in the reference
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]
LAST_CHANNELS = 1280


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
) -> tuple[nn.Sequential, list[int]]:
    """The 19 feature modules: stem, 17 inverted-residual blocks, 1×1 head conv.

    ``early_width`` scales the channels of the stem and the first ``early_blocks``
    inverted-residual blocks only: those run at the highest resolution and dominate
    the multiply-accumulates while holding few parameters.
    Returns the modules and each module's output channel count.
    """
    def scaled(c: float, idx: int) -> int:
        w = width_mult * (early_width if idx <= early_blocks else 1.0)
        return _make_divisible(c * w)

    cin = scaled(32, 0)
    modules: list[nn.Module] = [ConvBNReLU(3, cin, stride=stem_stride)]
    channels = [cin]
    idx = 1
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
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
    """Features → global average pool → dropout → linear (torchvision naming)."""

    def __init__(self, num_classes: int = 10, width_mult: float = 1.0, dropout: float = 0.2):
        super().__init__()
        self.features, channels = build_features(width_mult)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels[-1], num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x)


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


@register_model("mobilenetv2_cifar")
def mobilenetv2_cifar(num_classes: int = 10, width_mult: float = 1.0, **_) -> MobileNetV2:
    return MobileNetV2(num_classes=num_classes, width_mult=width_mult)

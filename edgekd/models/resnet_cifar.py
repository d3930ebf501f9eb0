"""Small CIFAR ResNets (He et al. 2016, §4.2): ResNet-8 (MLPerf Tiny's size), -14, -20, -32, -56.

Three stages of ``n`` basic blocks at widths w, 2w, 4w (w = 16), depth = 6n + 2; the
downsampling shortcut is a 1×1 convolution + BatchNorm (option B), as in the published
CIFAR models this project compares against (ResNet-20: 0.27 M parameters, 92.6 %).
Dense 3×3 convolutions: on CPUs and INT8 runtimes they run far closer to peak than
MobileNet's depthwise ones.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekd.models.mobilenetv2 import CIFAR_MEAN, CIFAR_STD
from edgekd.models.registry import STANDARD_NET_FAST_RECIPE, register_model


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU(inplace=True)
        self.relu2 = nn.ReLU(inplace=True)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.downsample(x))


class CifarResNet(nn.Module):
    def __init__(self, depth: int = 20, num_classes: int = 10, width: int = 16, stem_stride: int = 1):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be 6n+2 with n ≥ 1 (8, 14, 20, 32, 44, 56), got {depth}")
        if width < 1 or stem_stride not in (1, 2):
            raise ValueError("width must be ≥ 1 and stem_stride 1 or 2")
        n = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, stem_stride, 1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(inplace=True))
        stages, cin = [], width
        for i, cout in enumerate((width, 2 * width, 4 * width)):
            blocks = [BasicBlock(cin if j == 0 else cout, cout, 2 if (i > 0 and j == 0) else 1) for j in range(n)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.layer1, self.layer2, self.layer3 = stages
        self.num_features = cin
        self.fc = nn.Linear(cin, num_classes)
        self.config = {"depth": depth, "num_classes": num_classes, "width": width, "stem_stride": stem_stride}
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer3(self.layer2(self.layer1(self.stem(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def feature_taps(self) -> list[str]:
        return ["layer1", "layer2", "layer3"]


_CFG = dict(input_size=(3, 32, 32), mean=CIFAR_MEAN, std=CIFAR_STD, classifier="fc", family="resnet-cifar",
            fast_recipe=STANDARD_NET_FAST_RECIPE)


@register_model("resnet_cifar", default_cfg=_CFG)
def resnet_cifar(depth: int = 20, num_classes: int = 10, width: int = 16, stem_stride: int = 1) -> CifarResNet:
    """CIFAR ResNet of depth 6n+2 and base width w (16 → 16/32/64 channels)."""
    return CifarResNet(depth, num_classes, width, stem_stride)


@register_model("resnet8", default_cfg={**_CFG, "description": "CIFAR ResNet-8 (MLPerf Tiny's size, 78 k parameters)"})
def resnet8(num_classes: int = 10, width: int = 16, stem_stride: int = 1) -> CifarResNet:
    """CIFAR ResNet-8: one basic block per stage."""
    return CifarResNet(8, num_classes, width, stem_stride)


@register_model("resnet20", default_cfg={**_CFG, "description": "CIFAR ResNet-20 (0.27 M parameters)"})
def resnet20(num_classes: int = 10, width: int = 16, stem_stride: int = 1) -> CifarResNet:
    """CIFAR ResNet-20: three basic blocks per stage."""
    return CifarResNet(20, num_classes, width, stem_stride)


@register_model("resnet32", default_cfg={**_CFG, "description": "CIFAR ResNet-32 (0.47 M parameters)"})
def resnet32(num_classes: int = 10, width: int = 16, stem_stride: int = 1) -> CifarResNet:
    """CIFAR ResNet-32: five basic blocks per stage."""
    return CifarResNet(32, num_classes, width, stem_stride)

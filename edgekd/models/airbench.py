"""A fast, strong CIFAR teacher: the network of Keller Jordan's airbench (arXiv 2404.00498).

A 2×2 patch-whitening convolution (fixed, initialised from the training images' patch
covariance), then three groups of conv → max-pool → BN → GELU → conv → BN → GELU, a global
max-pool and a linear head scaled by 1/9. Dense 3×3 convolutions only: on a CPU they run
near the matmul peak, where MobileNetV2's depthwise convolutions do not, so it reaches
~94 % CIFAR-10 in a fraction of the MobileNetV2 teacher's training time
(benchmarks/teacher.md). ``depth=3`` adds a third conv per group (airbench96's shape).
"""

from __future__ import annotations

import torch
from torch import nn

from edgekd.models.mobilenetv2 import CIFAR_MEAN, CIFAR_STD
from edgekd.models.registry import register_model


class _BatchNorm(nn.BatchNorm2d):
    """BatchNorm with the scale frozen at 1 (only the shift learns), as airbench does."""

    def __init__(self, channels: int, momentum: float = 0.6, eps: float = 1e-12):
        super().__init__(channels, eps=eps, momentum=1 - momentum)
        self.weight.requires_grad_(False)


def _conv(cin: int, cout: int) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
    w = conv.weight.data
    nn.init.dirac_(w[: w.size(1)])  # start near identity for the first cin filters
    return conv


class ConvGroup(nn.Module):
    def __init__(self, cin: int, cout: int, depth: int = 2):
        super().__init__()
        self.conv1 = _conv(cin, cout)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = _BatchNorm(cout)
        self.act1 = nn.GELU()
        self.conv2 = _conv(cout, cout)
        self.norm2 = _BatchNorm(cout)
        self.act2 = nn.GELU()
        self.extra = nn.Sequential(*[nn.Sequential(_conv(cout, cout), _BatchNorm(cout), nn.GELU())
                                     for _ in range(depth - 2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.norm1(self.pool(self.conv1(x))))
        x = self.act2(self.norm2(self.conv2(x)))
        return self.extra(x)


class AirbenchNet(nn.Module):
    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int] = (64, 256, 256), depth: int = 2,
                 whiten_kernel: int = 2, scale: float = 1 / 9):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) != 3 or min(widths) < 1 or depth < 2:
            raise ValueError("widths are three positive channel counts and depth ≥ 2")
        whiten_width = 2 * 3 * whiten_kernel**2
        self.whiten = nn.Conv2d(3, whiten_width, whiten_kernel, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)
        self.act = nn.GELU()
        self.block1 = ConvGroup(whiten_width, widths[0], depth)
        self.block2 = ConvGroup(widths[0], widths[1], depth)
        self.block3 = ConvGroup(widths[1], widths[2], depth)
        self.head = nn.Linear(widths[2], num_classes, bias=False)
        self.scale = scale
        self.num_features = widths[2]
        self.config = {"num_classes": num_classes, "widths": list(widths), "depth": depth,
                       "whiten_kernel": whiten_kernel, "scale": scale}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.block3(self.block2(self.block1(self.act(self.whiten(x)))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        # airbench's MaxPool2d(3) on its 3×3 map, for any input size; amax, not AdaptiveMaxPool2d,
        # which LiteRT cannot lower
        x = torch.amax(x, dim=(2, 3))
        return x if pre_logits else self.head(x) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def feature_taps(self) -> list[str]:
        return ["block1", "block2", "block3"]

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the whitening filters from the patch covariance of normalised training images (N, 3, H, W)."""
        k = self.whiten.weight.shape[2]
        c = images.shape[1]
        patches = images.float().unfold(2, k, 1).unfold(3, k, 1).transpose(1, 3).reshape(-1, c * k * k)
        cov = patches.T @ patches / len(patches)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)
        eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.T.flip(0)
        filters = (eigenvectors / torch.sqrt(eigenvalues + eps)[:, None]).reshape(-1, c, k, k)
        self.whiten.weight.copy_(torch.cat([filters, -filters]))


_CFG = dict(input_size=(3, 32, 32), mean=CIFAR_MEAN, std=CIFAR_STD, classifier="head", family="airbench")


@register_model("airbench", default_cfg={**_CFG, "description": "airbench CIFAR net (fast strong teacher, 1.97 M params)"})
def airbench(num_classes: int = 10, widths: tuple = (64, 256, 256), depth: int = 2, whiten_kernel: int = 2,
             scale: float = 1 / 9, width_mult: float = 1.0) -> AirbenchNet:
    """airbench94's network: whitening conv + 3 conv groups, widths 64/256/256.

    ``width_mult`` scales every group's width (rounded to a multiple of 8, which INT8 kernels
    vectorise): the width-scaled teacher as a student, dense 3×3 convolutions throughout."""
    if not width_mult > 0:
        raise ValueError(f"width_mult must be > 0, got {width_mult}")
    widths = tuple(max(8, int(round(int(w) * width_mult / 8)) * 8) for w in widths) if width_mult != 1.0 else tuple(widths)
    return AirbenchNet(num_classes, widths, depth, whiten_kernel, scale)


@register_model("airbench93", default_cfg={**_CFG, "description": "airbench93's widths 64/128/128 (0.57 M params)"})
def airbench93(num_classes: int = 10, depth: int = 2, whiten_kernel: int = 2, scale: float = 1 / 9) -> AirbenchNet:
    """airbench93's network (KellerJordan/cifar10-airbench lib_airbench93): widths 64/128/128."""
    return AirbenchNet(num_classes, (64, 128, 128), depth, whiten_kernel, scale)


@register_model("airbench_x0_5", default_cfg={**_CFG, "description": "airbench ×0.5: widths 32/128/128 (0.50 M params)"})
def airbench_x0_5(num_classes: int = 10, depth: int = 2, whiten_kernel: int = 2, scale: float = 1 / 9) -> AirbenchNet:
    """The shipped teacher's network at half width (32/128/128): the cpu preset's student."""
    return AirbenchNet(num_classes, (32, 128, 128), depth, whiten_kernel, scale)

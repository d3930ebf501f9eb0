"""Deep Feature Encodings (arXiv 2405.04943): a small convolutional autoencoder on 31×31 CIELAB crops.

The encoder is five 7×7 *valid* convolutions (3→16→32→32→64→128), each followed by
BatchNorm and ReLU, so a 31×31 crop becomes a 1×1×128 encoding. Because it has no
padding, pooling or linear layer it is fully convolutional: a (31+2r)×(31+2r) search
region gives the (2r+1)×(2r+1) encodings of every 31×31 crop inside it in one pass —
that is how the tracker scores every candidate position at once.

The decoder mirrors it with 7×7 transposed convolutions back to 31×31×3; a sigmoid
keeps the reconstruction in the [0, 1] range of the scaled CIELAB input.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekd.models.registry import register_model

CROP = 31  # the receptive field of the encoder: 1 + 5 × (7 − 1)
DEFAULT_CHANNELS = (16, 32, 32, 64, 128)


def _check_channels(channels) -> tuple[int, ...]:
    channels = tuple(int(c) for c in channels)
    if len(channels) != 5 or min(channels) < 1:
        raise ValueError(f"DFE needs five positive channel counts, got {channels}")
    return channels


class DFEEncoder(nn.Module):
    """Fully convolutional encoder: (N, 3, 31+2r, 31+2r) → (N, 128, 2r+1, 2r+1)."""

    def __init__(self, channels=DEFAULT_CHANNELS, kernel: int = 7):
        super().__init__()
        channels = _check_channels(channels)
        layers: list[nn.Module] = []
        prev = 3
        for c in channels:
            layers += [nn.Conv2d(prev, c, kernel, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            prev = c
        self.features = nn.Sequential(*layers)
        self.kernel = kernel
        self.config = {"channels": list(channels), "kernel": kernel}

    @property
    def crop_size(self) -> int:
        return 1 + 5 * (self.kernel - 1)

    @property
    def dim(self) -> int:
        return self.config["channels"][-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class DFEDecoder(nn.Module):
    """Mirror of the encoder: (N, 128, 1, 1) → (N, 3, 31, 31) in [0, 1]."""

    def __init__(self, channels=DEFAULT_CHANNELS, kernel: int = 7):
        super().__init__()
        channels = _check_channels(channels)
        rev = list(reversed(channels)) + [3]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(rev[:-1], rev[1:])):
            last = i == len(rev) - 2
            layers.append(nn.ConvTranspose2d(cin, cout, kernel, bias=last))
            if not last:
                layers += [nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        layers.append(nn.Sigmoid())
        self.features = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.features(z)


class DFEAutoencoder(nn.Module):
    def __init__(self, channels=DEFAULT_CHANNELS, kernel: int = 7):
        super().__init__()
        self.encoder = DFEEncoder(channels, kernel)
        self.decoder = DFEDecoder(channels, kernel)
        self.config = dict(self.encoder.config)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


@register_model("dfe_autoencoder")
def dfe_autoencoder(channels=DEFAULT_CHANNELS, kernel: int = 7) -> DFEAutoencoder:
    return DFEAutoencoder(channels, kernel)


@register_model("dfe_encoder")
def dfe_encoder(channels=DEFAULT_CHANNELS, kernel: int = 7) -> DFEEncoder:
    """The encoder alone (what the tracker and the exporter use)."""
    return DFEEncoder(channels, kernel)

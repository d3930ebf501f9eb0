"""Deep Feature Encodings (arXiv 2405.04943): a small convolutional autoencoder on 31×31 CIELAB crops.

The encoder is five 7×7 *valid* convolutions (3→16→32→32→64→128), each followed by
BatchNorm and ReLU, so a 31×31 crop becomes a 1×1×128 encoding. Because it has no
padding, pooling or linear layer it is fully convolutional: a (31+2r)×(31+2r) search
region gives the (2r+1)×(2r+1) encodings of every 31×31 crop inside it in one pass —
that is how the tracker scores every candidate position at once.

The decoder mirrors it with 7×7 transposed convolutions back to 31×31×3; a sigmoid
keeps the reconstruction in the [0, 1] range of the scaled CIELAB input.

``norm_radius`` m > 0 puts a fixed photometric normalisation in front of the encoder
(:class:`LocalNorm`): every pixel's lightness minus its (2m+1)² box mean, divided by the
local standard deviation, and the chroma minus its local mean. A gain, an offset or a
shading ramp that is smooth over 2m+1 px then no longer reaches the encoding. The
normalisation is part of the model, so exported files carry it and the tracker needs no
side information; it uses valid pooling, so the encoder's context grows to 31 + 2m px
(``DFEEncoder.context``) and the decoder reconstructs the normalised centre 31×31 (linear
output instead of the sigmoid).
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


class LocalNorm(nn.Module):
    """(N, 3, H, W) CIELAB/255 → (N, 3, H−2m, W−2m): lightness contrast-normalised, chroma centred, per pixel.

    L' = (L − box_mean(L)) / sqrt(box_var(L) + eps²) and ab' = chroma_gain · (ab − box_mean(ab)),
    box = (2m+1)² valid window. ``eps`` (≈ 5 grey levels) keeps flat skin from turning sensor
    noise into contrast. Written with fixed convolutions and broadcasting only — no slicing or
    concatenation — because a converter bakes a slice's batch size into the graph, and the
    TFLite file must be resizable to the number of points.
    """

    def __init__(self, radius: int, eps: float = 0.02, chroma_gain: float = 10.0):
        super().__init__()
        if radius < 1:
            raise ValueError(f"LocalNorm needs a radius ≥ 1, got {radius}")
        self.radius, self.eps, self.chroma_gain = int(radius), float(eps), float(chroma_gain)
        k = 2 * self.radius + 1
        # the (2m+1)² box mean as a 1×k then a k×1 pass (2k instead of k² multiply-adds per pixel: the full box
        # filter was 3/4 of the exported encoder's time), and the window's centre pixel as a 3×3 conv dilated by m
        # (one tap, not k² of them); fixed, not learned, and not in the state dict: trained models load unchanged
        self.register_buffer("box_row", torch.full((3, 1, 1, k), 1.0 / k), persistent=False)
        self.register_buffer("box_col", torch.full((3, 1, k, 1), 1.0 / k), persistent=False)
        centre = torch.zeros(3, 1, 3, 3)
        centre[:, :, 1, 1] = 1.0
        self.register_buffer("centre", centre, persistent=False)
        self.register_buffer("lightness", torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("chroma", torch.tensor([0.0, chroma_gain, chroma_gain]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pick_l", torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1), persistent=False)

    def box_mean(self, x: torch.Tensor) -> torch.Tensor:
        conv = nn.functional.conv2d
        return conv(conv(x, self.box_row, groups=3), self.box_col, groups=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = nn.functional.conv2d
        mean = self.box_mean(x)
        diff = conv(x, self.centre, groups=3, dilation=self.radius) - mean
        mean_sq = self.box_mean(x * x)
        var = torch.clamp(mean_sq - mean * mean, min=0.0)
        var_l = conv(var, self.pick_l)  # (N, 1, h, w): the lightness channel's variance
        return diff * (self.lightness / torch.sqrt(var_l + self.eps * self.eps) + self.chroma)


class DFEEncoder(nn.Module):
    """Fully convolutional encoder: (N, 3, C+2r, C+2r) → (N, 128, 2r+1, 2r+1), C = ``context`` (31, or 31 + 2m normalised)."""

    def __init__(self, channels=DEFAULT_CHANNELS, kernel: int = 7, norm_radius: int = 0):
        super().__init__()
        channels = _check_channels(channels)
        self.norm = LocalNorm(norm_radius) if norm_radius else nn.Identity()
        layers: list[nn.Module] = []
        prev = 3
        for c in channels:
            layers += [nn.Conv2d(prev, c, kernel, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            prev = c
        self.features = nn.Sequential(*layers)
        self.kernel = kernel
        self.norm_radius = int(norm_radius)
        self.config = {"channels": list(channels), "kernel": kernel, "norm_radius": self.norm_radius}

    @property
    def crop_size(self) -> int:
        return 1 + 5 * (self.kernel - 1)

    @property
    def context(self) -> int:
        """Pixels of input one encoding depends on: the crop plus the normalisation's margin."""
        return self.crop_size + 2 * self.norm_radius

    @property
    def dim(self) -> int:
        return self.config["channels"][-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.norm(x))


class DFEDecoder(nn.Module):
    """Mirror of the encoder: (N, 128, 1, 1) → (N, 3, 31, 31); in [0, 1] (sigmoid) unless ``linear``."""

    def __init__(self, channels=DEFAULT_CHANNELS, kernel: int = 7, linear: bool = False):
        super().__init__()
        channels = _check_channels(channels)
        rev = list(reversed(channels)) + [3]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(rev[:-1], rev[1:])):
            last = i == len(rev) - 2
            layers.append(nn.ConvTranspose2d(cin, cout, kernel, bias=last))
            if not last:
                layers += [nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        if not linear:
            layers.append(nn.Sigmoid())
        self.features = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.features(z)


class DFEAutoencoder(nn.Module):
    def __init__(self, channels=DEFAULT_CHANNELS, kernel: int = 7, norm_radius: int = 0):
        super().__init__()
        self.encoder = DFEEncoder(channels, kernel, norm_radius)
        self.decoder = DFEDecoder(channels, kernel, linear=norm_radius > 0)
        self.config = dict(self.encoder.config)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """What the decoder should reproduce for a (context × context) input: its normalised centre 31×31."""
        return self.encoder.norm(x)


@register_model("dfe_autoencoder")
def dfe_autoencoder(channels=DEFAULT_CHANNELS, kernel: int = 7, norm_radius: int = 0) -> DFEAutoencoder:
    return DFEAutoencoder(channels, kernel, norm_radius)


@register_model("dfe_encoder")
def dfe_encoder(channels=DEFAULT_CHANNELS, kernel: int = 7, norm_radius: int = 0) -> DFEEncoder:
    """The encoder alone (what the tracker and the exporter use)."""
    return DFEEncoder(channels, kernel, norm_radius)

"""IG overlay augmentation (arXiv 2506.14440).

With probability ``p`` an image is blended with its teacher's Integrated-Gradients map:
``x' = 0.5·x + 0.5·m`` with ``m = normalise(map ** s)``, ``s = exp(U(ln 1, ln 2))``,
min-max normalised per image and broadcast to the 3 channels. Images are in [0, 1]
(before mean/std normalisation), the same range as the normalised map.
"""

from __future__ import annotations

import math

import torch


def overlay_ig(
    images: torch.Tensor,
    maps: torch.Tensor,
    p: float = 0.1,
    power_range: tuple[float, float] = (1.0, 2.0),
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend maps into a random fraction ``p`` of images.

    images: (B, 3, H, W) in [0, 1]; maps: (B, 1, H, W), non-negative, already cropped and
    flipped like their images. Returns the new images and the boolean mask of blended ones.
    """
    b = images.shape[0]
    chosen = torch.rand(b, generator=generator) < p
    if not chosen.any():
        return images, chosen
    lo, hi = math.log(power_range[0]), math.log(power_range[1])
    s = torch.exp(lo + (hi - lo) * torch.rand(b, generator=generator)).to(maps.device, maps.dtype).view(-1, 1, 1, 1)
    m = maps.clamp_min(0).pow(s)
    flat = m.flatten(1)
    mn = flat.min(1).values.view(-1, 1, 1, 1)
    mx = flat.max(1).values.view(-1, 1, 1, 1)
    m = (m - mn) / (mx - mn).clamp_min(1e-12)
    blended = 0.5 * images + 0.5 * m.expand_as(images)
    mask = chosen.to(images.device).view(-1, 1, 1, 1)
    return torch.where(mask, blended, images), chosen

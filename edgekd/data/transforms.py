"""Batch augmentation in plain torch (torchvision does not load here).

``random_crop_flip`` draws one crop offset and one flip per sample and applies them to
every tensor passed, so an image and its IG map always move together.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def to_float(images_uint8_nhwc: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) → float (B, 3, H, W) in [0, 1]."""
    return images_uint8_nhwc.permute(0, 3, 1, 2).float().div_(255.0)


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def random_crop_flip(*tensors: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None):
    """Zero-pad by ``pad``, crop back to size at a random offset, flip half horizontally.

    All tensors are (B, C, H, W) with the same B, H, W; they get identical offsets/flips.
    """
    b, _, h, w = tensors[0].shape
    dev = tensors[0].device
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).tolist()
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).tolist()
    flip = (torch.rand(b, generator=generator) < 0.5).to(dev)
    out = []
    for t in tensors:
        padded = F.pad(t, (pad, pad, pad, pad))
        cropped = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])
        cropped = torch.where(flip.view(-1, 1, 1, 1), cropped.flip(-1), cropped)
        out.append(cropped)
    return out if len(out) > 1 else out[0]

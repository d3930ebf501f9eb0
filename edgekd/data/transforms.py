"""Batch augmentation in plain torch (torchvision does not load here).

``random_crop_flip`` draws one crop offset and one flip per sample and applies them to
every tensor passed, so an image and its IG map always move together. It works on whole
batches at once (one gather, no Python loop per image).
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


def crop_flip(t: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, pad: int,
              mode: str = "constant") -> torch.Tensor:
    """Crop each (C, H, W) sample of a padded copy of ``t`` at (dy, dx) and flip where ``flip``."""
    b, c, h, w = t.shape
    padded = F.pad(t, (pad, pad, pad, pad), mode=mode) if pad else t
    rows = (dy.view(-1, 1) + torch.arange(h, device=t.device)).view(b, 1, h, 1)
    cols = dx.view(-1, 1) + torch.arange(w, device=t.device)
    cols = torch.where(flip.view(-1, 1), cols.flip(1), cols).view(b, 1, 1, w)
    return padded[torch.arange(b, device=t.device).view(b, 1, 1, 1), torch.arange(c, device=t.device).view(1, c, 1, 1),
                  rows, cols]


def random_crop_flip(*tensors: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None,
                     mode: str = "constant", flip: torch.Tensor | None = None):
    """Pad by ``pad`` (zeros, or ``mode="reflect"``), crop back to size at a random offset, flip half.

    All tensors are (B, C, H, W) with the same B, H, W; they get identical offsets and flips.
    ``flip`` (a boolean per sample) replaces the random flip, e.g. for alternating flips.
    """
    b, _, h, w = tensors[0].shape
    dev = tensors[0].device
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(dev)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(dev)
    do_flip = (torch.rand(b, generator=generator) < 0.5) if flip is None else flip
    do_flip = do_flip.to(dev)
    out = [crop_flip(t, dy, dx, do_flip, pad, mode if t.shape[-1] > pad else "constant") for t in tensors]
    return out if len(out) > 1 else out[0]

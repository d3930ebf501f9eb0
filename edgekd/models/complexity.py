"""Parameters and multiply-accumulates. Parameters are not compute: report both."""

from __future__ import annotations

import torch
from torch import nn


def count_params(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_macs(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> int:
    """Multiply-accumulates of conv and linear layers for one image (hooks, one forward)."""
    total = 0

    def conv_hook(m: nn.Conv2d, _inp, out):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total += out.shape[1] * out.shape[2] * out.shape[3] * k

    def conv_t_hook(m: nn.ConvTranspose2d, inp, _out):
        nonlocal total
        x = inp[0]
        k = m.kernel_size[0] * m.kernel_size[1] * (m.out_channels // m.groups)
        total += x.shape[1] * x.shape[2] * x.shape[3] * k

    def linear_hook(m: nn.Linear, _inp, out):
        nonlocal total
        total += m.in_features * m.out_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.ConvTranspose2d):
            hooks.append(m.register_forward_hook(conv_t_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(input_shape))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return total

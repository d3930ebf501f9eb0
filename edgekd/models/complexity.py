"""Parameters and multiply-accumulates. Parameters are not compute: report both."""

from __future__ import annotations

import torch
from torch import nn


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_macs(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> int:
    """Multiply-accumulates of convolutions and matrix products for one image.

    Counted by torch's own operator-level FLOP counter (any module: eager, TorchScript,
    torch.export), halved (one MAC = two FLOPs).
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        p = next(iter(model.parameters()), None)
        x = torch.zeros((1, *tuple(input_shape)[1:]), device=p.device if p is not None else "cpu")
        with FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops() // 2)

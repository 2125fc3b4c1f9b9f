"""The effective position weights of a VAPT prompt generator, from its parameters."""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn


@torch.no_grad()
def position_weights(generator: nn.Module) -> Tuple[torch.Tensor, torch.Tensor]:
    """Weights ``M`` (K, N, H, W) over the reference grid and bias (N,) such that, in
    eval mode, prompt ``n`` (before the projector) of channel ``c`` is
    ``sum_p M[k(c), n, p] * LN(x)[p, c] + bias[n]``.

    The core's own ``position_weights`` (the matrix its fused forward multiplies by),
    reshaped to the grid; K is 1 for the paper's shared kernel, else one matrix per
    channel (``k(c) = c``).
    """
    grid = tuple(generator.ref_grid)
    weights = generator.position_weights(grid)
    return weights.reshape(*weights.shape[:2], *grid).clone(), generator.token_map.bias.clone()

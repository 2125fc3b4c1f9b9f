"""The effective position weights of a VAPT prompt generator, from its parameters."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn


def conv_matrix(kernels: torch.Tensor, grid: Tuple[int, int], padding: int) -> torch.Tensor:
    """The channel-wise convolution as matrices over positions: (K, out_h*out_w, H*W).

    ``kernels`` are the (K, 1, k, k) kernels; column ``p`` of matrix ``k`` is the
    convolution of a one-hot image at position ``p`` with kernel ``k``.
    """
    positions = grid[0] * grid[1]
    basis = torch.eye(positions, dtype=kernels.dtype, device=kernels.device)
    images = basis.reshape(positions, 1, *grid)
    return F.conv2d(images, kernels, padding=padding).flatten(2).permute(1, 2, 0)


@torch.no_grad()
def position_weights(generator: nn.Module) -> Tuple[torch.Tensor, torch.Tensor]:
    """Weights ``M`` (K, N, H, W) over the reference grid and bias (N,) such that, in
    eval mode, prompt ``n`` (before the projector) of channel ``c`` is
    ``sum_p M[k(c), n, p] * LN(x)[p, c] + bias[n]``.

    ``M = W_token @ conv`` with the convolution written as a matrix over positions;
    K is 1 for the paper's shared kernel, else one matrix per channel (``k(c) = c``).
    """
    grid = tuple(generator.ref_grid)
    conv = conv_matrix(generator.conv.weight, grid, generator.conv.padding)
    weights = generator.token_map.weight @ conv
    return weights.reshape(*weights.shape[:2], *grid), generator.token_map.bias.clone()

"""Per-layer prompt generator: patch tokens -> N prompt tokens."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ChannelWiseConv2d

Grid = Tuple[int, int]


class PromptGenerator(nn.Module):
    """LayerNorm, channel-wise conv, Dropout2d and a token-wise linear map.

    The token-wise map is a ``nn.Linear`` over the spatial positions of the
    convolved feature map of the reference grid. Inputs on another grid are
    resampled to the reference grid (bilinear, anti-aliased when shrinking)
    right after the LayerNorm, so every grid uses the same learned weights.

    Resampling, convolution (without bias) and token map are linear over the
    positions and act on every channel alike (with a shared kernel), and Dropout2d scales
    each (image, channel) map by one scalar, so the generator computes
    ``mask * (position_weights(grid)[0] @ LN(x)) + bias``: one matmul per layer.
    With ``shared_kernel=False`` the map differs per channel and the forward
    runs operator by operator (``forward_by_operator``, the definition).

    Args:
        dim: Token width C.
        num_tokens: Prompt tokens N produced.
        ref_grid: Patch grid (H, W) the token-wise map is defined on.
        kernel_size, padding, shared_kernel: Channel-wise convolution options.
        dropout: Dropout2d probability after the convolution.
        token_map_init_std: 0 (the paper): the token map starts at zero, so the
            generated prompts start at zero; else its weights start N(0, std^2).
    """

    def __init__(self, dim: int, num_tokens: int, ref_grid: Grid, kernel_size: int = 2,
                 padding: int = 0, shared_kernel: bool = True, dropout: float = 0.1,
                 token_map_init_std: float = 0.0) -> None:
        super().__init__()
        out_h = ref_grid[0] + 2 * padding - kernel_size + 1
        out_w = ref_grid[1] + 2 * padding - kernel_size + 1
        if out_h < 1 or out_w < 1:
            raise ValueError(f'kernel_size={kernel_size} (padding={padding}) is larger than the '
                             f'patch grid {tuple(ref_grid)}; '
                             'use a smaller kernel or larger images.')
        self.ref_grid = tuple(ref_grid)
        self.norm = nn.LayerNorm(dim)
        self.conv = ChannelWiseConv2d(dim, kernel_size, padding, shared_kernel)
        self.dropout = nn.Dropout2d(dropout)
        self.token_map = nn.Linear(out_h * out_w, num_tokens)
        if token_map_init_std:
            nn.init.normal_(self.token_map.weight, std=token_map_init_std)
        else:  # the paper; no random draw, so the other parameters' initialisation is unchanged
            nn.init.zeros_(self.token_map.weight)
        nn.init.zeros_(self.token_map.bias)

    def position_weights(self, grid: Grid) -> torch.Tensor:
        """The linear map M (K, N, H*W) from the patch positions of ``grid`` to the prompts.

        Resampling to the reference grid, convolution and token map in one
        matrix per kernel: K = 1 with a shared kernel, else K = C (one per
        channel, ``k(c) = c``). Without dropout, prompt n of channel c (before
        the projector) is ``sum_j M[k(c), n, j] * LN(x)[j, c] + token_map.bias[n]``.
        Differentiable in the parameters; positions are row-major (j = y * W + x).
        """
        maps = self.conv.transpose(self.token_map.weight, self.ref_grid).transpose(0, 1)
        if tuple(grid) != self.ref_grid:
            antialias = grid[0] > self.ref_grid[0] or grid[1] > self.ref_grid[1]
            rows = _resampling_matrix(grid[0], self.ref_grid[0], antialias, maps)
            cols = _resampling_matrix(grid[1], self.ref_grid[1], antialias, maps)
            maps = rows.T @ maps @ cols
        return maps.flatten(-2)

    def forward(self, patches: torch.Tensor, grid: Grid) -> torch.Tensor:
        """Map patch tokens (B, H*W, C) on ``grid`` to prompts (B, N, C)."""
        self._check(patches, grid)
        if not self.conv.shared:
            return self.forward_by_operator(patches, grid)
        batch, _, dim = patches.shape
        weights = self.position_weights(grid)[0].expand(batch, -1, -1)  # bmm: no layout copies
        tokens = weights @ self.norm(patches)                         # (B, N, C)
        if self.training and self.dropout.p > 0:
            mask = self.dropout(patches.new_ones(batch, dim, 1, 1)).view(batch, 1, dim)
            return torch.addcmul(self.token_map.bias[:, None], tokens, mask)
        return tokens + self.token_map.bias[:, None]

    def forward_by_operator(self, patches: torch.Tensor, grid: Grid) -> torch.Tensor:
        """``forward`` computed one operator at a time, as the method states it.

        Dropout2d draws its masks from the same random numbers as ``forward``.
        """
        self._check(patches, grid)
        batch, _, dim = patches.shape
        x = self.norm(patches).transpose(1, 2).reshape(batch, dim, grid[0], grid[1])
        if tuple(grid) != self.ref_grid:
            shrinking = grid[0] > self.ref_grid[0] or grid[1] > self.ref_grid[1]
            x = F.interpolate(x, size=self.ref_grid, mode='bilinear', align_corners=False,
                              antialias=shrinking)
        x = self.dropout(self.conv(x))
        return self.token_map(x.flatten(2)).transpose(1, 2)

    @staticmethod
    def _check(patches: torch.Tensor, grid: Grid) -> None:
        if patches.shape[1] != grid[0] * grid[1]:
            raise ValueError(f'{patches.shape[1]} patch tokens do not form the grid '
                             f'{tuple(grid)}.')


def _resampling_matrix(size: int, ref_size: int, antialias: bool,
                       like: torch.Tensor) -> torch.Tensor:
    """(ref_size, size): the 1-D weights of ``PromptGenerator``'s bilinear resampling."""
    dtype = torch.promote_types(like.dtype, torch.float32)
    eye = torch.eye(size, dtype=dtype, device=like.device)[None, None]
    return F.interpolate(eye, size=(ref_size, size), mode='bilinear', align_corners=False,
                         antialias=antialias)[0, 0].to(like.dtype)

"""Small building blocks of the prompt generator."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS = {'relu': nn.ReLU, 'gelu': nn.GELU, 'sigmoid': nn.Sigmoid, 'identity': nn.Identity}


class ChannelWiseConv2d(nn.Module):
    """Depth-wise k x k convolution without bias.

    With ``shared_kernel`` one kernel is applied to every channel (the paper);
    otherwise each channel has its own.
    """

    def __init__(self, channels: int, kernel_size: int, padding: int = 0,
                 shared_kernel: bool = True) -> None:
        super().__init__()
        self.channels = channels
        self.padding = padding
        kernels = 1 if shared_kernel else channels
        self.weight = nn.Parameter(torch.randn(kernels, 1, kernel_size, kernel_size))

    @property
    def shared(self) -> bool:
        return self.weight.shape[0] == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.expand(self.channels, -1, -1, -1)
        return F.conv2d(x, weight, padding=self.padding, groups=self.channels)

    def transpose(self, maps: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        """The adjoint of the convolution on inputs of ``size`` (h, w).

        Maps (N, h' * w') over its output positions -> (N, K, h, w) over its
        input positions, K = 1 with a shared kernel, else one per channel:
        ``<conv(x), m> == <x, transpose(m)>`` for every channel.
        """
        kernels, _, k, _ = self.weight.shape
        pad = self.padding
        maps = maps.view(maps.shape[0], 1, size[0] + 2 * pad - k + 1, size[1] + 2 * pad - k + 1)
        # The maps times every tap, then one shifted copy per tap: small element-wise
        # operators (F.fold's backward, im2col, forks threads even for tiny maps).
        scaled = maps.unsqueeze(2) * self.weight.view(1, kernels, k * k, 1, 1)
        terms = [F.pad(scaled[:, :, dy * k + dx], (dx, k - 1 - dx, dy, k - 1 - dy))
                 for dy in range(k) for dx in range(k)]
        return sum(terms[1:], terms[0])[..., pad:pad + size[0], pad:pad + size[1]]


class FeatureProjector(nn.Module):
    """Residual bottleneck MLP ``x + W2 drop(act(W1 x))`` without biases."""

    def __init__(self, dim: int, hidden_dim: int, activation: str = 'relu',
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim, bias=False)
        self.act = _ACTIVATIONS[activation]()
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden_dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.drop(self.act(self.fc1(x))))

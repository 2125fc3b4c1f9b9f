"""Grad-CAM of a scalar score at one layer, with a forward hook and ``torch.autograd.grad``."""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def patch_map(tokens: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
    """The patch tokens (the last h*w) of (B, T, C) tokens as a (B, C, h, w) map."""
    patches = tokens[:, -grid[0] * grid[1]:]
    return patches.transpose(1, 2).reshape(tokens.shape[0], -1, *grid)


def grad_cam(score: Callable[[], torch.Tensor], layer: nn.Module,
             to_map: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
             size: Optional[Tuple[int, int]] = None, at_input: bool = False) -> torch.Tensor:
    """Grad-CAM (B, h, w) of ``score()`` (a scalar) at the output of ``layer``, or with
    ``at_input`` at its (first) input.

    ``to_map`` turns that tensor into activations (B, C, h, w). The map is
    ``relu(sum_c mean_hw(dS/dA_c) * A_c)``, scaled to a maximum of 1 per image and,
    with ``size``, resized bilinearly. The tensor is detached in the pass, so the
    score's gradient reaches no parameter.
    """
    kept = {}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        kept['tensor'] = tensor.detach().requires_grad_(True)
        return kept['tensor']

    if at_input:
        handle = layer.register_forward_pre_hook(lambda m, args: (keep(args[0]), *args[1:]))
    else:
        handle = layer.register_forward_hook(lambda m, args, output: keep(output))
    try:
        with torch.enable_grad():
            value = score()
            if 'tensor' not in kept:
                raise RuntimeError(f'the score never ran {type(layer).__name__}; pass a layer '
                                   'of the model that computes it.')
            grad, = torch.autograd.grad(value, kept['tensor'])
    finally:
        handle.remove()
    activations, grads = to_map(kept['tensor'].detach()), to_map(grad)
    cam = F.relu((grads.mean(dim=(2, 3), keepdim=True) * activations).sum(dim=1))
    cam = cam / cam.flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, 1, 1)
    if size is not None:
        cam = F.interpolate(cam[:, None], size=size, mode='bilinear', align_corners=False)[:, 0]
    return cam

"""The prompt parameters of VAPT, VPT-deep and VPT-shallow in one module."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import nn

from .config import PromptConfig
from .generator import Grid, PromptGenerator
from .layers import FeatureProjector


class LayerPrompts(nn.Module):
    """Prompts for every block of a ViT.

    ``static`` holds the free prompts of the first layers (all layers for
    VPT-deep, layer 0 for VPT-shallow, ``static_layers`` for VAPT); VAPT
    generates the prompts of every later layer from the patch tokens that left
    the previous block. With ``cfg.generated_offset``, ``offset`` holds one free
    (N, C) prompt per generated layer, added to its generated prompts (zero at
    initialisation, so the outputs start exactly as without it, or drawn as the
    static prompts with ``cfg.offset_init='vpt'``). With ``cfg.prompt_gate``,
    ``gate`` holds the zero-initialised prompt gates, (L, 1) or (L, heads).

    Args:
        cfg: Prompt options; ``cfg.ref_grid`` must be set for VAPT.
        dim: Token width C of the ViT.
        depth: Number of blocks L.
        patch_size: Patch side, used by VPT's uniform (Xavier-style) init.
        num_heads: Attention heads per block; needed by ``prompt_gate='head'``.
    """

    def __init__(self, cfg: PromptConfig, dim: int, depth: int,
                 patch_size: Tuple[int, int], num_heads: Optional[int] = None) -> None:
        super().__init__()
        if cfg.method == 'vapt' and cfg.static_layers >= depth:
            raise ValueError(f'static_layers={cfg.static_layers} leaves no adaptive layer in a '
                             f'{depth}-block ViT; use static_layers < {depth} '
                             'or method="vpt-deep".')
        if cfg.method == 'vapt' and cfg.ref_grid is None:
            raise ValueError('VAPT needs cfg.ref_grid, the patch grid of the training images.')
        self.cfg = cfg
        self.depth = depth
        num_static = {'vapt': cfg.static_layers, 'vpt-deep': depth, 'vpt-shallow': 1}[cfg.method]
        self.static = nn.Parameter(torch.zeros(num_static, cfg.num_tokens, dim))
        bound = math.sqrt(6.0 / float(3 * patch_size[0] * patch_size[1] + dim))
        nn.init.uniform_(self.static, -bound, bound)
        self.prompt_dropout = nn.Dropout(cfg.prompt_dropout)

        self.generators = nn.ModuleList()
        self.projectors = nn.ModuleList()
        self.register_parameter('offset', None)
        if cfg.method == 'vapt':
            num_generated = depth - num_static
            self.generators.extend(
                PromptGenerator(dim, cfg.num_tokens, cfg.ref_grid, cfg.kernel_size, cfg.padding,
                                cfg.shared_kernel, cfg.conv_dropout, cfg.token_map_init_std)
                for _ in range(num_generated))
            self.projectors.extend(
                FeatureProjector(dim, cfg.hidden_dim, cfg.activation, cfg.projector_dropout)
                for _ in range(1 if cfg.shared_projector else num_generated))
            if cfg.generated_offset:
                self.offset = nn.Parameter(torch.zeros(num_generated, cfg.num_tokens, dim))
                if cfg.offset_init == 'vpt':
                    nn.init.uniform_(self.offset, -bound, bound)
        self.register_parameter('gate', None)
        if cfg.prompt_gate != 'none':
            if cfg.prompt_gate == 'head' and not num_heads:
                raise ValueError("prompt_gate='head' needs the ViT's number of attention heads.")
            heads = num_heads if cfg.prompt_gate == 'head' else 1
            self.gate = nn.Parameter(torch.zeros(depth, heads))

    @property
    def num_tokens(self) -> int:
        return self.cfg.num_tokens

    def forward(self, layer: int, patches: torch.Tensor, grid: Grid) -> Optional[torch.Tensor]:
        """Prompts (B, N, C) to insert before block ``layer``.

        ``patches`` are the patch tokens (B, H*W, C) that enter the block,
        without prefix tokens or prompts. ``None`` means keep the prompts that
        left the previous block (VPT-shallow, layers >= 1).
        """
        if layer < self.static.shape[0]:
            prompts = self.static[layer].unsqueeze(0).expand(patches.shape[0], -1, -1)
            return self.prompt_dropout(prompts)
        if not self.generators:
            return None
        index = layer - self.static.shape[0]
        projector = self.projectors[0 if len(self.projectors) == 1 else index]
        prompts = projector(self.generators[index](patches, grid))
        return prompts if self.offset is None else prompts + self.offset[index]

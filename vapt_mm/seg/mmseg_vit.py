"""``PromptableViT`` over mmsegmentation's ``VisionTransformer``."""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
from mmengine.utils import to_2tuple
from mmseg.models.backbones import VisionTransformer
from torch import nn

from ..core import PromptGate, gate_multihead_attention


class MMSegViT(nn.Module):
    """Exposes an mmseg ``VisionTransformer`` through the core's ViT protocol.

    The embedding is the plain backbone's: patch embedding (with its
    adaptive padding), class token, position embedding resized to the patch
    grid, optional class-token removal and pre-norm.

    Args:
        model (VisionTransformer): The mmseg ViT; built with
            ``output_cls_token=False`` and ``out_origin=False``.
    """

    def __init__(self, model: VisionTransformer) -> None:
        super().__init__()
        if not isinstance(model, VisionTransformer):
            raise TypeError(f'{type(model).__name__} is not an mmseg VisionTransformer.')
        if model.output_cls_token or model.out_origin:
            raise ValueError('VAPTBackbone returns patch feature maps only; build the ViT with '
                             'output_cls_token=False and out_origin=False.')
        self.model = model
        self.embed_dim: int = model.cls_token.shape[-1]
        self.num_prefix_tokens: int = 1 if model.with_cls_token else 0
        self.patch_size: Tuple[int, int] = tuple(to_2tuple(model.patch_size))
        self._identity = nn.Identity()

    @property
    def blocks(self) -> Sequence[nn.Module]:
        return self.model.layers

    @property
    def norm(self) -> nn.Module:
        return self.model.norm1 if self.model.final_norm else self._identity

    def gate_prompts(self, gate: PromptGate) -> int:
        """Gate the ``nn.MultiheadAttention`` inside every layer's mmcv
        ``MultiheadAttention`` (``PromptConfig.prompt_gate``); returns the heads."""
        return [gate_multihead_attention(layer.attn.attn, gate) for layer in self.model.layers][0]

    def embed(self, images: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        model = self.model
        x, grid = model.patch_embed(images)
        x = torch.cat([model.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = model._pos_embeding(x, grid, model.pos_embed)
        if not model.with_cls_token:
            x = x[:, 1:]
        if model.pre_norm:
            x = model.pre_ln(x)
        return x, tuple(grid)

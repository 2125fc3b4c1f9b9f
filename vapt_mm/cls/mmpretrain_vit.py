"""``PromptableViT`` over mmpretrain's ``VisionTransformer``."""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed, to_2tuple
from torch import nn

from vapt_mm.core import PromptGate

from .gated_attention import gate_mmpretrain_attention


class MMPretrainViT(nn.Module):
    """Exposes an mmpretrain ``VisionTransformer`` through the core's ViT protocol.

    The embedding is the plain backbone's: patch embedding, class token,
    position embedding resized to the patch grid (``interpolate_mode``), the
    dropout after it and ``pre_norm``; the final norm is ``ln1`` when the ViT
    has ``final_norm`` (``nn.Identity`` otherwise).

    Args:
        model (VisionTransformer): The mmpretrain ViT, with a class token and
            ``out_type='cls_token'`` (the output VAPT classifies from).
            Subclasses that change the forward pass (distillation or register
            tokens, masking) are refused.
    """

    def __init__(self, model: VisionTransformer) -> None:
        super().__init__()
        if not isinstance(model, VisionTransformer):
            raise TypeError(f'{type(model).__name__} is not an mmpretrain VisionTransformer.')
        if type(model).forward is not VisionTransformer.forward or model.num_extra_tokens != 1:
            raise TypeError(f'{type(model).__name__} changes mmpretrain\'s ViT forward pass or '
                            'its tokens; VAPT drives the plain VisionTransformer (one class '
                            "token): use vit=dict(type='VisionTransformer', ...).")
        if model.out_type != 'cls_token':
            raise ValueError(f'out_type={model.out_type!r}: VAPT classifies from the class token '
                             "after the final norm; build the ViT with out_type='cls_token'.")
        self.model = model
        self.embed_dim: int = model.embed_dims
        self.num_prefix_tokens: int = model.num_extra_tokens
        self.patch_size: Tuple[int, int] = tuple(to_2tuple(model.patch_embed.projection.stride))
        self._identity = nn.Identity()

    @property
    def blocks(self) -> Sequence[nn.Module]:
        return self.model.layers

    @property
    def norm(self) -> nn.Module:
        return self.model.ln1 if self.model.final_norm else self._identity

    def gate_prompts(self, gate: PromptGate) -> int:
        """Gate every layer's ``attn`` (``PromptConfig.prompt_gate``); returns the heads."""
        return [gate_mmpretrain_attention(layer.attn, gate) for layer in self.model.layers][0]

    def embed(self, images: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        model = self.model
        x, grid = model.patch_embed(images)
        x = torch.cat([model.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + resize_pos_embed(model.pos_embed, model.patch_resolution, grid,
                                 mode=model.interpolate_mode,
                                 num_extra_tokens=model.num_extra_tokens)
        x = model.pre_norm(model.drop_after_pos(x))
        return x, tuple(grid)

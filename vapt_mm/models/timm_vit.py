"""``PromptableViT`` over a timm ``VisionTransformer``."""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
from torch import nn
from timm.models.vision_transformer import VisionTransformer

from vapt_mm.core.gate import PromptGate

from .timm_gated_attention import gate_timm_attention


class TimmViT(nn.Module):
    """Exposes a timm ``VisionTransformer`` through the core's ViT protocol.

    Args:
        model: A timm ``VisionTransformer`` (supervised, MAE, DINO, CLIP or
            SigLIP weights all use it). Create it with ``dynamic_img_size=True``
            to run on image sizes other than its ``img_size``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not isinstance(model, VisionTransformer):
            raise TypeError(f'{type(model).__name__} is not a timm VisionTransformer; VAPT needs a '
                            'plain ViT (patch tokens on a grid), e.g. vit_base_patch16_224.')
        if not isinstance(model.patch_drop, nn.Identity):
            raise ValueError('patch dropout removes patch tokens, but the VAPT prompt generator '
                             'needs the full patch grid; create the model with patch_drop_rate=0.')
        self.model = model
        self.embed_dim: int = model.embed_dim
        self.num_prefix_tokens: int = model.num_prefix_tokens
        self.patch_size: Tuple[int, int] = tuple(model.patch_embed.patch_size)

    @property
    def blocks(self) -> Sequence[nn.Module]:
        return self.model.blocks

    @property
    def norm(self) -> nn.Module:
        return self.model.norm

    def gate_prompts(self, gate: PromptGate) -> int:
        """Gate every block's ``attn`` (``PromptConfig.prompt_gate``); returns the heads."""
        return [gate_timm_attention(getattr(block, 'attn', None), gate)
                for block in self.model.blocks][0]

    def embed(self, images: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        grid = tuple(self.model.patch_embed.dynamic_feat_size(images.shape[-2:]))
        x = self.model.patch_embed(images)
        x = self.model._pos_embed(x)
        x = self.model.norm_pre(x)
        return x, grid

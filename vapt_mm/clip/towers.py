"""``PromptableViT`` adapters for open_clip image towers, each with open_clip's tail."""
from __future__ import annotations

import warnings
from typing import Dict, List, Sequence, Tuple

import torch
from open_clip.timm_model import TimmModel
from open_clip.transformer import ResidualAttentionBlock, VisionTransformer
from torch import nn

from vapt_mm.core import PromptGate, gate_multihead_attention, ungate_module
from vapt_mm.models.timm_vit import TimmViT


class SequenceFirst(nn.Module):
    """Runs a sequence-first (T, B, C) block on batch-first (B, T, C) tokens."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.block(tokens.transpose(0, 1)).transpose(0, 1)


class OpenClipViT(nn.Module):
    """open_clip's own ``VisionTransformer`` through the core's ViT protocol.

    ``embed`` is open_clip's ``_embeds`` without patch dropout (turned off with
    a warning: VAPT needs the full patch grid); ``pool`` is the tail of its
    ``forward`` (attentional pooling, ``ln_post``, ``_global_pool``, ``proj``).
    """

    def __init__(self, tower: VisionTransformer) -> None:
        super().__init__()
        self.tower = tower
        self._patch_dropout = (tower.patch_dropout,)  # a tuple: not registered
        if not isinstance(tower.patch_dropout, nn.Identity):
            warnings.warn('patch dropout removes patch tokens but VAPT needs the full patch grid; '
                          'it is turned off while VAPT is applied.')
            tower.patch_dropout = nn.Identity()
        self.embed_dim: int = tower.conv1.out_channels
        self.num_prefix_tokens = 1
        self.patch_size: Tuple[int, int] = tuple(tower.patch_size)
        self.image_size: Tuple[int, int] = tuple(tower.image_size)
        self._gated: List[nn.Module] = []  # attention modules of gate_prompts
        resblocks = list(tower.transformer.resblocks)
        # A plain list: the blocks stay registered only under ``tower``.
        self._blocks: List[nn.Module] = (resblocks if tower.transformer.batch_first
                                         else [SequenceFirst(b) for b in resblocks])

    @property
    def blocks(self) -> Sequence[nn.Module]:
        return self._blocks

    @property
    def norm(self) -> nn.Module:
        return self.tower.ln_post

    def embed(self, images: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        tower = self.tower
        x = tower.conv1(images)
        grid = tuple(x.shape[-2:])
        x = x.flatten(2).transpose(1, 2)
        cls = tower.class_embedding.view(1, 1, -1).expand(x.shape[0], -1, -1).to(x.dtype)
        x = torch.cat([cls, x], dim=1) + tower.positional_embedding.to(x.dtype)
        return tower.ln_pre(x), grid

    def gate_prompts(self, gate: PromptGate) -> int:
        """Gate the ``nn.MultiheadAttention`` of every ``ResidualAttentionBlock``
        (``PromptConfig.prompt_gate``); returns the heads. ``restore`` undoes it."""
        resblocks = list(self.tower.transformer.resblocks)
        if any(type(block) is not ResidualAttentionBlock for block in resblocks):
            raise TypeError('prompt_gate supports open_clip ResidualAttentionBlock towers, not '
                            f'{type(resblocks[0]).__name__}; use prompt_gate=\'none\'.')
        self._gated = [block.attn for block in resblocks]
        return [gate_multihead_attention(attn, gate) for attn in self._gated][0]

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Last block's tokens -> image features, as ``VisionTransformer.forward``."""
        pooled, pooled_tokens = self.tower._pool(tokens)
        if self.tower.proj is not None:
            pooled = pooled @ self.tower.proj
        return (pooled, pooled_tokens) if self.tower.output_tokens else pooled

    def trainable_patterns(self, prefix: str) -> Dict[str, List[str]]:
        """Parameter-name patterns of the optional trainable extras."""
        return {'proj': [f'{prefix}tower.proj'], 'ln_post': [f'{prefix}tower.ln_post.*']}

    def restore(self) -> nn.Module:
        """Undo the changes to the tower and return it."""
        self.tower.patch_dropout = self._patch_dropout[0]
        for attn in self._gated:
            ungate_module(attn)
        self._gated = []
        return self.tower


class OpenClipTimmViT(TimmViT):
    """An open_clip ``TimmModel`` tower whose trunk is a timm ViT (e.g. SigLIP).

    ``pool`` runs the trunk's final norm and head (pooling, ``fc_norm``,
    classifier) and open_clip's projection head, as ``TimmModel.forward``.
    """

    def __init__(self, tower: TimmModel) -> None:
        trunk = tower.trunk
        patch_drop = getattr(trunk, 'patch_drop', None)
        if patch_drop is not None and not isinstance(patch_drop, nn.Identity):
            warnings.warn('patch dropout removes patch tokens but VAPT needs the full patch grid; '
                          'it is turned off while VAPT is applied.')
            trunk.patch_drop = nn.Identity()
        super().__init__(trunk)
        self.head = tower.head
        self.image_size: Tuple[int, int] = tuple(tower.image_size)
        # Not registered: every parameter of the tower is already under ``model`` or ``head``.
        self._tower = [tower, patch_drop]
        self._gated: List[nn.Module] = []  # attention modules of gate_prompts

    def gate_prompts(self, gate: PromptGate) -> int:
        """Gate every block's attention as ``TimmViT``; ``restore`` undoes it."""
        heads = super().gate_prompts(gate)
        self._gated = [block.attn for block in self.model.blocks]
        return heads

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Last block's tokens -> image features, as ``TimmModel.forward``."""
        return self.head(self.model.forward_head(self.model.norm(tokens)))

    def trainable_patterns(self, prefix: str) -> Dict[str, List[str]]:
        """Parameter-name patterns of the optional trainable extras."""
        names = [n for n, _ in self.named_parameters()]

        def present(*modules: str) -> List[str]:
            return [f'{prefix}{m}.*' for m in modules if any(n.startswith(m + '.') for n in names)]
        return {'proj': present('model.head', 'head'),
                'ln_post': present('model.norm', 'model.fc_norm')}

    def restore(self) -> nn.Module:
        """Undo the changes to the tower and return it."""
        tower, patch_drop = self._tower
        if patch_drop is not None:
            tower.trunk.patch_drop = patch_drop
        for attn in self._gated:
            ungate_module(attn)
        self._gated = []
        return tower


def promptable_tower(tower: nn.Module) -> nn.Module:
    """The adapter for an open_clip image tower, or a ``TypeError`` naming what fits."""
    if isinstance(tower, VisionTransformer):
        return OpenClipViT(tower)
    if isinstance(tower, TimmModel):
        return OpenClipTimmViT(tower)
    raise TypeError(f'VAPT supports open_clip VisionTransformer and TimmModel (timm ViT trunk) '
                    f'image towers, not {type(tower).__name__}.')

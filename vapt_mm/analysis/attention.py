"""Attention probabilities of every block, recorded with forward hooks."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import torch
from timm.models.vision_transformer import Attention as TimmAttention
from torch import nn

SUPPORTED = (nn.MultiheadAttention, TimmAttention)


def attention_module(block: nn.Module) -> nn.Module:
    """The one self-attention module of a block, or a ``TypeError`` naming what fits."""
    found = [m for m in block.modules() if isinstance(m, SUPPORTED)]
    if len(found) != 1:
        raise TypeError(f'{type(block).__name__} holds {len(found)} attention modules of the '
                        f'supported types ({", ".join(t.__name__ for t in SUPPORTED)}); '
                        'attention is recorded from ViT blocks with exactly one of them.')
    return found[0]


class AttentionRecorder:
    """Within ``with``, records each block's attention (B, heads, T, T) of the last pass.

    ``nn.MultiheadAttention`` (mmseg, open_clip) is asked for its per-head weights;
    timm's ``Attention`` runs its unfused path and its ``attn_drop`` output (the
    probabilities; dropout is off in eval mode) is kept.
    """

    def __init__(self, blocks: Sequence[nn.Module]) -> None:
        self.modules = [attention_module(block) for block in blocks]
        self.maps: List[torch.Tensor] = [torch.empty(0)] * len(self.modules)
        self._handles: List[Any] = []
        self._fused: Dict[nn.Module, bool] = {}

    def _keep(self, index: int):
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            weights = output[1] if isinstance(module, nn.MultiheadAttention) else output
            self.maps[index] = weights.detach()
        return hook

    @staticmethod
    def _ask_for_weights(module: nn.Module, args: Tuple, kwargs: Dict) -> Tuple[Tuple, Dict]:
        return args, {**kwargs, 'need_weights': True, 'average_attn_weights': False}

    def __enter__(self) -> 'AttentionRecorder':
        for index, module in enumerate(self.modules):
            if isinstance(module, nn.MultiheadAttention):
                self._handles.append(module.register_forward_pre_hook(
                    self._ask_for_weights, with_kwargs=True))
                self._handles.append(module.register_forward_hook(self._keep(index)))
            else:
                self._fused[module] = module.fused_attn
                module.fused_attn = False
                self._handles.append(module.attn_drop.register_forward_hook(self._keep(index)))
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        for module, fused in self._fused.items():
            module.fused_attn = fused
        self._handles, self._fused = [], {}


def prompt_attention(maps: Sequence[torch.Tensor], queries: torch.Tensor, prefix: int,
                     num_prompts: int) -> torch.Tensor:
    """Attention from weighted query tokens to the prompts: (B, layers, N).

    ``maps`` are (B, heads, T, T) per layer with the tokens laid out as
    [prefix, N prompts, patches]; ``queries`` (B, T) weigh the query tokens (e.g.
    one-hot on the class token, or the share of each patch inside a region).
    The result is the query-weighted mean, over heads too, of the weights on each prompt.
    """
    weights = queries / queries.sum(dim=1, keepdim=True)
    rows = [torch.einsum('bq,bhqk->bk', weights, attn.float()) / attn.shape[1]
            for attn in maps]
    return torch.stack(rows, dim=1)[..., prefix:prefix + num_prompts]

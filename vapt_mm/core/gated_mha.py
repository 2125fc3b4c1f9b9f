"""The prompt gate for ``torch.nn.MultiheadAttention`` (open_clip's blocks, mmcv's attention)."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .gate import PromptGate, gate_module


class GatedMultiheadAttention(nn.MultiheadAttention):
    """``nn.MultiheadAttention`` whose self-attention runs ``PromptGate.attention``
    while a ``PromptedViT`` runs its block (its own forward otherwise).

    q, k and v come from the packed (or separate) input projection as in
    ``F.multi_head_attention_forward``; the attention weights are not returned
    (``None``) while the gate is active.
    """

    prompt_gate: PromptGate

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: Optional[torch.Tensor] = None, need_weights: bool = True,
                attn_mask: Optional[torch.Tensor] = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        if not self.prompt_gate.active:
            return super().forward(query, key, value, key_padding_mask, need_weights, attn_mask,
                                   average_attn_weights, is_causal)
        if not (_same_view(query, key) and _same_view(query, value)):
            raise ValueError('the prompt gate applies to self-attention (query, key and value '
                             'the same tokens); this block attends to other tokens.')
        if key_padding_mask is not None or attn_mask is not None or is_causal:
            raise ValueError('the prompt gate takes no attention mask; build the ViT without one.')
        x = query if self.batch_first else query.transpose(0, 1)
        b, t, c = x.shape
        if self._qkv_same_embed_dim:
            q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        else:
            bias = (None,) * 3 if self.in_proj_bias is None else self.in_proj_bias.chunk(3)
            q = F.linear(x, self.q_proj_weight, bias[0])
            k = F.linear(x, self.k_proj_weight, bias[1])
            v = F.linear(x, self.v_proj_weight, bias[2])
        q, k, v = (y.reshape(b, t, self.num_heads, self.head_dim).transpose(1, 2)
                   for y in (q, k, v))
        out = self.prompt_gate.attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        out = self.out_proj(out.transpose(1, 2).reshape(b, t, c))
        return (out if self.batch_first else out.transpose(0, 1)), None


def gate_multihead_attention(module: nn.Module, gate: PromptGate) -> int:
    """Gate an ``nn.MultiheadAttention``; returns its number of heads."""
    if getattr(module, 'bias_k', None) is not None or getattr(module, 'add_zero_attn', False):
        raise ValueError('the prompt gate cannot honour add_bias_kv or add_zero_attn (extra keys '
                         "outside the prompts); use prompt_gate='none' with this ViT.")
    gate_module(module, GatedMultiheadAttention, gate)
    return module.num_heads


def _same_view(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a is b or (a.data_ptr() == b.data_ptr() and a.shape == b.shape
                      and a.stride() == b.stride())

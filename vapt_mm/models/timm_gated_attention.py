"""The prompt gate for timm's ``Attention`` (``vapt_mm.core.gate``)."""
from __future__ import annotations

from typing import Optional

import torch
from timm.layers import Attention

from vapt_mm.core.gate import PromptGate, gate_module


class GatedTimmAttention(Attention):
    """timm ``Attention`` whose attention runs ``PromptGate.attention`` while a
    ``PromptedViT`` runs its block (timm's own forward otherwise).

    q, k and v are timm's: the qkv projection, ``q_norm``/``k_norm`` and
    ``scale``; then its ``norm``, sigmoid output gate (``gated=True``),
    ``proj`` and ``proj_drop``. The fused and unfused paths of timm compute the
    same attention; the gated one always runs ``scaled_dot_product_attention``.
    """

    prompt_gate: PromptGate

    def forward(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None,
                is_causal: bool = False) -> torch.Tensor:
        if not self.prompt_gate.active:
            return super().forward(x, attn_mask, is_causal)
        if attn_mask is not None or is_causal:
            raise ValueError('the prompt gate takes no attention mask; build the ViT without one.')
        b, t, _ = x.shape
        out_gate = self.gate(x).sigmoid() if self.gate is not None else None
        qkv = self.qkv(x).reshape(b, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        x = self.prompt_gate.attention(q, k, v, scale=self.scale,
                                       dropout_p=self.attn_drop.p if self.training else 0.0)
        x = self.norm(x.transpose(1, 2).reshape(b, t, self.attn_dim))
        if out_gate is not None:
            x = x * out_gate
        return self.proj_drop(self.proj(x))


def gate_timm_attention(module: torch.nn.Module, gate: PromptGate) -> int:
    """Gate a timm ``Attention``; returns its number of heads."""
    gate_module(module, GatedTimmAttention, gate)
    return module.num_heads

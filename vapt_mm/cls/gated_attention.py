"""The prompt gate for mmpretrain's ``MultiheadAttention`` (``vapt_mm.core.gate``)."""
from __future__ import annotations

import torch
from mmpretrain.models.utils import MultiheadAttention
from torch import nn

from vapt_mm.core.gate import PromptGate, gate_module


class GatedMMPretrainAttention(MultiheadAttention):
    """mmpretrain ``MultiheadAttention`` whose attention runs ``PromptGate.attention``
    while a ``PromptedViT`` runs its block (mmpretrain's own forward otherwise).

    q, k and v are mmpretrain's (the qkv projection, scale ``head_dims ** -0.5``,
    which mmpretrain 1.2 uses whether or not ``qk_scale`` is set); then
    ``proj``, ``proj_drop``, layer scale ``gamma1``, ``out_drop`` and the
    optional ``v_shortcut``, in mmpretrain's order.
    """

    prompt_gate: PromptGate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.prompt_gate.active:
            return super().forward(x)
        b, t, _ = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.num_heads, self.head_dims).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        out = self.prompt_gate.attention(q, k, v, scale=self.head_dims ** -0.5,
                                         dropout_p=self.attn_drop if self.training else 0.0)
        out = self.proj(out.transpose(1, 2).reshape(b, t, self.embed_dims))
        out = self.out_drop(self.gamma1(self.proj_drop(out)))
        return v.squeeze(1) + out if self.v_shortcut else out


def gate_mmpretrain_attention(module: nn.Module, gate: PromptGate) -> int:
    """Gate an mmpretrain ``MultiheadAttention``; returns its number of heads."""
    gate_module(module, GatedMMPretrainAttention, gate)
    return module.num_heads

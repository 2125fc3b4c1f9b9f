"""A zero-initialised prompt gate: prompted attention that starts as the frozen model's.

The class and patch tokens attend to each other with the frozen model's
softmax, and to the prompts with a separate softmax scaled by a learnable gate
g (LLaMA-Adapter's zero-initialised attention):

    out_x = softmax(q_x K_x^T s) V_x + g * softmax(q_x K_p^T s) V_p

for every non-prompt query x (K_x, V_x: non-prompt keys and values; K_p, V_p:
the prompts'). Prompt queries attend to all keys as usual. At g = 0 the class
and patch tokens are exactly the frozen model's; the output is linear in g and
smooth in the prompts, so gradients reach g at g = 0 and the prompts once g != 0.

Each ViT family computes q, k and v as it always does and calls
``gated_prompt_attention``; ``PromptedViT`` tells it, through a shared
``PromptGate``, where the prompts sit and the gate of the block it runs.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn


def gated_prompt_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, prompts: slice,
                           gate: torch.Tensor, scale: Optional[float] = None,
                           dropout_p: float = 0.0) -> torch.Tensor:
    """Attention with the prompts' share scaled by ``gate``.

    Args:
        q, k, v: Queries, keys and values (B, H, T, D), prompts included.
        prompts: Token positions of the prompts (``slice(start, stop)``).
        gate: One value (shape (1,)) or one per head (shape (H,)).
        scale: Logit scale s (``None``: 1 / sqrt(D)).
        dropout_p: Dropout on the attention weights (training only; the caller decides).

    Returns the attention output (B, H, T, D) in token order.
    """
    start, stop = prompts.start, prompts.stop
    q_x = torch.cat([q[:, :, :start], q[:, :, stop:]], dim=2)
    k_x = torch.cat([k[:, :, :start], k[:, :, stop:]], dim=2)
    v_x = torch.cat([v[:, :, :start], v[:, :, stop:]], dim=2)
    k_p, v_p = k[:, :, start:stop], v[:, :, start:stop]
    frozen = F.scaled_dot_product_attention(q_x, k_x, v_x, dropout_p=dropout_p, scale=scale)
    prompted = F.scaled_dot_product_attention(q_x, k_p, v_p, dropout_p=dropout_p, scale=scale)
    out_x = frozen + gate.to(q.dtype).view(1, -1, 1, 1) * prompted
    out_p = F.scaled_dot_product_attention(q[:, :, start:stop], k, v, dropout_p=dropout_p,
                                           scale=scale)
    return torch.cat([out_x[:, :, :start], out_p, out_x[:, :, start:]], dim=2)


class PromptGate:
    """Where the prompts sit and which gate applies, for the block being run.

    ``PromptedViT`` sets both around each block (``running``); a gated attention
    module reads them and runs its plain forward pass while nothing is set (a
    block called outside ``PromptedViT``, or without prompts).
    """

    def __init__(self) -> None:
        self.prompts: Optional[slice] = None
        self.gate: Optional[torch.Tensor] = None

    @property
    def active(self) -> bool:
        return self.gate is not None

    @contextmanager
    def running(self, prompts: slice, gate: torch.Tensor) -> Iterator[None]:
        self.prompts, self.gate = prompts, gate
        try:
            yield
        finally:
            self.prompts, self.gate = None, None

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                  scale: Optional[float] = None, dropout_p: float = 0.0) -> torch.Tensor:
        """``gated_prompt_attention`` with this block's prompts and gate."""
        if self.prompts.stop > q.shape[2]:
            raise ValueError(f'the prompts sit at tokens {self.prompts.start}..'
                             f'{self.prompts.stop} but the block got {q.shape[2]} tokens.')
        return gated_prompt_attention(q, k, v, self.prompts, self.gate, scale, dropout_p)


def gate_module(module: nn.Module, gated: type, gate: PromptGate) -> None:
    """Route ``module`` through ``gated``, a subclass of its exact class that
    overrides ``forward`` only: parameter names, state dict and
    ``isinstance`` checks stay as they were. ``ungate_module`` undoes it."""
    base = gated.__bases__[0]
    if type(module) is not base:
        raise TypeError(f'prompt_gate supports {base.__module__}.{base.__name__} attention, not '
                        f'{type(module).__module__}.{type(module).__name__}; '
                        "use prompt_gate='none' with this ViT.")
    module.__class__ = gated
    module.prompt_gate = gate


def ungate_module(module: nn.Module) -> None:
    """Give a module of ``gate_module`` its own class back."""
    module.__class__ = type(module).__bases__[0]
    del module.prompt_gate

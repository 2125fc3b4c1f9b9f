"""The retrieval tool's optimizer parameter groups: weight decay and the generators' lr."""
from __future__ import annotations

from typing import Callable, Dict, List

from torch import nn
from torch.optim import Optimizer

from vapt_mm.core.peft import prompt_modules


def param_groups(model: nn.Module, weight_decay: float,
                 generator_lr_mult: float = 1.0) -> List[Dict]:
    """AdamW groups of the trainable parameters: matrices with ``weight_decay``,
    vectors without, each with ``lr_mult=1`` (``scaled_schedule`` applies it).
    With ``generator_lr_mult != 1``, VAPT's generators and projectors
    (``LayerPrompts``' ``generators``/``projectors``) form groups of their own
    with ``lr_mult=generator_lr_mult``; otherwise the groups are the two of
    earlier versions (their checkpoints resume)."""
    if generator_lr_mult < 0:
        raise ValueError(f'the generators\' lr multiplier must be >= 0, got {generator_lr_mult}.')
    generated = set()
    if generator_lr_mult != 1.0:
        generated = {id(p) for _, prompts in prompt_modules(model)
                     for p in [*prompts.generators.parameters(), *prompts.projectors.parameters()]}
        if not generated:
            raise ValueError('a generator lr multiplier needs VAPT\'s generators (method "vapt"); '
                             'this model has none: leave the multiplier at 1.')
    groups = {(decay, gen): [] for decay in (True, False) for gen in (False, True)}
    for param in model.parameters():
        if param.requires_grad:
            groups[(param.ndim >= 2, id(param) in generated)].append(param)
    return [{'params': params, 'weight_decay': weight_decay if decay else 0.0,
             'lr_mult': generator_lr_mult if gen else 1.0}
            for (decay, gen), params in groups.items() if params or not gen]


def scaled_schedule(optimizer: Optimizer,
                    schedule: Callable[[int], float]) -> Callable[[int], float]:
    """Wrap an open_clip lr schedule (which sets one lr on every group) so that
    each group then gets that lr times its ``lr_mult``; returns the base lr."""
    def adjust(step: int) -> float:
        lr = schedule(step)
        for group in optimizer.param_groups:
            group['lr'] = lr * group.get('lr_mult', 1.0)
        return lr
    return adjust

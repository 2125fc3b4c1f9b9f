"""MoCo v3 checkpoints: the ViT out of ``main_moco.py``'s and ``main_lincls.py``'s files.

Both save a DDP-wrapped model (``module.`` prefix, stripped before this, as
mmengine's ``revise_keys`` does) under ``state_dict``. Pretraining files
(``vit-b-300ep.pth.tar``) hold ``base_encoder.*`` (the ViT, with a projection
MLP as ``head``), ``momentum_encoder.*`` (its moving average) and
``predictor.*``: the base encoder is the ViT, the rest is ignored and
reported. Linear-probe files (``linear-vit-b-300ep.pth.tar``) are a timm ViT
with its classifier; they are recognised by the keys ``main_lincls.py`` saves.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Tuple

import torch

PRETRAINING = 'MoCo v3 pretraining'
LINEAR_PROBE = 'MoCo v3 linear probe'
ENCODER = 'base_encoder.'
#: Top-level keys of ``main_lincls.py``'s checkpoints besides ``state_dict``.
LINEAR_PROBE_KEYS = ('epoch', 'arch', 'best_acc1', 'optimizer')


def is_pretraining(state: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith(ENCODER) for k in state)


def is_linear_probe(checkpoint: Mapping[str, Any]) -> bool:
    return all(k in checkpoint for k in LINEAR_PROBE_KEYS)


def base_encoder(state: Mapping[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """The base encoder's keys without ``base_encoder.``, and the other (ignored) keys."""
    encoder = {k[len(ENCODER):]: v for k, v in state.items() if k.startswith(ENCODER)}
    return encoder, [k for k in state if not k.startswith(ENCODER)]

"""Safe reading of checkpoints, and a file's ViT in mmseg ``VisionTransformer`` keys."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Mapping

import torch

from ..weights import ViTWeights
from ..weights import read_checkpoint as read_weights_file
from ..weights.formats import OPEN_CLIP
from ..weights.mmseg_keys import fold_layer_scale, timm_to_mmseg_vit
from .safe_pickle import allow_mmengine_checkpoints


def read_checkpoint(path: str) -> Dict[str, Any]:
    """``vapt_mm.weights.read_checkpoint`` with mmengine's checkpoint types allowed."""
    allow_mmengine_checkpoints()
    return read_weights_file(path)


def state_dict_of(checkpoint: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
    """The tensors of a checkpoint that may wrap them in state_dict/model/module."""
    for key in ('state_dict', 'model', 'module'):
        if isinstance(checkpoint.get(key), Mapping):
            checkpoint = checkpoint[key]
    return {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}


def mmseg_vit_weights(weights: ViTWeights, path: str) -> ViTWeights:
    """``weights`` in mmseg ``VisionTransformer`` keys; timm's head joins the ignored keys.

    LayerScale is folded into the linears (``fold_layer_scale``); what mmseg's
    ViT has no place for (register tokens, DeiT's distillation token, no class
    token or no position embedding for it) is refused.
    """
    if weights.format == OPEN_CLIP:
        raise ValueError(f'{path} is an {OPEN_CLIP}: load it into a timm CLIP ViT, e.g. '
                         "vit=dict(type='timm', model_name='vit_base_patch16_clip_224', ...).")
    if weights.layout != 'timm':
        return weights
    state = dict(weights.state)
    tokens = {'reg_token': ('register tokens', 'vit_small_patch14_reg4_dinov2'),
              'dist_token': ('a distillation token', 'deit_base_distilled_patch16_224')}
    for key, (what, model_name) in tokens.items():
        if key in state:
            raise ValueError(f"{path} ({weights.description}) has {what}, which mmseg's "
                             'VisionTransformer has no place for; load it into the timm ViT: '
                             f"vit=dict(type='timm', model_name='{model_name}', ...).")
    positions = state['pos_embed'].shape[1] - 1 if 'pos_embed' in state else 0
    if 'cls_token' not in state or math.isqrt(positions) ** 2 != positions:
        raise ValueError(f"{path} ({weights.description}) has no class token with a position "
                         "embedding of its own, which mmseg's VisionTransformer needs; load it "
                         "into the timm ViT: vit=dict(type='timm', model_name=..., "
                         'class_token=..., no_embed_class=...) as the file was trained.')
    head = [k for k in state if k.startswith('head')]
    return dataclasses.replace(weights, state=timm_to_mmseg_vit(fold_layer_scale(state)),
                               layout='mmseg',
                               ignored=weights.ignored + tuple(head))

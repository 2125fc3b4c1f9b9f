"""A weight file's ViT in mmpretrain ``VisionTransformer`` keys."""
from __future__ import annotations

import math
import re
from typing import Dict, Mapping

import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed

from ..weights import ViTWeights
from ..weights.formats import OPEN_CLIP

#: timm block key parts -> mmpretrain's (``TransformerEncoderLayer``).
_TIMM_BLOCK = (('norm1.', 'ln1.'), ('norm2.', 'ln2.'), ('mlp.fc1.', 'ffn.layers.0.0.'),
               ('mlp.fc2.', 'ffn.layers.1.'), ('ls1.gamma', 'attn.gamma1.weight'),
               ('ls2.gamma', 'ffn.gamma2.weight'))
#: mmseg block key parts -> mmpretrain's (mmcv's attention wraps nn.MultiheadAttention).
_MMSEG_BLOCK = (('attn.attn.in_proj_', 'attn.qkv.'), ('attn.attn.out_proj.', 'attn.proj.'))
_TIMM_TOP = (('patch_embed.proj.', 'patch_embed.projection.'), ('norm_pre.', 'pre_norm.'),
             ('norm.', 'ln1.'))


def _rename(key: str, pairs) -> str:
    for old, new in pairs:
        if old in key:
            return key.replace(old, new)
    return key


def timm_to_mmpretrain_vit(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """timm ViT keys -> mmpretrain ``VisionTransformer`` keys (LayerScale kept as
    ``gamma1``/``gamma2``); the classifier ``head`` is left out."""
    converted = {}
    for key, value in state.items():
        if key.startswith('head'):
            continue
        if key.startswith('blocks.'):
            new = 'layers.' + _rename(key[len('blocks.'):], _TIMM_BLOCK)
        else:
            new = next((new + key[len(old):] for old, new in _TIMM_TOP if key.startswith(old)),
                       key)
        converted[new] = value
    return converted


def mmseg_to_mmpretrain_vit(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """mmseg ``VisionTransformer`` keys -> mmpretrain's (mmpretrain keys pass unchanged)."""
    converted = {}
    for key, value in state.items():
        new = _rename(key, _MMSEG_BLOCK)
        converted['pre_norm.' + new[len('pre_ln.'):] if new.startswith('pre_ln.') else new] = value
    return converted


def mmpretrain_vit_state(weights: ViTWeights, model: VisionTransformer,
                         path: str) -> Dict[str, torch.Tensor]:
    """``weights`` (timm or mmseg/mmpretrain layout) in ``model``'s keys, the position
    embeddings resized to its patch grid.

    Raises ValueError for what mmpretrain's ViT has no place for (register or
    distillation tokens, no class token) and for a LayerScale mismatch.
    """
    if weights.format == OPEN_CLIP:
        raise ValueError(f'{path} is an {OPEN_CLIP}: load it into a timm CLIP ViT, e.g. '
                         "vit=dict(type='timm', model_name='vit_base_patch16_clip_224', ...).")
    state = dict(weights.state)
    if weights.layout == 'timm':
        for key, model_name in (('reg_token', 'vit_small_patch14_reg4_dinov2'),
                                ('dist_token', 'deit_base_distilled_patch16_224')):
            if key in state:
                raise ValueError(f"{path} ({weights.description}) has a {key}, which mmpretrain's "
                                 'VisionTransformer has no place for; load it into the timm ViT: '
                                 f"vit=dict(type='timm', model_name='{model_name}').")
        state = timm_to_mmpretrain_vit(state)
    elif weights.layout == 'mmseg':
        state = mmseg_to_mmpretrain_vit(state)
    file_ls = any(re.search(r'\.gamma[12]\.weight$', k) for k in state)
    own_ls = any(re.search(r'\.gamma[12]\.weight$', k) for k in model.state_dict())
    if file_ls != own_ls:
        fix = 'layer_scale_init_value=1e-5' if file_ls else 'layer_scale_init_value=0.'
        raise ValueError(f'{path} ({weights.description}) {"has" if file_ls else "has no"} '
                         f'LayerScale, this ViT {"has" if own_ls else "has none"}: build it with '
                         f'{fix} as the file was trained.')
    pos = state.get('pos_embed')
    if pos is not None and pos.shape != model.pos_embed.shape:
        positions = pos.shape[1] - model.num_extra_tokens
        if 'cls_token' not in state or math.isqrt(positions) ** 2 != positions:
            raise ValueError(f'{path} ({weights.description}) has no class token with a '
                             "position embedding of its own, which mmpretrain's ViT needs; load "
                             "it into the timm ViT: vit=dict(type='timm', model_name=..., "
                             'class_token=..., no_embed_class=...) as the file was trained.')
        side = math.isqrt(positions)
        state['pos_embed'] = resize_pos_embed(pos, (side, side), model.patch_resolution,
                                              model.interpolate_mode, model.num_extra_tokens)
    return state

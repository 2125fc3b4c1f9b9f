"""Load a file's ViT into a model only if it fits: nothing is loaded when it does not."""
from __future__ import annotations

import math
import re
from typing import Dict, List, Mapping

import torch
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn
from torch import nn

from .formats import ACCEPTED, ViTWeights

#: Largest share of ViT parameter elements a pretrained file may leave unloaded.
MAX_MISSING_RATIO = 0.5


def _depth(keys: List[str], block_prefix: str) -> int:
    pattern = re.compile(rf'{re.escape(block_prefix)}(\d+)\.')
    return 1 + max((int(m.group(1)) for k in keys if (m := pattern.match(k))), default=-1)


def _tokens(cls: bool, dist: bool, reg: int) -> str:
    names = ['class'] * cls + ['distillation'] * dist + [f'{reg} register'] * (reg > 0)
    return ' + '.join(names) or 'no'


def timm_vit_state(weights: ViTWeights, model: VisionTransformer,
                   path: str) -> Dict[str, torch.Tensor]:
    """``weights`` for the timm ``model``: prefix tokens checked, then timm's own
    ``checkpoint_filter_fn`` (open_clip keys, patch and position embedding resizing)."""
    if weights.layout == 'mmseg':
        raise ValueError(f"{path} holds mmseg VisionTransformer keys; load it into mmseg's ViT "
                         "(vit=dict(type='VisionTransformer', ...)) or use the timm-key file it "
                         'was converted from.')
    state = weights.state
    if weights.layout == 'timm':
        file = _tokens('cls_token' in state, 'dist_token' in state,
                       state['reg_token'].shape[1] if 'reg_token' in state else 0)
        own = _tokens(model.cls_token is not None, getattr(model, 'dist_token', None) is not None,
                      model.num_reg_tokens)
        if file != own:
            raise ValueError(f'{path} ({weights.description}) has {file} token(s) before the '
                             f'patches, this ViT {own}: use a timm model of the same layout, e.g. '
                             "model_name='vit_small_patch14_reg4_dinov2' for 4 registers or "
                             "'deit_base_distilled_patch16_224' for a distillation token.")
        positions = state['pos_embed'].shape[1] if 'pos_embed' in state else 0
        grid = positions - (0 if model.no_embed_class else model.num_prefix_tokens)
        if positions and math.isqrt(grid) ** 2 != grid:
            raise ValueError(f'{path} has {positions} position embeddings, which are not this '
                             f'ViT\'s {"" if model.no_embed_class else "prefix tokens + "}a square '
                             'grid: build it with no_embed_class as the file was trained '
                             '(True for DINOv2 with registers).')
    return checkpoint_filter_fn(dict(state), model)


def load_checked(model: nn.Module, state: Mapping[str, torch.Tensor], weights: ViTWeights,
                 path: str, block_prefix: str) -> Dict[str, List[str]]:
    """Load ``state`` (converted from ``weights``) into ``model`` after checking that it fits.

    Raises ValueError, with nothing loaded, when the file has another number
    of blocks, would leave more than ``MAX_MISSING_RATIO`` of the parameters
    random, or differs inside the blocks (LayerScale, biases, MLP width).
    Returns the missing keys, the unexpected keys (with ``weights.ignored``)
    and the keys of another shape.
    """
    own = model.state_dict()
    depth, own_depth = _depth(list(state), block_prefix), _depth(list(own), block_prefix)
    if depth and depth != own_depth:
        raise ValueError(f'{path} ({weights.description}) has {depth} blocks, this ViT '
                         f'{own_depth}: build the ViT with {depth} blocks (depth / num_layers) '
                         'or use a file of this ViT.')
    reshaped = sorted(k for k, v in state.items() if k in own and v.shape != own[k].shape)
    usable = {k: v for k, v in state.items() if k in own and k not in reshaped}
    keys = {'missing keys': [k for k in own if k not in usable],
            'unexpected keys': [k for k in state if k not in own] + list(weights.ignored),
            'keys of another shape': reshaped}
    params = dict(model.named_parameters())
    missing = sum(params[k].numel() for k in keys['missing keys'] if k in params)
    total = sum(p.numel() for p in params.values())
    if missing > MAX_MISSING_RATIO * total:
        report = ', '.join(f'{len(v)} {k} {v[:6]}' for k, v in keys.items())
        raise ValueError(f'{path} does not fit this ViT: it would leave {missing / total:.0%} '
                         f'of the ViT parameters random ({report}); use a weights file of '
                         "this ViT (same depth, width and patch size) or set vit= to the "
                         f"file's architecture. The file was read as {weights.description}; "
                         f'accepted formats: {ACCEPTED}.')
    inside = sorted({k for k in [*own, *state] if k.startswith(block_prefix) and k not in usable})
    if inside:
        raise ValueError(f'{path} ({weights.description}) does not fit the blocks of this ViT: '
                         f'{len(inside)} keys {inside[:6]} are missing, extra or of another '
                         "shape; build the ViT as the file's (LayerScale: init_values; qkv_bias, "
                         'mlp_ratio).')
    model.load_state_dict(usable, strict=False)
    return {'missing_keys': keys['missing keys'], 'unexpected_keys': keys['unexpected keys'],
            'reshaped_keys': reshaped}

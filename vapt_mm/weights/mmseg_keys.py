"""timm ViT weights in mmseg ``VisionTransformer`` keys, LayerScale folded into the linears.

Framework-free (torch only): ``vapt_mm.seg.weights`` (loading a file into mmseg's
ViT) and ``vapt_mm.weights.dinov2_onnx`` (writing a converted file) both use it.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Dict, Mapping

import torch


def fold_layer_scale(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """LayerScale folded into ``attn.proj`` and ``mlp.fc2`` (W <- diag(g) W, b <- g b).

    The result has no ``ls*`` keys and loads into timm's model without LayerScale
    (``timm.create_model(..., init_values=0.0)``: create_model drops a ``None``)
    or mmseg's plain ViT; a folded state is returned unchanged.
    """
    folded = dict(state)
    for key in [k for k in state if re.search(r'\.ls[12]\.gamma$', k)]:
        gamma = folded.pop(key)
        linear = key.replace('ls1.gamma', 'attn.proj').replace('ls2.gamma', 'mlp.fc2')
        folded[f'{linear}.weight'] = gamma[:, None] * state[f'{linear}.weight']
        folded[f'{linear}.bias'] = gamma * state[f'{linear}.bias']
    return folded


def timm_to_mmseg_vit(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """timm ViT keys -> mmseg ``VisionTransformer`` keys (mmseg's vit2mmseg.py)."""
    converted = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('head'):
            continue
        new = key
        if key.startswith('norm.'):
            new = key.replace('norm.', 'ln1.')
        elif key.startswith('patch_embed') and 'proj' in key:
            new = key.replace('proj', 'projection')
        elif key.startswith('blocks'):
            if 'norm' in key:
                new = key.replace('norm', 'ln')
            elif 'mlp.fc1' in key:
                new = key.replace('mlp.fc1', 'ffn.layers.0.0')
            elif 'mlp.fc2' in key:
                new = key.replace('mlp.fc2', 'ffn.layers.1')
            elif 'attn.qkv' in key:
                new = key.replace('attn.qkv.', 'attn.attn.in_proj_')
            elif 'attn.proj' in key:
                new = key.replace('attn.proj', 'attn.attn.out_proj')
            new = new.replace('blocks.', 'layers.')
        converted[new] = value
    return converted

"""Files in timm ViT keys and their variants: DeiT, MAE, DINO and DINOv2 (timm or Meta keys).

* MAE pretraining (``mae_pretrain_vit_base.pth``): the decoder (``decoder_*``)
  and ``mask_token`` are ignored;
* DINOv2 in Meta's keys (``dinov2_vits14_pretrain.pth``): ``mask_token`` is
  ignored, ``register_tokens`` are converted by timm's own DINOv2 conversion
  (timm's register models add no position to the class token);
* distilled DeiT: a ``dist_token`` after the class token.
"""
from __future__ import annotations

import re
from typing import Dict, List, Mapping, Tuple

import torch
from timm.models.vision_transformer import _convert_dinov2

TIMM = 'timm ViT'
MAE = 'MAE pretraining'
DEIT_DISTILLED = 'DeiT distilled'
DINOV2 = 'DINOv2'


def is_timm_vit(state: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith('blocks.') for k in state)


def _name(state: Mapping[str, torch.Tensor], decoder: bool) -> str:
    if decoder:
        return MAE
    if 'dist_token' in state:
        return DEIT_DISTILLED
    if 'reg_token' in state or any(re.search(r'\.ls[12]\.gamma$', k) for k in state):
        return DINOV2
    return TIMM


def normalise(state: Mapping[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], List[str], str]:
    """timm keys of ``state``, the keys no ViT forward pass reads, and the variant's name."""
    ignored = [k for k in state if k.startswith('decoder_') or k == 'mask_token']
    decoder = any(k.startswith('decoder_') for k in ignored)
    out = {k: v for k, v in state.items() if k not in ignored}
    if 'register_tokens' in out:
        out = _convert_dinov2(out, None)  # the model argument is unused there
    return out, ignored, _name(out, decoder)

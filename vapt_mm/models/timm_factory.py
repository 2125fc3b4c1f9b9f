"""A timm ViT, wrapped as ``PromptableViT``, from a ``vit=dict(type='timm', ...)`` config."""
from __future__ import annotations

import copy
from typing import Tuple

from .timm_vit import TimmViT


def create_timm_vit(cfg: dict, img_size: Tuple[int, int]) -> TimmViT:
    """``TimmViT`` of ``timm.create_model(cfg['model_name'], **rest)``, without weights.

    Args:
        cfg (dict): ``model_name`` and timm keyword arguments; ``type`` and
            ``checkpoint_path`` are dropped (the backbones load weights
            themselves). Dynamic image size and padding default to on.
        img_size (tuple): Training image (H, W).
    """
    import timm
    from timm.models import is_model_in_modules

    cfg = copy.deepcopy(dict(cfg))
    cfg.pop('type', None)
    cfg.pop('checkpoint_path', None)
    name = cfg.pop('model_name')
    if not is_model_in_modules(name, ['vision_transformer', 'deit']):
        raise TypeError(f'timm model {name!r} is not a plain ViT; VAPT needs a timm '
                        'VisionTransformer (e.g. vit_base_patch16_224, a DeiT or DINOv2).')
    cfg.setdefault('dynamic_img_size', True)
    cfg.setdefault('dynamic_img_pad', True)
    return TimmViT(timm.create_model(name, pretrained=False, num_classes=0, img_size=img_size,
                                     **cfg))

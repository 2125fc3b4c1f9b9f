"""Backbone weight files (any ``vapt_mm.weights`` format) into an open_clip timm ViT trunk."""
from __future__ import annotations

import logging
from typing import Dict, List

from open_clip.timm_model import TimmModel
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from vapt_mm.weights import load_checked, read_vit_weights, timm_vit_state

log = logging.getLogger(__name__)


def load_trunk_weights(model: nn.Module, path: str) -> Dict[str, List[str]]:
    """Load the ViT in ``path`` into ``model.visual.trunk``, resizing position embeddings.

    For ``TimmModel`` image towers whose trunk is a timm ViT (a LiT-style CLIP
    on a DINOv2, MoCo v3, MAE, DeiT or Google ``.npz`` backbone); the tower's
    projection head and the text tower are left as they are. Returns the
    missing, unexpected and reshaped keys; raises, with nothing loaded, if
    the file does not fit the trunk.
    """
    tower = getattr(model, 'visual', None)
    trunk = getattr(tower, 'trunk', None)
    if not isinstance(tower, TimmModel) or not isinstance(trunk, VisionTransformer):
        raise TypeError(f'trunk weights go into an open_clip TimmModel image tower with a timm '
                        f'ViT trunk, not {type(tower).__name__}; for open_clip\'s own towers '
                        'pass a whole open_clip checkpoint as pretrained.')
    weights = read_vit_weights(path)
    keys = load_checked(trunk, timm_vit_state(weights, trunk, path), weights, path, 'blocks.')
    log.info('loaded %s into the image trunk, read as %s; %s', path, weights.description,
             '; '.join(f'{k}: {v}' for k, v in keys.items()))
    return keys

"""Backbone weight files in the layouts people have, read as timm ViT weights (issue #17).

No OpenMMLab or open_clip imports: ``vapt_mm.seg`` and ``vapt_mm.clip`` both use it.
"""
from .files import is_npz, read_checkpoint
from .fit import MAX_MISSING_RATIO, load_checked, timm_vit_state
from .formats import ACCEPTED, FORMATS, ViTWeights, read_vit_weights

__all__ = ['is_npz', 'read_checkpoint', 'MAX_MISSING_RATIO', 'load_checked', 'timm_vit_state',
           'ACCEPTED', 'FORMATS', 'ViTWeights', 'read_vit_weights']

"""mmpretrain integration: the VAPT classification backbone, its weights and runtime hooks."""
from . import datasets, registry  # noqa: F401  (VTAB1k, FGVCJson; seg hooks in mmpretrain's)
from .backbone import PlainViT, VAPTClsBackbone
from .checks import ClsLabelCheckHook
from .mmpretrain_vit import MMPretrainViT

__all__ = ['PlainViT', 'VAPTClsBackbone', 'ClsLabelCheckHook', 'MMPretrainViT']

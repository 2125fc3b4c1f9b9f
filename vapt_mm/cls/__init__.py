"""mmpretrain integration: the VAPT classification backbone, its weights and runtime hooks."""
from . import registry  # noqa: F401  (the seg runtime hooks in mmpretrain's registries)
from .backbone import PlainViT, VAPTClsBackbone
from .checks import ClsLabelCheckHook
from .mmpretrain_vit import MMPretrainViT

__all__ = ['PlainViT', 'VAPTClsBackbone', 'ClsLabelCheckHook', 'MMPretrainViT']

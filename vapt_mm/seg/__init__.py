"""mmsegmentation integration: the VAPT backbone, checkpoint hooks and data helpers."""
from .backbone import VAPTBackbone
from .checkpoint import RNGStateHook, TrainableCheckpointHook
from .checks import CheckedLoadImageFromFile, InvalidLossHook, SegLabelCheckHook
from .data import RandomSubsetDataset
from .mmseg_vit import MMSegViT
from .preemption import PreemptionHook
from .prompt_norms import PromptNormHook
from .safe_pickle import allow_mmengine_checkpoints
from .world_size import WorldSizeHook

allow_mmengine_checkpoints()

__all__ = ['VAPTBackbone', 'TrainableCheckpointHook', 'RandomSubsetDataset', 'MMSegViT',
           'allow_mmengine_checkpoints', 'RNGStateHook', 'InvalidLossHook', 'SegLabelCheckHook',
           'CheckedLoadImageFromFile', 'PromptNormHook', 'PreemptionHook', 'WorldSizeHook']

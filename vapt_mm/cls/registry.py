"""The project's runtime hooks and data wrapper in mmpretrain's registries.

They are mmseg's (``vapt_mm.seg``: trainable-only checkpoints, RNG states,
NaN/inf stop, number of processes, stop signals, prompt norms); a config with
``default_scope='mmpretrain'`` looks them up in mmpretrain's registries.
"""
from mmpretrain.registry import DATASETS, HOOKS

from ..seg import (InvalidLossHook, PreemptionHook, PromptNormHook, RandomSubsetDataset,
                   RNGStateHook, TrainableCheckpointHook, WorldSizeHook)

for _hook in (TrainableCheckpointHook, RNGStateHook, InvalidLossHook, WorldSizeHook,
              PreemptionHook, PromptNormHook):
    HOOKS.register_module(module=_hook)
DATASETS.register_module(module=RandomSubsetDataset)

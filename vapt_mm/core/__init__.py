"""Pure-PyTorch VAPT core: adaptive prompts for any ViT (no OpenMMLab/open_clip imports)."""
from .config import PromptConfig
from .gate import PromptGate, gate_module, gated_prompt_attention, ungate_module
from .gated_mha import GatedMultiheadAttention, gate_multihead_attention
from .generator import PromptGenerator
from .layers import ChannelWiseConv2d, FeatureProjector
from .peft import (ParameterCount, count_parameters, freeze_except_prompts, load_trainable,
                   save_trainable, trainable_state_dict)
from .prompts import LayerPrompts
from .vit import PromptableViT, PromptedViT

__all__ = [
    'PromptConfig', 'PromptGenerator', 'ChannelWiseConv2d', 'FeatureProjector', 'LayerPrompts',
    'PromptableViT', 'PromptedViT', 'ParameterCount', 'count_parameters', 'freeze_except_prompts',
    'load_trainable', 'save_trainable', 'trainable_state_dict', 'PromptGate', 'gate_module',
    'gated_prompt_attention', 'ungate_module', 'GatedMultiheadAttention',
    'gate_multihead_attention',
]

"""Where the prompts look: token maps, attention to the prompts and Grad-CAM of trained runs."""
from .attention import AttentionRecorder, prompt_attention
from .gradcam import grad_cam, patch_map
from .token_maps import position_weights

__all__ = ['AttentionRecorder', 'prompt_attention', 'grad_cam', 'patch_map', 'position_weights']

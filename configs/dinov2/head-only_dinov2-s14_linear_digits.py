# Head-only (linear probe): the full fine-tuning config's mmseg ViT with every parameter
# frozen (frozen_exclude=[]) and no backbone lr_mult; no prompts. The demo's baseline.
_base_ = ['./full-ft_dinov2-s14_linear_digits.py']
model = dict(backbone=dict(frozen_exclude=[]))
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True))

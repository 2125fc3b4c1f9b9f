# Head-only (linear probe): the full fine-tuning config's mmseg ViT with every parameter
# frozen (frozen_exclude=[]) and no backbone lr_mult; no prompts.
_base_ = ['./full-ft.py']
model = dict(backbone=dict(frozen_exclude=[]))
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True))

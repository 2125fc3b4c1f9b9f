# Head-only (linear probe) on the frozen real DINOv2 ViT-S/14: no prompts.
_base_ = ['./_base_dinov2-s14_cls_digits.py']
model = dict(backbone=dict(prompt_cfg=None))
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True))

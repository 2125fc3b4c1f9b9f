# Full fine-tuning of the real DINOv2 ViT-S/14 (backbone lr_mult 0.1), no prompts, the same
# linear head.
_base_ = ['./_base_dinov2-s14_cls_digits.py']
model = dict(backbone=dict(prompt_cfg=None, train_vit=True))
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True, custom_keys={
    'backbone': dict(lr_mult=0.1)}))

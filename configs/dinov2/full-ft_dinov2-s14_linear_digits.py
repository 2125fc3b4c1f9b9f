# Full fine-tuning: mmseg's ViT with the folded DINOv2 ViT-S/14 weights, every parameter
# trainable (backbone lr_mult 0.1), no prompts, the same linear head.
_base_ = ['./_base_dinov2-s14_linear_digits.py']
model = dict(backbone={{_base_.mmseg_backbone}})
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True, custom_keys={
    'backbone': dict(lr_mult=0.1)}))

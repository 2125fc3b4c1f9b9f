# VPT-deep on the frozen real DINOv2 ViT-S/14: N=10 free prompts at every block, linear head.
_base_ = ['./_base_dinov2-s14_cls_digits.py']
model = dict(backbone=dict(prompt_cfg=dict(_delete_=True, method='vpt-deep', num_tokens=10)))

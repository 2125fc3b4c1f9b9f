# VAPT on the frozen real DINOv2 ViT-S/14: N=10 prompts generated from block 1 on, linear head.
_base_ = ['./_base_dinov2-s14_cls_digits.py']

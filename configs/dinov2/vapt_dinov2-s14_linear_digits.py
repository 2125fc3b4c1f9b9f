# VAPT on the frozen real DINOv2 ViT-S/14 (mmseg's ViT, LayerScale folded): N=10 prompts,
# generated from the previous block's patch tokens from block 1 on (the paper's defaults
# otherwise), linear head. The demo's VAPT run.
_base_ = ['./_base_dinov2-s14_linear_digits.py']

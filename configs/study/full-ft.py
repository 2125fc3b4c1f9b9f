# Full fine-tuning: mmseg's ViT with every parameter trainable (backbone lr_mult 0.1),
# no prompts; it reads mmseg-format weights (vit.safetensors converted with
# vapt_mm.weights.mmseg_keys.timm_to_mmseg_vit; the study does it).
_base_ = ['./_base_study.py']
model = dict(backbone=dict(
    _delete_=True, type='VisionTransformer', patch_size=8, embed_dims={{_base_.dims}},
    num_layers=4, num_heads=3, mlp_ratio=4, qkv_bias=True, patch_bias=True, with_cls_token=True,
    drop_path_rate=0.0, norm_cfg=dict(type='LN', eps=1e-6), act_cfg=dict(type='GELU'),
    interpolate_mode='bicubic', img_size=(64, 64), out_indices=(3, ), final_norm=True,
    init_cfg=dict(type='Pretrained', checkpoint='pretrain/tiny-vit/vit_mmseg.pth')))
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True, custom_keys={
    'backbone': dict(lr_mult=0.1)}))

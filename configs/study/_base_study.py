# Sample-efficiency study (issue #10), shared settings: the tiny ViT pretrained on the
# generated source task (tools/pretrain_tiny_vit.py), a *linear* head on its last
# (final-normed) patch tokens, the generated ADE20K-layout target data, 64x64 crops.
# The checkpoint is given at run time (studies/sample_efficiency_seg.py does it):
#   --cfg-options model.backbone.init_cfg.checkpoint=<cache>/vit.safetensors  (prompted)
#   --cfg-options model.backbone.init_cfg.checkpoint=<mmseg-keys copy>.pth    (mmseg ViT)
#
# Optimisation, identical for every method: AdamW, batch 8, linear warm-up (10%) then poly
# decay. Prompt parameters (VPT prompts, VAPT generators/projector) get lr_mult 10 and no
# weight decay, the ratio of this repo's ViT-B configs; full fine-tuning gives the backbone
# lr_mult 0.1. The base lr had the same search for every method: {1e-3, 5e-3, 2.5e-2}
# on 1% and 10% of the data, seeds 0 and 1, 150 iterations (studies/sample_efficiency_seg.py
# --quick --fractions 0.01 0.1 --cfg-options optim_wrapper.optimizer.lr=LR); 2.5e-2 had the
# best mean val mIoU for all four methods (2e-4, tried at 1% seed 0, was far worse for all;
# 2.5e-2 is the grid's top end; val doubles as the
# selection set, a caveat). Prompts then train at 0.25: AdamW steps are scale-free, and the
# paper's code searches SGD prompt learning rates in [0.05, 50] x batch/256 = [1.6e-3, 1.6]
# at batch 8.
_base_ = ['mmseg::_base_/default_runtime.py', '../_base_/vapt_runtime.py',
          '../_base_/datasets/demo_ade20k.py']
crop_size = {{_base_.crop_size}}
dims = 96
data_preprocessor = dict(
    type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=crop_size)
# mmseg VisionTransformer arguments of the pretrained geometry (geometry.json; full-ft.py
# repeats them for the plain mmseg ViT, and head-only.py inherits from it); no
# drop-path (the ViT was pretrained without it, and frozen ViTs must stay deterministic);
# patch_bias=True: timm's patch embedding has a bias, mmseg's default drops it.
vit = dict(type='VisionTransformer', patch_size=8, embed_dims=dims, num_layers=4, num_heads=3,
           mlp_ratio=4, qkv_bias=True, patch_bias=True, with_cls_token=True, drop_path_rate=0.0,
           norm_cfg=dict(type='LN', eps=1e-6), act_cfg=dict(type='GELU'),
           interpolate_mode='bicubic')
norm_cfg = dict(type='BN', requires_grad=True)
# The six classes the generated target set has (ADE20K names; the dataset maps the ADE20K
# labels to 0..5 and ignores the rest): mIoU over them, not over 144 absent classes, where
# every stray prediction of an absent class would add an IoU of 0 to the mean.
classes = ('building', 'sky', 'floor', 'tree', 'person', 'car')
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='VAPTBackbone', vit=vit, out_indices=(3, ), final_norm=True, img_size=crop_size,
        prompt_cfg=dict(method='vapt', num_tokens=8),
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/tiny-vit/vit.safetensors')),
    # Linear probe: no conv before the 1x1 classifier (FCNHead with num_convs=0).
    decode_head=dict(
        type='FCNHead', in_channels=dims, channels=dims, num_convs=0, concat_input=False,
        in_index=0, dropout_ratio=0.1, num_classes=len(classes), norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

data_root = 'data/study_ade20k'
train_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root,
                                                   metainfo=dict(classes=classes)))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
test_dataloader = val_dataloader

max_iters = 300
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2.5e-2, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={
        'backbone.encoder.prompts': dict(lr_mult=10.0, decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=30),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=30, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1,
                    backend_args=dict(backend='atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=0)

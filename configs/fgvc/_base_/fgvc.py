# FGVC on the paper's protocol (configs/_base_/vapt_cls_paper.py) with VPT's JSON splits
# (train.json / val.json / test.json): training on the train split, validation on val (the
# lr x weight-decay search), the test split reported. Images as the official pipeline
# prepares them (src/data/transforms.py): shorter side resized to 256, a random 224 crop and
# a horizontal flip for training, the center 224 crop for evaluation; ImageNet mean and std.
# Each task file sets data_root, num_classes and the schedule in iterations (an epoch is
# ceil(train images / 64) iterations).
_base_ = ['../../_base_/vapt_cls_paper.py']
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', interpolation='bilinear'),
    dict(type='RandomCrop', crop_size=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', interpolation='bilinear'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs')
]
dataset = dict(type='FGVCJson', data_root='data/fgvc/TASK', num_classes=1000)
train_dataloader = dict(
    batch_size={{_base_.batch_size}}, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**dataset, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size={{_base_.batch_size}}, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset, split='val', pipeline=test_pipeline))
test_dataloader = dict(
    batch_size={{_base_.batch_size}}, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset, split='test', pipeline=test_pipeline))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=100, val_interval=100)

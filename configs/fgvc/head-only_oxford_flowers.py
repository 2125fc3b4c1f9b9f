# FGVC oxford_flowers, head-only: base lr 0.001, weight decay 0.0001 (the official
# configs/linear/flowers.yaml); 1020 training images: 16 iterations an epoch.
_base_ = ['./_base_/methods/head-only.py']
task_data = dict(data_root='data/fgvc/OxfordFlower', num_classes=102)
train_dataloader = dict(dataset=task_data)
val_dataloader = dict(dataset=task_data)
test_dataloader = dict(dataset=task_data)
model = dict(head=dict(num_classes=102))
optim_wrapper = dict(optimizer=dict(lr=0.001 * 64 / 256, weight_decay=0.0001))
train_cfg = dict(max_iters=1600, val_interval=1600)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=160),
    dict(type='CosineAnnealingLR', T_max=1440, eta_min=0.0, by_epoch=False,
         begin=160, end=1600)
]
default_hooks = dict(checkpoint=dict(interval=1600))

# FGVC nabirds, head-only: base lr 0.1, weight decay 0.01 (the official
# configs/linear/nabirds.yaml); 21536 training images: 337 iterations an epoch.
_base_ = ['./_base_/methods/head-only.py']
task_data = dict(data_root='data/fgvc/nabirds', image_root='images', num_classes=555)
train_dataloader = dict(dataset=task_data)
val_dataloader = dict(dataset=task_data)
test_dataloader = dict(dataset=task_data)
model = dict(head=dict(num_classes=555))
optim_wrapper = dict(optimizer=dict(lr=0.1 * 64 / 256, weight_decay=0.01))
train_cfg = dict(max_iters=33700, val_interval=33700)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=3370),
    dict(type='CosineAnnealingLR', T_max=30330, eta_min=0.0, by_epoch=False,
         begin=3370, end=33700)
]
default_hooks = dict(checkpoint=dict(interval=33700))

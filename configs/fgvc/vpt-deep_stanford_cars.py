# FGVC stanford_cars, vpt-deep: base lr 10.0, weight decay 0.0001 (the official
# configs/prompt/cars.yaml); 7329 training images: 115 iterations an epoch.
_base_ = ['./_base_/methods/vpt-deep.py']
task_data = dict(data_root='data/fgvc/Stanford-cars', num_classes=196)
train_dataloader = dict(dataset=task_data)
val_dataloader = dict(dataset=task_data)
test_dataloader = dict(dataset=task_data)
model = dict(head=dict(num_classes=196))
optim_wrapper = dict(optimizer=dict(lr=10.0 * 64 / 256, weight_decay=0.0001))
train_cfg = dict(max_iters=11500, val_interval=11500)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1150),
    dict(type='CosineAnnealingLR', T_max=10350, eta_min=0.0, by_epoch=False,
         begin=1150, end=11500)
]
default_hooks = dict(checkpoint=dict(interval=11500))

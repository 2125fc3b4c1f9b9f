# FGVC stanford_cars, full-ft: base lr 0.0375, weight decay 0.001 (the official
# configs/finetune/cars.yaml); 7329 training images: 115 iterations an epoch.
_base_ = ['./_base_/methods/full-ft.py']
task_data = dict(data_root='data/fgvc/Stanford-cars', num_classes=196)
train_dataloader = dict(dataset=task_data)
val_dataloader = dict(dataset=task_data)
test_dataloader = dict(dataset=task_data)
model = dict(head=dict(num_classes=196))
optim_wrapper = dict(optimizer=dict(lr=0.0375 * 64 / 256, weight_decay=0.001))
train_cfg = dict(max_iters=11500, val_interval=11500)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=575),
    dict(type='CosineAnnealingLR', T_max=10925, eta_min=0.0, by_epoch=False,
         begin=575, end=11500)
]
default_hooks = dict(checkpoint=dict(interval=11500))

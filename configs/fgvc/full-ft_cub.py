# FGVC cub, full-ft: base lr 0.00375, weight decay 0.01 (the official
# configs/finetune/cub.yaml); 5394 training images: 85 iterations an epoch.
_base_ = ['./_base_/methods/full-ft.py']
task_data = dict(data_root='data/fgvc/CUB_200_2011', image_root='images', num_classes=200)
train_dataloader = dict(dataset=task_data)
val_dataloader = dict(dataset=task_data)
test_dataloader = dict(dataset=task_data)
model = dict(head=dict(num_classes=200))
optim_wrapper = dict(optimizer=dict(lr=0.00375 * 64 / 256, weight_decay=0.01))
train_cfg = dict(max_iters=8500, val_interval=8500)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=425),
    dict(type='CosineAnnealingLR', T_max=8075, eta_min=0.0, by_epoch=False,
         begin=425, end=8500)
]
default_hooks = dict(checkpoint=dict(interval=8500))

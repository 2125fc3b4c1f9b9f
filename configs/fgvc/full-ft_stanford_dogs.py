# FGVC stanford_dogs, full-ft: base lr 0.00375, weight decay 0.001 (the official
# configs/finetune/dogs.yaml); 10800 training images: 169 iterations an epoch.
_base_ = ['./_base_/methods/full-ft.py']
task_data = dict(data_root='data/fgvc/Stanford-dogs', image_root='Images', num_classes=120)
train_dataloader = dict(dataset=task_data)
val_dataloader = dict(dataset=task_data)
test_dataloader = dict(dataset=task_data)
model = dict(head=dict(num_classes=120))
optim_wrapper = dict(optimizer=dict(lr=0.00375 * 64 / 256, weight_decay=0.001))
train_cfg = dict(max_iters=16900, val_interval=16900)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=845),
    dict(type='CosineAnnealingLR', T_max=16055, eta_min=0.0, by_epoch=False,
         begin=845, end=16900)
]
default_hooks = dict(checkpoint=dict(interval=16900))

# VTAB-1k diabetic_retinopathy, head-only; base lr 0.01, weight decay 1e-4:
# the official code has no config for this method on VTAB (its src/configs/config.py defaults).
_base_ = ['./_base_/methods/head-only.py']
task_data = dict(data_root='data/vtab-1k/diabetic_retinopathy', num_classes=5)
train_dataloader = dict(dataset=task_data)
val_dataloader = dict(dataset=task_data)
test_dataloader = dict(dataset=task_data)
model = dict(head=dict(num_classes=5))
optim_wrapper = dict(optimizer=dict(lr=0.01 * 64 / 256, weight_decay=0.0001))

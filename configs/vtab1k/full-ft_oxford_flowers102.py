# VTAB-1k oxford_flowers102, full-ft; base lr 0.01, weight decay 1e-4:
# the official code has no config for this method on VTAB (its src/configs/config.py defaults).
_base_ = ['./_base_/methods/full-ft.py']
task_data = dict(data_root='data/vtab-1k/oxford_flowers102', num_classes=102)
train_dataloader = dict(dataset=task_data)
val_dataloader = dict(dataset=task_data)
test_dataloader = dict(dataset=task_data)
model = dict(head=dict(num_classes=102))
optim_wrapper = dict(optimizer=dict(lr=0.01 * 64 / 256, weight_decay=0.0001))

# VTAB-1k oxford_flowers102, vapt; base lr 0.01, weight decay 0.001: the official
# configs/prompt/natural/flowers102.yaml.
_base_ = ['./_base_/methods/vapt.py']
task_data = dict(data_root='data/vtab-1k/oxford_flowers102', num_classes=102)
train_dataloader = dict(dataset=task_data)
val_dataloader = dict(dataset=task_data)
test_dataloader = dict(dataset=task_data)
model = dict(head=dict(num_classes=102))
optim_wrapper = dict(optimizer=dict(lr=0.01 * 64 / 256, weight_decay=0.001))

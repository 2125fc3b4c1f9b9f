# VTAB-1k smallnorb_ele, vapt; base lr 0.01, weight decay 0.001: the official
# configs/prompt/structured/smallnorb_elevation.yaml.
_base_ = ['./_base_/methods/vapt.py']
task_data = dict(data_root='data/vtab-1k/smallnorb_ele', num_classes=9)
train_dataloader = dict(dataset=task_data)
val_dataloader = dict(dataset=task_data)
test_dataloader = dict(dataset=task_data)
model = dict(head=dict(num_classes=9))
optim_wrapper = dict(optimizer=dict(lr=0.01 * 64 / 256, weight_decay=0.001))

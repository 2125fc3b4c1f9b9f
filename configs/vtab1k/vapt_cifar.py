# VTAB-1k cifar, vapt; base lr 2.5, weight decay 0.01: the official
# configs/prompt/natural/cifar100.yaml.
_base_ = ['./_base_/methods/vapt.py']
task_data = dict(data_root='data/vtab-1k/cifar', num_classes=100)
train_dataloader = dict(dataset=task_data)
val_dataloader = dict(dataset=task_data)
test_dataloader = dict(dataset=task_data)
model = dict(head=dict(num_classes=100))
optim_wrapper = dict(optimizer=dict(lr=2.5 * 64 / 256, weight_decay=0.01))

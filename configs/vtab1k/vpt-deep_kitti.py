# VTAB-1k kitti, vpt-deep; base lr 0.01, weight decay 0.001: the official
# configs/prompt/structured/kitti.yaml.
# 4 classes, as VTAB's closest_vehicle_distance task has them (the official
# yaml sets NUMBER_CLASSES 196).
_base_ = ['./_base_/methods/vpt-deep.py']
task_data = dict(data_root='data/vtab-1k/kitti', num_classes=4)
train_dataloader = dict(dataset=task_data)
val_dataloader = dict(dataset=task_data)
test_dataloader = dict(dataset=task_data)
model = dict(head=dict(num_classes=4))
optim_wrapper = dict(optimizer=dict(lr=0.01 * 64 / 256, weight_decay=0.001))

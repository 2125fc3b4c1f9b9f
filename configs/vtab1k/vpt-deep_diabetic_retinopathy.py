# VTAB-1k diabetic_retinopathy, vpt-deep; base lr 0.01, weight decay 0.001: the official
# configs/prompt/specialized/retinopathy.yaml.
_base_ = ['./_base_/methods/vpt-deep.py']
task_data = dict(data_root='data/vtab-1k/diabetic_retinopathy', num_classes=5)
train_dataloader = dict(dataset=task_data)
val_dataloader = dict(dataset=task_data)
test_dataloader = dict(dataset=task_data)
model = dict(head=dict(num_classes=5))
optim_wrapper = dict(optimizer=dict(lr=0.01 * 64 / 256, weight_decay=0.001))

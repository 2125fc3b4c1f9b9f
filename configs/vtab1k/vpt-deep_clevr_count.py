# VTAB-1k clevr_count, vpt-deep; base lr 0.01, weight decay 0.001: the official
# configs/prompt/structured/clevr_count.yaml.
_base_ = ['./_base_/methods/vpt-deep.py']
task_data = dict(data_root='data/vtab-1k/clevr_count', num_classes=8)
train_dataloader = dict(dataset=task_data)
val_dataloader = dict(dataset=task_data)
test_dataloader = dict(dataset=task_data)
model = dict(head=dict(num_classes=8))
optim_wrapper = dict(optimizer=dict(lr=0.01 * 64 / 256, weight_decay=0.001))

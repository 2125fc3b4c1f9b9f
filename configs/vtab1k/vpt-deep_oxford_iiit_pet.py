# VTAB-1k oxford_iiit_pet, vpt-deep; base lr 0.01, weight decay 0.001: the official
# configs/prompt/natural/pets.yaml.
_base_ = ['./_base_/methods/vpt-deep.py']
task_data = dict(data_root='data/vtab-1k/oxford_iiit_pet', num_classes=37)
train_dataloader = dict(dataset=task_data)
val_dataloader = dict(dataset=task_data)
test_dataloader = dict(dataset=task_data)
model = dict(head=dict(num_classes=37))
optim_wrapper = dict(optimizer=dict(lr=0.01 * 64 / 256, weight_decay=0.001))

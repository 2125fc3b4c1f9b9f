# Full fine-tuning: the ViT without prompts, every weight trained (in train mode: its dropout
# and drop-path as configured). The official code has no VTAB fine-tuning config; its FGVC ones
# (configs/finetune/*.yaml) use AdamW and 5 warm-up epochs, taken over here with
# src/configs/config.py's default base lr 0.01 and weight decay 1e-4 (search them per task).
_base_ = ['../vtab1k.py']
model = dict(backbone=dict(prompt_cfg=None, train_vit=True))
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=0.01 * 64 / 256,
                                    weight_decay=1e-4))
param_scheduler = [  # 5 warm-up epochs of 16 iterations, cosine to iteration 1,600
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=80),
    dict(type='CosineAnnealingLR', T_max=1520, eta_min=0.0, by_epoch=False, begin=80, end=1600)
]

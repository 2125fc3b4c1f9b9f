# Full fine-tuning: the ViT without prompts, every weight trained (in train mode: its dropout
# and drop-path as configured); AdamW and 5 warm-up epochs as the official
# configs/base-finetune.yaml (each task file sets the schedule).
_base_ = ['../fgvc.py']
model = dict(backbone=dict(prompt_cfg=None, train_vit=True))
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=0.01 * 64 / 256,
                                    weight_decay=1e-4))

# VAPT: N=10 adaptive prompts (the official README's example; the paper's per-task N are a
# search), the frozen ViT, the paper's generator (kernel 2, projector width 8, dropout 0.1).
_base_ = ['../vtab1k.py']
model = dict(backbone=dict(prompt_cfg=dict(method='vapt', num_tokens=10)))

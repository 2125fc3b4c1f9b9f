# Head-only (linear probe): the frozen ViT without prompts; only the linear head trains.
_base_ = ['../fgvc.py']
model = dict(backbone=dict(prompt_cfg=None))

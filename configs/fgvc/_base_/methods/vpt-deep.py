# VPT-deep: N=10 free prompts at every block of the frozen ViT.
_base_ = ['../fgvc.py']
model = dict(backbone=dict(prompt_cfg=dict(_delete_=True, method='vpt-deep', num_tokens=10)))

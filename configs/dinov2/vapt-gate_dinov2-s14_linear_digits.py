# VAPT with a zero-initialised prompt gate per block and head (PromptConfig.prompt_gate, off
# by default; not in the paper): the class and patch tokens' attention to the prompts is
# scaled by a learnable gate that starts at 0, so training starts exactly from the frozen
# DINOv2 (and the linear probe) and the network is continuous in the generators.
_base_ = ['./vapt_dinov2-s14_linear_digits.py']
model = dict(backbone=dict(prompt_cfg=dict(prompt_gate='head')))

# VAPT with a free offset prompt per generated layer (PromptConfig.generated_offset, off by
# default; not in the paper): an (N, C) prompt added to the generated prompts of each layer
# from block 1 on, zero at initialisation, so training starts exactly as plain VAPT. The
# generated prompts cannot otherwise hold a constant direction (the token map's bias is one
# scalar per prompt; the projector has rank h), which VPT-deep's free prompts can.
_base_ = ['./vapt_dinov2-s14_linear_digits.py']
model = dict(backbone=dict(prompt_cfg=dict(generated_offset=True)))

# VAPT with the free offset prompt initialised as VPT-deep's prompts (generated_offset=True,
# offset_init='vpt'; not in the paper) and the generators and projector at 0.1x the prompts'
# lr: the longest matching custom key wins in mmengine, so these two keys override
# 'backbone.encoder.prompts' (lr_mult=1.0 in the base) for the generators alone.
_base_ = ['./vapt_dinov2-s14_linear_digits.py']
model = dict(backbone=dict(prompt_cfg=dict(generated_offset=True, offset_init='vpt')))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'backbone.encoder.prompts.generators': dict(lr_mult=0.1, decay_mult=0.0),
    'backbone.encoder.prompts.projectors': dict(lr_mult=0.1, decay_mult=0.0)}))

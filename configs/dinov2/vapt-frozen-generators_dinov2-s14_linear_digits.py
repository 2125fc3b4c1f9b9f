# A control, not a method: VAPT with its generators and projector frozen at their
# initialisation (lr_mult 0). The zero-initialised token maps then generate zero prompts
# at blocks 1..11, so only the static prompts of block 0 and the head train: what the
# inserted prompt tokens alone do to the frozen backbone, without the adaptive part.
_base_ = ['./vapt_dinov2-s14_linear_digits.py']
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'backbone.encoder.prompts.generators': dict(lr_mult=0.0, decay_mult=0.0),
    'backbone.encoder.prompts.projectors': dict(lr_mult=0.0, decay_mult=0.0)}))

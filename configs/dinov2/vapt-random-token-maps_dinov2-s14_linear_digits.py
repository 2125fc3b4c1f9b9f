# VAPT with random token maps (PromptConfig.token_map_init_std, off by default; not in the
# paper): the token-wise maps' weights start N(0, 0.02^2) instead of zeros. From zeros the
# N generated prompts of a layer start equal, get equal gradients and stay equal but for
# dropout (tests/test_core.py), so the paper's initialisation generates one prompt N times.
_base_ = ['./vapt_dinov2-s14_linear_digits.py']
model = dict(backbone=dict(prompt_cfg=dict(token_map_init_std=0.02)))

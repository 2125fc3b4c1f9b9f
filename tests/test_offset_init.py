"""The generated-offset prompt's VPT initialisation and the generators' lr multiplier
(retrieval optimizer groups; mmengine's custom_keys for seg and cls configs)."""
import math

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from open_clip_train.scheduler import cosine_lr
from torch import nn

from clip_tiny import tiny_clip
from conftest import tiny_timm_vit
from seg_helpers import tiny_mmseg_vit
from test_retrieval_train import make_setup, train
from vapt_mm.clip import apply_vapt
from vapt_mm.clip.checkpoint import load_checkpoint, rng_state, save_checkpoint
from vapt_mm.clip.optim import param_groups, scaled_schedule
from vapt_mm.core import PromptConfig, PromptedViT, freeze_except_prompts
from vapt_mm.models.timm_vit import TimmViT
from vapt_mm.seg import VAPTBackbone


def prompts(seed=0, **options):
    torch.manual_seed(seed)
    cfg = PromptConfig(method='vapt', num_tokens=4, generated_offset=True, **options)
    return PromptedViT(TimmViT(tiny_timm_vit(depth=3)), cfg, image_size=(32, 32)).prompts


def test_vpt_offset_init_draws_like_the_static_prompts():
    bound = math.sqrt(6.0 / (3 * 8 * 8 + 32))
    vpt, zeros = prompts(offset_init='vpt'), prompts()
    assert vpt.offset.shape == (2, 4, 32)
    assert vpt.offset.abs().max() <= bound
    assert vpt.offset.abs().max() > 0.9 * bound and vpt.offset.std() > 0.5 * bound / math.sqrt(3)
    assert not torch.equal(vpt.offset[0], vpt.offset[1])
    assert not zeros.offset.any()
    # drawn after every other parameter: those start exactly as with zero offsets
    other = {k: v for k, v in zeros.state_dict().items() if k != 'offset'}
    assert all(torch.equal(vpt.state_dict()[k], v) for k, v in other.items())


def test_offset_options_are_validated():
    with pytest.raises(ValueError, match='generated_offset=True'):
        PromptConfig(offset_init='vpt')
    with pytest.raises(ValueError, match='offset_init'):
        PromptConfig(generated_offset=True, offset_init='normal')
    with pytest.raises(ValueError, match='only method "vapt"'):
        PromptConfig(method='vpt-deep', generated_offset=True, offset_init='vpt')


def test_retrieval_optimizer_groups_carry_the_generator_lr():
    model = apply_vapt(tiny_clip(), method='vapt', num_tokens=4, generated_offset=True)
    prompt_module = model.visual.prompted.prompts
    generated = {id(p) for p in [*prompt_module.generators.parameters(),
                                 *prompt_module.projectors.parameters()]}
    groups = param_groups(model, weight_decay=0.1, generator_lr_mult=0.1)
    optimizer = torch.optim.AdamW(groups, lr=1e-3)
    schedule = scaled_schedule(optimizer, cosine_lr(optimizer, 1e-3, 2, 10))
    assert schedule(5) == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 3 / 8)))
    base = schedule(2)
    assert base == pytest.approx(1e-3)
    seen = set()
    for group in optimizer.param_groups:
        ids = {id(p) for p in group['params']}
        if not ids:  # the vector group of the two of before, empty here
            continue
        seen |= ids
        assert ids <= generated or not ids & generated
        assert group['lr'] == pytest.approx(base * (0.1 if ids <= generated else 1.0))
        assert group['weight_decay'] == (0.1 if group['params'][0].ndim >= 2 else 0.0)
    assert seen == {id(p) for p in model.parameters() if p.requires_grad}
    assert generated <= seen and prompt_module.static.requires_grad


def test_retrieval_groups_without_multiplier_are_the_two_of_before():
    model = apply_vapt(tiny_clip(), method='vapt', num_tokens=4)
    groups = param_groups(model, weight_decay=0.1)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert [g['params'] for g in groups] == [[p for p in trainable if p.ndim >= 2],
                                             [p for p in trainable if p.ndim < 2]]
    with pytest.raises(ValueError, match='method "vapt"'):
        param_groups(apply_vapt(tiny_clip(), method='vpt-deep'), 0.1, generator_lr_mult=0.1)


@pytest.mark.parametrize('resume_mult', [1.0, 0.5], ids=['other groups', 'other multiplier'])
def test_resume_with_another_generator_lr_mult_is_refused(tmp_path, resume_mult):
    def model_and_optimizer(mult: float):
        torch.manual_seed(0)
        model = apply_vapt(tiny_clip(), method='vapt', num_tokens=4)
        return model, torch.optim.AdamW(param_groups(model, 0.1, generator_lr_mult=mult), lr=1e-3)

    path = str(tmp_path / 'checkpoint.pt')
    save_checkpoint(path, *model_and_optimizer(0.1), None, 3, [rng_state()])
    load_checkpoint(path, *model_and_optimizer(0.1), None)
    with pytest.raises(ValueError, match='--generator-lr-mult it was trained with'):
        load_checkpoint(path, *model_and_optimizer(resume_mult), None)


def test_mmengine_custom_keys_give_the_generators_their_lr():
    """The key of seg and cls configs (both backbones hold ``encoder.prompts``)."""
    model = nn.Module()
    torch.manual_seed(0)
    model.backbone = VAPTBackbone(vit=tiny_mmseg_vit(), prompt_cfg=dict(method='vapt'),
                                  out_indices=(3,), img_size=(32, 32))
    freeze_except_prompts(model)
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
        paramwise_cfg=dict(custom_keys={
            'backbone.encoder.prompts': dict(lr_mult=10.0, decay_mult=0.0),
            'backbone.encoder.prompts.generators': dict(lr_mult=1.0, decay_mult=0.0),
            'backbone.encoder.prompts.projectors': dict(lr_mult=1.0, decay_mult=0.0)})))
    names = {id(p): n for n, p in model.named_parameters()}
    lrs = {names[id(p)]: g['lr'] for g in wrapper.optimizer.param_groups for p in g['params']
           if p.requires_grad}
    assert lrs['backbone.encoder.prompts.static'] == pytest.approx(1e-2)
    generator_lrs = {n: lr for n, lr in lrs.items()
                     if '.generators.' in n or '.projectors.' in n}
    assert len(generator_lrs) >= 3
    assert all(lr == pytest.approx(1e-3) for lr in generator_lrs.values())


def test_retrieval_tool_applies_generator_lr_mult(tmp_path):
    root, data, base = make_setup(tmp_path)
    train((root, data, base), 'run', '--epochs', '1', '--lr', '1e-3', '--warmup', '1',
          '--generator-lr-mult', '0.25', '--prompt', 'generated_offset=true',
          'offset_init="vpt"', 'prompt_gate="head"')
    state = torch.load(root / 'run' / 'checkpoint.pt', weights_only=True)
    groups = [g for g in state['optimizer']['param_groups'] if g['params']]
    mults = sorted({g['lr_mult'] for g in groups})
    assert mults == [0.25, 1.0]
    lrs = {g['lr_mult']: g['lr'] for g in groups}
    assert lrs[0.25] == pytest.approx(0.25 * lrs[1.0]) and lrs[1.0] > 0
    assert {'visual.prompted.prompts.gate', 'visual.prompted.prompts.offset'} <= set(
        state['trainable'])

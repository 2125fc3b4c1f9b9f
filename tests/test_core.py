"""The pure-PyTorch VAPT core: shapes, initialisation, gradients, training, I/O."""
import json

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

from conftest import tiny_timm_vit
from vapt_mm.core import (LayerPrompts, PromptConfig, PromptedViT, count_parameters,
                          freeze_except_prompts, load_trainable, save_trainable)
from vapt_mm.models.timm_vit import TimmViT


def prompted(method='vapt', depth=3, num_tokens=4, reg_tokens=0, **options) -> PromptedViT:
    torch.manual_seed(0)
    vit = TimmViT(tiny_timm_vit(depth=depth, reg_tokens=reg_tokens))
    model = PromptedViT(vit, PromptConfig(method=method, num_tokens=num_tokens, **options),
                        image_size=(32, 32))
    freeze_except_prompts(model)
    return model


@pytest.mark.parametrize('num_tokens', [1, 4, 10])
@pytest.mark.parametrize('size', [(32, 32), (48, 40), (16, 24)])
@pytest.mark.parametrize('reg_tokens', [0, 2])
def test_output_has_plain_token_layout(num_tokens, size, reg_tokens):
    model = prompted(num_tokens=num_tokens, reg_tokens=reg_tokens).eval()
    images = torch.randn(2, 3, *size)
    plain = model.vit.model.forward_features(images)
    out = model(images)
    assert out.shape == plain.shape == (2, 1 + reg_tokens + size[0] // 8 * size[1] // 8, 32)
    features, grid = model.forward_features(images, out_indices=[0, 2])
    assert grid == (size[0] // 8, size[1] // 8)
    assert [f.shape for f in features] == [plain.shape, plain.shape]


@pytest.mark.parametrize('grid', [(4, 4), (6, 5), (2, 3)])
def test_generated_prompts_are_zero_at_init(grid):
    model = prompted(depth=4).train()  # dropout on: zero must hold regardless
    patches = torch.randn(3, grid[0] * grid[1], 32)
    for layer in (1, 2, 3):
        prompts = model.prompts(layer, patches, grid)
        assert prompts.shape == (3, 4, 32)
        assert torch.equal(prompts, torch.zeros_like(prompts))
    assert model.prompts(0, patches, grid).abs().sum() > 0


def test_prompts_depend_on_input_once_token_map_is_nonzero():
    model = prompted().eval()
    torch.nn.init.normal_(model.prompts.generators[0].token_map.weight)
    a, b = torch.randn(2, 1, 16, 32).unbind(0)
    pa, pb = model.prompts(1, a, (4, 4)), model.prompts(1, b, (4, 4))
    assert not torch.allclose(pa, pb)
    assert torch.equal(model.prompts(1, a, (4, 4)), pa)


def test_reference_grid_is_not_resampled_and_other_grids_are():
    model = prompted().eval()
    gen = model.prompts.generators[0]
    torch.nn.init.normal_(gen.token_map.weight)
    patches = torch.randn(2, 16, 32)
    x = gen.norm(patches).transpose(1, 2).reshape(2, 32, 4, 4)
    expected = gen.token_map(gen.conv(x).flatten(2)).transpose(1, 2)
    assert torch.equal(gen.forward_by_operator(patches, (4, 4)), expected)
    large = torch.randn(2, 48, 32)
    y = gen.norm(large).transpose(1, 2).reshape(2, 32, 8, 6)
    y = F.interpolate(y, size=(4, 4), mode='bilinear', align_corners=False, antialias=True)
    resampled = gen.token_map(gen.conv(y).flatten(2)).transpose(1, 2)
    assert torch.equal(gen.forward_by_operator(large, (8, 6)), resampled)
    assert gen(torch.randn(2, 6, 32), (2, 3)).shape == (2, 4, 32)


def test_gradients_reach_exactly_the_trainable_parameters():
    model = prompted(depth=4).train()
    for generator in model.prompts.generators:
        torch.nn.init.normal_(generator.token_map.weight)
    model(torch.randn(2, 3, 32, 32)).square().mean().backward()
    for name, param in model.named_parameters():
        if name.startswith('prompts.'):
            assert param.requires_grad and param.grad is not None, name
            assert param.grad.abs().sum() > 0, name
        else:
            assert not param.requires_grad and param.grad is None, name


def test_gradient_checkpointing_gives_the_same_outputs_and_gradients():
    model = prompted(depth=4).train()
    for generator in model.prompts.generators:
        torch.nn.init.normal_(generator.token_map.weight)
    images = torch.randn(2, 3, 32, 32)
    results = []
    for with_cp in (False, True):
        model.set_grad_checkpointing(with_cp)
        model.zero_grad()
        torch.manual_seed(0)  # the same dropout masks in the prompt generators
        output = model(images)
        output.square().mean().backward()
        results.append((output.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                                          if p.grad is not None}))
    (plain, plain_grads), (cp, cp_grads) = results
    assert torch.allclose(cp, plain, atol=1e-6) and plain_grads.keys() == cp_grads.keys()
    assert all(torch.allclose(cp_grads[n], g, atol=1e-6) for n, g in plain_grads.items())
    stored = []
    for with_cp in (False, True):  # fewer tensors kept for the backward pass
        model.set_grad_checkpointing(with_cp)
        with torch.autograd.graph.saved_tensors_hooks(lambda t: stored.append(t) or t,
                                                      lambda t: t):
            model(images)
        stored.append(None)
    split = stored.index(None)
    assert len(stored) - split - 1 < split / 2


def test_backbone_stays_in_eval_mode_while_prompts_train():
    model = prompted().train()
    assert model.prompts.training and not model.vit.training
    assert not any(m.training for m in model.vit.modules())
    model = PromptedViT(TimmViT(tiny_timm_vit()), PromptConfig(), (32, 32), backbone_eval=False)
    assert model.train().vit.training


@pytest.mark.parametrize('method', ['vapt', 'vpt-deep', 'vpt-shallow'])
def test_each_method_trains_a_tiny_vit_with_falling_loss(method):
    torch.manual_seed(0)
    model = prompted(method=method)
    head = torch.nn.Linear(32, 2)
    images = torch.randn(16, 3, 32, 32)
    labels = (images[:, 0, :16].mean((1, 2)) > images[:, 0, 16:].mean((1, 2))).long()
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    losses = []
    model.train()
    for _ in range(50):
        loss = F.cross_entropy(head(model(images)[:, 0]), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5


def test_vit_b16_parameter_count_matches_the_formula():
    cfg = PromptConfig(num_tokens=10, kernel_size=2, hidden_dim=8, static_layers=1,
                       ref_grid=(14, 14))
    prompts = LayerPrompts(cfg, dim=768, depth=12, patch_size=(16, 16))
    count = sum(p.numel() for p in prompts.parameters())
    n, c, h, k, L, H, W = 10, 768, 8, 2, 12, 14, 14
    per_layer = 2 * c + k * k + (H - k + 1) * (W - k + 1) * n + n
    assert count == n * c + 2 * c * h + (L - 1) * per_layer
    assert count == 55_608


def test_parameter_count_options():
    cfg = PromptConfig(num_tokens=10, ref_grid=(14, 14))
    vpt = LayerPrompts(PromptConfig(method='vpt-deep', num_tokens=10), 768, 12, (16, 16))
    assert sum(p.numel() for p in vpt.parameters()) == 12 * 10 * 768
    per_layer = LayerPrompts(PromptConfig(num_tokens=10, ref_grid=(14, 14), shared_kernel=False,
                                          shared_projector=False), 768, 12, (16, 16))
    base = sum(p.numel() for p in LayerPrompts(cfg, 768, 12, (16, 16)).parameters())
    extra = 11 * (768 - 1) * 4 + 10 * 2 * 768 * 8
    assert sum(p.numel() for p in per_layer.parameters()) == base + extra


def test_count_parameters_reports_trainable_fraction():
    model = prompted()
    report = count_parameters(model)
    assert report.trainable == sum(p.numel() for p in model.prompts.parameters())
    assert report.total == report.trainable + sum(p.numel() for p in model.vit.parameters())
    assert f'{report.trainable:,}' in str(report)


def test_freeze_extra_patterns_and_typos():
    model = torch.nn.ModuleDict({'backbone': prompted(), 'head': torch.nn.Linear(32, 2)})
    names = freeze_except_prompts(model, extra=['head.*'])
    assert 'head.weight' in names and 'backbone.prompts.static' in names
    assert not any(n.startswith('backbone.vit') for n in names)
    with pytest.raises(ValueError, match=r"\['haed\.\*'\] match no parameter"):
        freeze_except_prompts(model, extra=['haed.*'])


def test_save_load_round_trip_is_bit_exact(tmp_path):
    source = prompted()
    for p in source.prompts.parameters():
        torch.nn.init.normal_(p)
    path = str(tmp_path / 'prompts.safetensors')
    save_trainable(source, path, metadata={'note': 'x'})
    target = prompted()
    meta = load_trainable(target, path)
    assert meta['note'] == 'x'
    for (name, a), (_, b) in zip(source.state_dict().items(), target.state_dict().items()):
        assert torch.equal(a, b), name
    images = torch.randn(1, 3, 32, 32)
    assert torch.equal(source.eval()(images), target.eval()(images))


@pytest.mark.parametrize('other, message', [
    (dict(num_tokens=5), r'prompt option num_tokens: file 4 vs model 5'),
    (dict(method='vpt-deep'), r"prompt option method: file 'vapt' vs model 'vpt-deep'"),
    (dict(depth=4), r'missing tensors'),
    (dict(hidden_dim=16), r'prompt option hidden_dim: file 8 vs model 16'),
])
def test_load_refuses_a_file_for_another_model(tmp_path, other, message):
    path = str(tmp_path / 'prompts.safetensors')
    save_trainable(prompted(), path)
    with pytest.raises(ValueError, match=message):
        load_trainable(prompted(**other), path)


def test_load_refuses_another_width(tmp_path):
    path = str(tmp_path / 'prompts.safetensors')
    save_trainable(prompted(), path)
    model = PromptedViT(TimmViT(tiny_timm_vit(dim=48)), PromptConfig(num_tokens=4), (32, 32))
    freeze_except_prompts(model)
    message = r'prompts.static: file \(1, 4, 32\) vs model \(1, 4, 48\)'
    with pytest.raises(ValueError, match=message):
        load_trainable(model, path)


@pytest.mark.parametrize('build, message', [
    (lambda: PromptConfig.from_dict({'num_token': 3}),
     r"unknown prompt option\(s\) \['num_token'\]"),
    (lambda: PromptConfig(num_tokens=0), 'num_tokens must be a positive integer'),
    (lambda: PromptConfig(method='vpt'), "prompt method 'vpt' is unknown"),
    (lambda: prompted(kernel_size=5), r'kernel_size=5 \(padding=0\) is larger than the patch grid'),
    (lambda: PromptedViT(TimmViT(tiny_timm_vit()), PromptConfig(), image_size=(30, 32)),
     r'image size \(30, 32\) is not divisible by the patch size \(8, 8\)'),
    (lambda: prompted(static_layers=3), 'static_layers=3 leaves no adaptive layer'),
    (lambda: PromptConfig(method='vpt-deep', generated_offset=True),
     'generated_offset adds to generated prompts, which only method "vapt" has'),
    (lambda: PromptConfig(token_map_init_std=-0.1), 'token_map_init_std must be >= 0'),
    (lambda: PromptConfig(method='vpt-deep', token_map_init_std=0.02),
     'token_map_init_std initialises the token maps, which only method "vapt" has'),
    (lambda: PromptedViT(torch.nn.Linear(2, 2), PromptConfig()),
     'does not implement PromptableViT'),
])
def test_bad_options_raise_clear_errors(build, message):
    with pytest.raises((ValueError, KeyError, TypeError), match=message):
        build()


def test_generated_offset_starts_bit_exact_then_trains_and_round_trips(tmp_path):
    paper, offset = prompted(depth=4), prompted(depth=4, generated_offset=True)
    assert offset.prompts.offset.shape == (3, 4, 32) and not offset.prompts.offset.any()
    assert paper.prompts.offset is None and 'prompts.offset' not in paper.state_dict()
    images = torch.randn(2, 3, 32, 32)
    for mode in (False, True):  # eval, and train with the same dropout masks
        torch.manual_seed(1)
        a = paper.train(mode)(images)
        torch.manual_seed(1)
        b = offset.train(mode)(images)
        assert torch.equal(a, b)
    offset.train()(images).pow(2).mean().backward()
    assert offset.prompts.offset.grad.abs().sum() > 0  # it trains
    with torch.no_grad():
        offset.prompts.offset.normal_()
    path = str(tmp_path / 'offset.safetensors')
    save_trainable(offset, path)
    target = prompted(depth=4, generated_offset=True)
    load_trainable(target, path)
    assert torch.equal(target.prompts.offset, offset.prompts.offset)
    assert torch.equal(target.eval()(images), offset.eval()(images))
    with pytest.raises(ValueError, match='prompt option generated_offset: file True vs model '
                                         'False'):
        load_trainable(prompted(depth=4), path)


def generated_prompts_after_training(steps: int, **options) -> torch.Tensor:
    """The generated prompts (layers 1-3, N=4) of one image after ``steps`` AdamW steps."""
    dropout_off = dict(prompt_dropout=0.0, conv_dropout=0.0, projector_dropout=0.0)
    model = prompted(depth=4, **dropout_off, **options).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    images = torch.randn(4, 3, 32, 32)
    for _ in range(steps):
        optimizer.zero_grad()
        model(images)[:, 0].sum().backward()  # a class-token objective
        optimizer.step()
    patches = torch.randn(1, 16, 32)
    return torch.stack([model.prompts(layer, patches, (4, 4))[0] for layer in (1, 2, 3)])


def test_zero_token_maps_keep_a_layers_generated_prompts_equal_and_random_ones_do_not():
    """The paper's zero token maps: the N prompts of a layer start equal, get equal
    gradients and stay equal (dropout off); ``token_map_init_std`` breaks the tie."""
    paper = generated_prompts_after_training(5)
    assert paper.abs().amax() > 1e-3  # they trained
    assert torch.allclose(paper, paper[:, :1].expand_as(paper), atol=1e-6)
    for steps in (0, 5):
        noised = generated_prompts_after_training(steps, token_map_init_std=0.02)
        spread = (noised - noised.mean(1, keepdim=True)).abs().amax(dim=(1, 2))
        assert (spread > 1e-3).all(), (steps, spread)


def test_files_saved_before_the_offset_option_still_load(tmp_path):
    source = prompted()
    path = str(tmp_path / 'old.safetensors')
    save_trainable(source, path)
    with safe_open(path, framework='pt') as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    config = json.loads(meta['prompt_config'])
    del config['generated_offset']  # as written by vapt_mm before the option existed
    save_file(tensors, path, metadata={**meta, 'prompt_config': json.dumps(config)})
    target = prompted()
    load_trainable(target, path)
    assert torch.equal(target.prompts.static, source.prompts.static)

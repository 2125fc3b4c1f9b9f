"""The zero-initialised prompt gate: identity at g = 0 in all four ViT families, its math,
gradients, checkpointing, prompt files and errors."""
import pytest
import timm
import torch
import torch.nn.functional as F
from mmpretrain.models import VisionTransformer as MMPretrainVisionTransformer
from mmpretrain.models.utils import MultiheadAttention as MMPretrainAttention
from mmseg.models.backbones import VisionTransformer as MMSegVisionTransformer
from timm.layers import Attention as TimmAttention
from torch import nn

from clip_tiny import TIMM_MODEL, VIT_MODEL, tiny_clip
from seg_helpers import tiny_mmseg_vit
from vapt_mm.clip import apply_vapt, load_vapt, remove_vapt, save_vapt
from vapt_mm.clip.towers import OpenClipViT
from vapt_mm.cls import VAPTClsBackbone
from vapt_mm.cls.mmpretrain_vit import MMPretrainViT
from vapt_mm.core import (GatedMultiheadAttention, PromptConfig, PromptedViT, PromptGate,
                          count_parameters, freeze_except_prompts, gate_multihead_attention,
                          load_trainable, save_trainable)
from vapt_mm.core.gate import gate_module
from vapt_mm.cls.gated_attention import gate_mmpretrain_attention
from vapt_mm.models.timm_gated_attention import gate_timm_attention
from vapt_mm.models.timm_vit import TimmViT
from vapt_mm.seg import VAPTBackbone
from vapt_mm.seg.mmseg_vit import MMSegViT

NUM_TOKENS = 3


def timm_vit() -> nn.Module:
    vit = timm.create_model('vit_tiny_patch16_224', pretrained=False, img_size=32, patch_size=8,
                            embed_dim=32, depth=3, num_heads=2, num_classes=0, qk_norm=True,
                            dynamic_img_size=True)
    return TimmViT(vit)


def mmseg_vit() -> nn.Module:
    args = {k: v for k, v in tiny_mmseg_vit().items() if k != 'type'}
    return MMSegViT(MMSegVisionTransformer(**{**args, 'num_layers': 3}, img_size=(32, 32),
                                           final_norm=True))


def clip_vit() -> nn.Module:
    return OpenClipViT(tiny_clip().visual)


def mmpretrain_vit() -> nn.Module:
    arch = dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)
    return MMPretrainViT(MMPretrainVisionTransformer(arch=arch, img_size=32, patch_size=8,
                                                     layer_scale_init_value=0.5))


FAMILIES = {'timm': timm_vit, 'mmseg': mmseg_vit, 'open_clip': clip_vit,
            'mmpretrain': mmpretrain_vit}
# Frozen nn.MultiheadAttention runs torch's fused native kernel in eval mode and the gate
# scaled_dot_product_attention: they round differently (measured: up to 1.0e-6 on tokens of
# size 3); timm's and mmpretrain's frozen attention is scaled_dot_product_attention too (exact).
RTOL = {'timm': 0.0, 'mmseg': 1e-6, 'open_clip': 1e-6, 'mmpretrain': 0.0}


def build(family: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return FAMILIES[family]().eval()


def prompted(family: str, method: str = 'vapt', gate: str = 'layer',
             **options) -> PromptedViT:
    cfg = PromptConfig(method=method, num_tokens=NUM_TOKENS, prompt_gate=gate, prompt_dropout=0,
                       conv_dropout=0, projector_dropout=0, **options)
    model = PromptedViT(build(family), cfg, image_size=(32, 32)).eval()
    torch.manual_seed(1)
    with torch.no_grad():  # non-zero prompts and generators: the identity is the gate's doing
        for name, param in model.prompts.named_parameters():
            if name != 'gate':
                param.normal_()
    return model


def frozen(family: str, images: torch.Tensor) -> torch.Tensor:
    """The frozen ViT's final tokens, run by hand on an unprompted copy."""
    vit = build(family)
    with torch.no_grad():
        tokens, _ = vit.embed(images)
        for block in vit.blocks:
            tokens = block(tokens)
        return vit.norm(tokens)


@pytest.mark.parametrize('gate', ['layer', 'head'])
@pytest.mark.parametrize('method', ['vapt', 'vpt-deep'])
@pytest.mark.parametrize('family', list(FAMILIES))
def test_gate_starts_as_the_frozen_vit(family, method, gate):
    model = prompted(family, method, gate)
    images = torch.randn(2, 3, 32, 32)
    reference = frozen(family, images)
    with torch.no_grad():
        assert torch.allclose(model(images), reference, atol=1e-6, rtol=RTOL[family])
        model.prompts.gate.fill_(0.5)
        assert (model(images) - reference).abs().max() > 1e-2
        model.prompts.gate.zero_()
        assert torch.allclose(model(images), reference, atol=1e-6, rtol=RTOL[family])
    ungated = PromptedViT(build(family), PromptConfig(
        method=method, num_tokens=NUM_TOKENS, prompt_dropout=0, conv_dropout=0,
        projector_dropout=0), image_size=(32, 32)).eval()
    ungated.prompts.load_state_dict({k: v for k, v in model.prompts.state_dict().items()
                                     if k != 'gate'})
    with torch.no_grad():  # the same prompts without the gate change the outputs
        assert (ungated(images) - reference).abs().max() > 1e-2


@pytest.mark.parametrize('family', ['timm', 'open_clip'])
def test_gate_starts_as_the_frozen_models_own_forward(family):
    images = torch.randn(2, 3, 32, 32)
    if family == 'timm':
        model = prompted('timm', 'vpt-shallow', 'head')
        reference = build('timm').model.forward_features(images)
        assert torch.allclose(model(images), reference, atol=1e-6, rtol=0)
        return
    for name in (VIT_MODEL, TIMM_MODEL):
        clip = tiny_clip(name)
        reference = clip.encode_image(images)
        apply_vapt(clip, method='vapt', num_tokens=NUM_TOKENS, prompt_gate='head')
        with torch.no_grad():
            for n, p in clip.visual.prompted.prompts.named_parameters():
                if n != 'gate':
                    p.normal_()
            assert torch.allclose(clip.encode_image(images), reference, atol=1e-6, rtol=1e-6)


def reference_attention(q, k, v, start, stop, gate, scale):
    """Gated attention by hand: masked softmaxes over explicit scores."""
    scores = torch.einsum('bhtd,bhsd->bhts', q, k) * scale
    is_prompt = torch.zeros(q.shape[2], dtype=torch.bool)
    is_prompt[start:stop] = True
    own = scores.masked_fill(is_prompt, float('-inf')).softmax(-1)
    to_prompts = scores.masked_fill(~is_prompt, float('-inf')).softmax(-1)
    weights = own + gate.view(1, -1, 1, 1) * to_prompts
    weights[:, :, start:stop] = scores[:, :, start:stop].softmax(-1)
    return torch.einsum('bhts,bhsd->bhtd', weights, v)


def split_heads(x, heads):
    b, t, c = x.shape
    return x.reshape(b, t, heads, c // heads).transpose(1, 2)


def merge_heads(x):
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


def timm_reference(attn, x, gate):
    q, k, v = (split_heads(y, 2) for y in attn.qkv(x).chunk(3, dim=-1))
    out = reference_attention(attn.q_norm(q), attn.k_norm(k), v, 1, 1 + NUM_TOKENS, gate,
                              (32 // 2) ** -0.5)
    return attn.proj(merge_heads(out))


def mha_reference(attn, x, gate):
    qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)
    q, k, v = (split_heads(y, 2) for y in qkv.chunk(3, dim=-1))
    out = reference_attention(q, k, v, 1, 1 + NUM_TOKENS, gate, (32 // 2) ** -0.5)
    return attn.out_proj(merge_heads(out))


def mmpretrain_reference(attn, x, gate):
    q, k, v = (split_heads(y, 2) for y in attn.qkv(x).chunk(3, dim=-1))
    out = reference_attention(q, k, v, 1, 1 + NUM_TOKENS, gate, (32 // 2) ** -0.5)
    return attn.gamma1(attn.proj(merge_heads(out)))


WRAPPERS = {
    'timm': (lambda: TimmAttention(32, 2, qkv_bias=True, qk_norm=True, norm_layer=nn.LayerNorm),
             gate_timm_attention, timm_reference),
    'nn_mha_batch_first': (lambda: nn.MultiheadAttention(32, 2, batch_first=True),
                           gate_multihead_attention, mha_reference),
    'nn_mha_sequence_first': (lambda: nn.MultiheadAttention(32, 2), gate_multihead_attention,
                              mha_reference),
    'mmpretrain': (lambda: MMPretrainAttention(32, 2, layer_scale_init_value=0.5),
                   gate_mmpretrain_attention, mmpretrain_reference),
}


@pytest.mark.parametrize('gate_values', [[1.0], [1.0, 1.0], [0.3, -0.7]])
@pytest.mark.parametrize('wrapper', list(WRAPPERS))
def test_gated_attention_reproduces_reference_math(wrapper, gate_values):
    make, install, reference = WRAPPERS[wrapper]
    torch.manual_seed(0)
    attn = make().eval()
    with torch.no_grad():
        for param in attn.parameters():  # non-trivial q/k norms, biases and layer scale
            param.add_(0.1 * torch.randn_like(param))
    context = PromptGate()
    assert install(attn, context) == 2
    x = torch.randn(2, 1 + NUM_TOKENS + 9, 32)
    gate = torch.tensor(gate_values)
    with torch.no_grad(), context.running(slice(1, 1 + NUM_TOKENS), gate):
        if wrapper == 'nn_mha_sequence_first':
            out = attn(*(x.transpose(0, 1),) * 3, need_weights=False)[0].transpose(0, 1)
        elif wrapper.startswith('nn_mha'):
            out = attn(x, x, x, need_weights=False)[0]
        else:
            out = attn(x)
        expected = reference(attn, x, gate)
    assert torch.allclose(out, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize('family', list(FAMILIES))
def test_gradients_reach_the_gate_at_zero_and_the_generators_after(family):
    model = prompted(family, 'vapt', 'head')
    freeze_except_prompts(model)
    images = torch.randn(2, 3, 32, 32)
    weights = torch.randn_like(frozen(family, images))

    def grads():
        model.zero_grad()
        (model(images) * weights).sum().backward()
        return {n: p.grad for n, p in model.prompts.named_parameters()}

    at_zero = grads()
    assert (at_zero['gate'].abs() > 0).all()
    assert all(g is None or not g.any() for n, g in at_zero.items() if n != 'gate')
    with torch.no_grad():
        model.prompts.gate.fill_(0.1)
    moved = grads()
    for name in ('static', 'generators.0.token_map.weight', 'projectors.0.fc1.weight'):
        assert name in moved and moved[name].abs().sum() > 0, name


def test_gate_is_recomputed_under_gradient_checkpointing():
    results = []
    for with_cp in (False, True):
        model = prompted('timm', 'vapt', 'layer')
        freeze_except_prompts(model)
        model.with_cp = with_cp
        model.train()
        with torch.no_grad():
            model.prompts.gate.fill_(0.2)
        torch.manual_seed(2)
        model(torch.randn(2, 3, 32, 32)).square().sum().backward()
        results.append({n: p.grad.clone() for n, p in model.prompts.named_parameters()})
    assert results[0].keys() == results[1].keys()
    for name in results[0]:
        assert torch.allclose(results[0][name], results[1][name], atol=1e-6), name


@pytest.mark.parametrize('gate,shape', [('layer', (3, 1)), ('head', (3, 2))])
def test_prompt_files_and_counts_include_the_gate(tmp_path, gate, shape):
    model = prompted('timm', 'vpt-deep', gate)
    freeze_except_prompts(model)
    plain = prompted('timm', 'vpt-deep', 'none')
    freeze_except_prompts(plain)
    assert count_parameters(model).trainable - count_parameters(plain).trainable == shape[0] * \
        shape[1]
    with torch.no_grad():
        model.prompts.gate.copy_(torch.randn(shape))
    save_trainable(model, str(tmp_path / 'p.safetensors'))
    fresh = prompted('timm', 'vpt-deep', gate)
    freeze_except_prompts(fresh)
    load_trainable(fresh, str(tmp_path / 'p.safetensors'))
    assert torch.equal(fresh.prompts.gate, model.prompts.gate)
    with pytest.raises(ValueError, match='prompt_gate'):
        load_trainable(plain, str(tmp_path / 'p.safetensors'))


def test_open_clip_prompt_files_round_trip_the_gate_and_remove_ungates(tmp_path):
    clip = apply_vapt(tiny_clip(), method='vapt', num_tokens=NUM_TOKENS, prompt_gate='head')
    with torch.no_grad():
        clip.visual.prompted.prompts.gate.normal_()
    save_vapt(clip, str(tmp_path / 'v.safetensors'))
    loaded = load_vapt(tiny_clip(), str(tmp_path / 'v.safetensors'))
    assert torch.equal(loaded.visual.prompted.prompts.gate, clip.visual.prompted.prompts.gate)
    tower = remove_vapt(loaded).visual
    assert all(type(b.attn) is nn.MultiheadAttention for b in tower.transformer.resblocks)
    assert not hasattr(tower.transformer.resblocks[0].attn, 'prompt_gate')


def test_gate_options_the_family_cannot_honour_are_refused():
    with pytest.raises(ValueError, match='prompt_gate'):
        PromptConfig(prompt_gate='token')

    class NoGate(nn.Module):
        def __init__(self, vit):
            super().__init__()
            self.embed_dim, self.num_prefix_tokens = vit.embed_dim, vit.num_prefix_tokens
            self.patch_size, self.blocks, self.norm, self.embed = (
                vit.patch_size, vit.blocks, vit.norm, vit.embed)

    with pytest.raises(TypeError, match='gate_prompts'):
        PromptedViT(NoGate(build('timm')), PromptConfig(prompt_gate='layer'), image_size=(32, 32))
    with pytest.raises(TypeError, match='DiffAttention'):
        vit = timm.create_model('vit_tiny_patch16_224', pretrained=False, img_size=32,
                                patch_size=8, embed_dim=32, depth=2, num_heads=2,
                                attn_layer='diff')
        PromptedViT(TimmViT(vit), PromptConfig(prompt_gate='head'), image_size=(32, 32))
    with pytest.raises(TypeError, match='not torch.nn.modules.linear.Linear'):
        gate_module(nn.Linear(2, 2), GatedMultiheadAttention, PromptGate())
    with pytest.raises(ValueError, match='add_bias_kv'):
        gate_multihead_attention(nn.MultiheadAttention(32, 2, add_bias_kv=True), PromptGate())


def test_seg_and_cls_backbones_start_as_their_plain_backbones():
    images = torch.randn(2, 3, 32, 32)
    vit = dict(type='VisionTransformer', arch=dict(embed_dims=32, num_layers=3, num_heads=2,
                                                   feedforward_channels=64), patch_size=8)
    torch.manual_seed(0)
    plain = VAPTClsBackbone(vit, img_size=32).eval()
    gated = VAPTClsBackbone(vit, dict(method='vapt', num_tokens=NUM_TOKENS, prompt_gate='head'),
                            img_size=32).eval()
    gated.vit.load_state_dict(plain.vit.state_dict())
    with torch.no_grad():
        assert torch.allclose(gated(images)[0], plain(images)[0], atol=1e-6, rtol=0)
    torch.manual_seed(0)
    gated = VAPTBackbone(vit=tiny_mmseg_vit(), out_indices=(1, 3), img_size=(32, 32),
                         prompt_cfg=dict(method='vpt-deep', num_tokens=NUM_TOKENS,
                                         prompt_gate='layer')).eval()
    plain = MMSegVisionTransformer(**{k: v for k, v in tiny_mmseg_vit().items() if k != 'type'},
                                   img_size=(32, 32), out_indices=(1, 3))
    plain.eval()  # returns None
    plain.load_state_dict(gated.vit.state_dict())
    with torch.no_grad():
        for ours, theirs in zip(gated(images), plain(images)):
            assert torch.allclose(ours, theirs, atol=1e-6, rtol=1e-6)

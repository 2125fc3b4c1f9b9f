"""VAPTBackbone: plain-backbone feature layout, freezing, pretrained loading, errors."""
import importlib.util

import pytest
import torch
from mmseg.models.backbones import ResNetV1c, VisionTransformer

from seg_helpers import ROOT, timm_state, tiny_mmseg_vit, write_timm_file
from vapt_mm.seg import VAPTBackbone
from vapt_mm.weights.mmseg_keys import timm_to_mmseg_vit

PROMPTS = dict(method='vapt', num_tokens=3)


def backbone(vit=None, **kwargs) -> VAPTBackbone:
    torch.manual_seed(0)
    options = dict(vit=vit or tiny_mmseg_vit(), prompt_cfg=PROMPTS, out_indices=(1, 3),
                   img_size=(32, 32))
    return VAPTBackbone(**{**options, **kwargs})


@pytest.mark.parametrize('size', [(32, 32), (48, 40), (40, 72)])
@pytest.mark.parametrize('final_norm', [False, True])
@pytest.mark.parametrize('with_cls_token', [True, False])
def test_feature_maps_match_plain_backbone_shapes(size, final_norm, with_cls_token):
    vit = tiny_mmseg_vit(with_cls_token=with_cls_token)
    model = backbone(vit, final_norm=final_norm).eval()
    plain = VisionTransformer(**{k: v for k, v in vit.items() if k != 'type'}, img_size=(32, 32),
                              out_indices=(1, 3), final_norm=final_norm)
    plain.eval()  # mmseg's VisionTransformer.train() returns None: no chaining
    images = torch.randn(2, 3, *size)
    outs, plain_outs = model(images), plain(images)
    assert [o.shape for o in outs] == [o.shape for o in plain_outs]
    assert outs[0].shape == (2, 32, size[0] // 8, size[1] // 8)


def test_adapter_without_prompts_reproduces_plain_backbone():
    model = backbone(tiny_mmseg_vit(pre_norm=True), final_norm=True).eval()
    plain = VisionTransformer(**{k: v for k, v in tiny_mmseg_vit(pre_norm=True).items()
                                 if k != 'type'}, img_size=(32, 32), out_indices=(1, 3),
                              final_norm=True)
    plain.eval()
    plain.load_state_dict(model.vit.state_dict())
    images = torch.randn(2, 3, 40, 48)
    adapter = model.encoder.vit
    tokens, (h, w) = adapter.embed(images)
    for block in adapter.blocks:
        tokens = block(tokens)
    last = adapter.norm(tokens)[:, 1:].reshape(2, h, w, -1).permute(0, 3, 1, 2)
    assert torch.allclose(last, plain(images)[-1], atol=1e-6)


def test_timm_vit_feature_maps():
    vit = dict(type='timm', model_name='vit_tiny_patch16_224', patch_size=8, embed_dim=32,
               depth=4, num_heads=2)
    model = backbone(vit, out_indices=(0, 1, 2, 3), final_norm=True).eval()
    outs = model(torch.randn(1, 3, 40, 56))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 5, 7)] * 4


def test_only_prompts_train_and_backbone_stays_in_eval_mode():
    model = backbone()
    model.train()
    assert model.training and not model.encoder.vit.training
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith('encoder.prompts.') for n in trainable)
    assert not any(p.requires_grad for p in model.vit.parameters())
    model.encoder.backbone_eval = False
    model.train()
    assert model.encoder.vit.training


@pytest.mark.parametrize('suffix', ['.safetensors', '.pth'])
def test_timm_weights_load_with_key_conversion_and_pos_resize(tmp_path, suffix):
    path = write_timm_file(tmp_path / f'vit{suffix}', img_size=16)  # 2x2 grid: pos resized
    model = backbone(init_cfg=dict(type='Pretrained', checkpoint=str(path)), final_norm=True)
    prompts = {k: v.clone() for k, v in model.encoder.prompts.state_dict().items()}
    model.init_weights()
    expected = timm_to_mmseg_vit(timm_state(img_size=16))
    state = model.vit.state_dict()
    assert state['pos_embed'].shape == (1, 17, 32)
    for key in ('layers.0.attn.attn.in_proj_weight', 'layers.3.ffn.layers.1.weight',
                'patch_embed.projection.weight', 'cls_token', 'ln1.weight'):
        assert torch.equal(state[key], expected[key]), key
    loaded = {k: v.clone() for k, v in state.items()}
    model.init_weights()  # again: never re-randomises, prompts untouched
    assert all(torch.equal(v, model.vit.state_dict()[k]) for k, v in loaded.items())
    assert all(torch.equal(v, model.encoder.prompts.state_dict()[k]) for k, v in prompts.items())


def test_conversion_matches_mmseg_vit2mmseg():
    script = ROOT / '.venv/lib'
    path = next(script.glob('python*/site-packages/mmseg/.mim/tools/model_converters/'
                            'vit2mmseg.py'))
    spec = importlib.util.spec_from_file_location('vit2mmseg', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    state = timm_state()
    assert list(module.convert_vit(state)) == list(timm_to_mmseg_vit(state))


def test_timm_backbone_loads_timm_file(tmp_path):
    path = write_timm_file(tmp_path / 'vit.safetensors', img_size=32)
    vit = dict(type='timm', model_name='vit_tiny_patch16_224', patch_size=8, embed_dim=32,
               depth=4, num_heads=2, mlp_ratio=2, checkpoint_path=str(path))
    model = backbone(vit)
    model.init_weights()
    expected = timm_state(img_size=32)
    assert all(torch.equal(v, expected[k]) for k, v in model.vit.state_dict().items())


def test_unrelated_weights_file_is_refused(tmp_path):
    path = tmp_path / 'other.pth'
    torch.save({'state_dict': ResNetV1c(depth=18).state_dict()}, path)
    model = backbone(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match='random'):
        model.init_weights()


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TypeError, match='VisionTransformer'):
        backbone(dict(type='ResNetV1c', depth=18))
    with pytest.raises(ValueError, match='not divisible by the patch size'):
        backbone(img_size=(36, 32))
    with pytest.raises(KeyError, match='num_tokenz'):
        backbone(prompt_cfg=dict(method='vapt', num_tokenz=3))
    with pytest.raises(ValueError, match='out_indices'):
        backbone(out_indices=(4,))
    with pytest.raises(TypeError, match='not a plain ViT'):
        backbone(dict(type='timm', model_name='resnet18'))


def test_mae_pretraining_file_loads_encoder_and_reports_decoder_keys(tmp_path):
    """MAE's pretraining checkpoints: timm encoder keys under 'model', plus its decoder."""
    state = timm_state(img_size=32)
    decoder = {'mask_token': torch.zeros(1, 1, 16), 'decoder_embed.weight': torch.zeros(16, 32),
               'decoder_blocks.0.norm1.weight': torch.ones(16)}
    path = tmp_path / 'mae_pretrain.pth'
    torch.save({'model': {**state, **decoder}}, path)
    model = backbone(tiny_mmseg_vit(patch_bias=True), final_norm=True)
    keys = model.load_pretrained(str(path))
    assert keys['missing_keys'] == []
    assert sorted(keys['unexpected_keys']) == sorted(decoder)
    expected = timm_to_mmseg_vit(state)
    assert all(torch.equal(v, expected[k]) for k, v in model.vit.state_dict().items())


def test_open_clip_image_tower_loads_into_a_timm_clip_vit(tmp_path):
    """A whole open_clip checkpoint; timm's filter converts its 'visual.' keys."""
    from open_clip.transformer import VisionTransformer as ClipVisionTransformer
    from safetensors.torch import save_file
    torch.manual_seed(1)
    tower = ClipVisionTransformer(image_size=32, patch_size=8, width=32, layers=2, heads=2,
                                  mlp_ratio=2, output_dim=16)
    path = tmp_path / 'open_clip_model.safetensors'
    save_file({f'visual.{k}': v.contiguous() for k, v in tower.state_dict().items()}, str(path))
    vit = dict(type='timm', model_name='vit_base_patch16_clip_224', patch_size=8, embed_dim=32,
               depth=2, num_heads=2, mlp_ratio=2)
    model = backbone(vit, out_indices=(0, 1))
    keys = model.load_pretrained(str(path))
    # The projection to the joint space becomes timm's head, which segmentation leaves out.
    assert keys['missing_keys'] == []
    assert sorted(keys['unexpected_keys']) == ['head.bias', 'head.weight']
    state = model.vit.state_dict()
    resblock = tower.transformer.resblocks[1]
    assert torch.equal(state['blocks.1.mlp.fc2.weight'], resblock.mlp.c_proj.weight)
    assert torch.equal(state['norm_pre.weight'], tower.ln_pre.weight)
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():  # the same image embedding from both: class token, ln_post, proj
        timm_embedding = model.vit.forward_features(image)[:, 0] @ tower.proj
        assert torch.allclose(timm_embedding, tower.eval()(image), atol=1e-5)


def test_mmseg_format_file_loads_as_is(tmp_path):
    expected = timm_to_mmseg_vit(timm_state(img_size=32))
    path = tmp_path / 'vit_mmseg.pth'
    torch.save({'state_dict': expected}, path)
    model = backbone(tiny_mmseg_vit(patch_bias=True), final_norm=True)
    keys = model.load_pretrained(str(path))
    assert keys == dict(missing_keys=[], unexpected_keys=[])
    assert all(torch.equal(v, expected[k]) for k, v in model.vit.state_dict().items())


def test_with_cp_gives_the_same_maps_and_prompt_gradients():
    maps, grads = [], []
    for with_cp in (False, True):
        options = dict(PROMPTS, conv_dropout=0.0, projector_dropout=0.0)
        model = backbone(with_cp=with_cp, prompt_cfg=options).train()
        for generator in model.encoder.prompts.generators:
            torch.nn.init.constant_(generator.token_map.weight, 0.1)
        outs = model(torch.ones(1, 3, 32, 32))
        sum(o.square().sum() for o in outs).backward()
        maps.append(outs)
        grads.append([p.grad for p in model.encoder.prompts.parameters() if p.requires_grad])
    assert model.encoder.with_cp
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(*maps))
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(*grads))

"""VAPTClsBackbone on tiny mmpretrain and timm ViTs: outputs, what trains, weights, prompt files."""
from pathlib import Path

import pytest
import torch
from mmpretrain.registry import MODELS
from safetensors.torch import save_file

import vapt_mm.cls  # noqa: F401  (registers VAPTClsBackbone)
from test_weight_formats import DEPTH, DIM, HEADS, MLP_RATIO, source, timm_keys, write_google_npz
from vapt_mm.core import count_parameters, load_trainable, save_trainable

#: mmpretrain ViT of the test_weight_formats sources' architecture (32 px, 8 px patches).
MMPRETRAIN_VIT = dict(type='VisionTransformer', patch_size=8, arch=dict(
    embed_dims=DIM, num_layers=DEPTH, num_heads=HEADS, feedforward_channels=DIM * MLP_RATIO))
TIMM_VIT = dict(type='timm', model_name='vit_tiny_patch16_224', patch_size=8, embed_dim=DIM,
                depth=DEPTH, num_heads=HEADS, mlp_ratio=MLP_RATIO)
PROMPTS = dict(method='vapt', num_tokens=3)
CLASSES = 5
pytestmark = pytest.mark.usefixtures('mmpretrain_scope')


def classifier(vit: dict, **backbone) -> torch.nn.Module:
    backbone = dict(dict(type='VAPTClsBackbone', vit=vit, img_size=32, prompt_cfg=PROMPTS),
                    **backbone)
    return MODELS.build(dict(type='ImageClassifier', backbone=backbone, neck=None, head=dict(
        type='LinearClsHead', num_classes=CLASSES, in_channels=DIM)))


@pytest.mark.parametrize('vit', [MMPRETRAIN_VIT, TIMM_VIT], ids=['mmpretrain', 'timm'])
def test_vapt_trains_prompts_and_head_only_and_gradient_reaches_the_generators(vit):
    torch.manual_seed(0)
    model = classifier(vit).train()
    features = model.backbone(torch.randn(2, 3, 32, 32))
    assert len(features) == 1 and features[0].shape == (2, DIM)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(('backbone.encoder.prompts.', 'head.'))
                             for n in trainable)
    assert 'head.fc.weight' in trainable
    logits = model(torch.randn(2, 3, 32, 32), mode='tensor')
    assert logits.shape == (2, CLASSES)
    logits.square().sum().backward()
    token_map = model.backbone.encoder.prompts.generators[0].token_map.weight
    assert token_map.grad is not None and token_map.grad.abs().sum() > 0
    assert all(p.grad is None for n, p in model.named_parameters() if n not in trainable)


def test_head_only_and_full_fine_tuning_are_the_same_network():
    head_only = classifier(MMPRETRAIN_VIT, prompt_cfg=None)
    full = classifier(MMPRETRAIN_VIT, prompt_cfg=None, train_vit=True)
    head = DIM * CLASSES + CLASSES
    assert count_parameters(head_only).trainable == head
    assert count_parameters(full).trainable == count_parameters(full).total
    assert list(head_only.state_dict()) == list(full.state_dict())
    vapt = classifier(MMPRETRAIN_VIT).train()
    assert full.train().backbone.vit.training and not vapt.backbone.vit.training


def test_the_class_token_is_the_frozen_vits_after_the_final_norm():
    """Without prompts the backbone computes exactly mmpretrain's own ViT forward."""
    model = classifier(MMPRETRAIN_VIT, prompt_cfg=None).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.backbone(images)[0], model.backbone.vit(images)[-1])


@pytest.mark.parametrize('suffix', ['npz', 'safetensors'])
def test_google_npz_and_timm_files_load_into_both_families(tmp_path: Path, suffix: str):
    src = source('vit')
    path = tmp_path / f'vit.{suffix}'
    if suffix == 'npz':
        write_google_npz(src, path)
    else:
        save_file(timm_keys(src), str(path))
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = src.forward_features(images)[:, 0]
        for vit in (MMPRETRAIN_VIT, TIMM_VIT):
            model = classifier(vit, prompt_cfg=None,
                               init_cfg=dict(type='Pretrained', checkpoint=str(path)))
            keys = model.backbone.load_pretrained(str(path))
            assert keys['missing_keys'] == []
            got = model.backbone.eval()(images)[0]
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_a_file_with_layer_scale_needs_a_vit_with_it(tmp_path: Path):
    src = source('dinov2')  # LayerScale, 14 px patches, 28 px
    path = tmp_path / 'dinov2.safetensors'
    save_file(timm_keys(src), str(path))
    vit = dict(MMPRETRAIN_VIT, patch_size=14)
    backbone = dict(type='VAPTClsBackbone', vit=vit, img_size=28, prompt_cfg=None)
    with pytest.raises(ValueError, match='has LayerScale.*layer_scale_init_value=1e-5'):
        MODELS.build(backbone).load_pretrained(str(path))
    model = MODELS.build(dict(backbone, vit=dict(vit, layer_scale_init_value=1e-5))).eval()
    model.load_pretrained(str(path))
    images = torch.randn(2, 3, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(model(images)[0], src.forward_features(images)[:, 0],
                                   rtol=1e-5, atol=1e-5)


def test_prompt_file_round_trip(tmp_path: Path):
    torch.manual_seed(0)
    model = classifier(MMPRETRAIN_VIT)
    with torch.no_grad():
        for param in model.backbone.encoder.prompts.parameters():
            param.normal_()
    save_trainable(model.backbone.encoder, tmp_path / 'prompts.safetensors')
    fresh = classifier(MMPRETRAIN_VIT)
    load_trainable(fresh.backbone.encoder, tmp_path / 'prompts.safetensors')
    for (name, a), b in zip(model.backbone.encoder.prompts.state_dict().items(),
                            fresh.backbone.encoder.prompts.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize('backbone, error', [
    (dict(vit=dict(MMPRETRAIN_VIT, out_type='avg_featmap')), "out_type='cls_token'"),
    (dict(vit=dict(MMPRETRAIN_VIT, frozen_stages=2)), 'drop frozen_stages'),
    (dict(train_vit=True), 'prompt_cfg=None'),
    (dict(vit=dict(type='ResNet', depth=18)), 'VAPTClsBackbone needs vit=dict'),
])
def test_configurations_vapt_cannot_drive_are_refused(backbone, error):
    with pytest.raises((ValueError, TypeError), match=error):
        classifier(**dict(dict(vit=MMPRETRAIN_VIT), **backbone))

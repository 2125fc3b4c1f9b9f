"""Every shipped config builds, loads a (tiny) pretrained file and runs a forward pass."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import vapt_mm  # noqa: F401
from seg_helpers import ROOT, write_timm_file
from vapt_mm.seg.runtime import sync_bn_to_bn
from vapt_mm.weights.mmseg_keys import timm_to_mmseg_vit

CONFIGS = sorted(p.name for p in (ROOT / 'configs').glob('*.py'))
WIDTH = {768: 32, 512: 16, 256: 16}


def shrink(node):
    """ViT-B geometry -> 32 wide, 2 heads, 64x64 (same depth and heads layout)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ('embed_dims', 'in_channels', 'out_channels', 'channels'):
                node[key] = [WIDTH.get(v, v) for v in value] if isinstance(value, list) \
                    else WIDTH.get(value, value)
            elif key == 'num_heads':
                node[key] = 2
            elif key in ('img_size', 'size') and value == (512, 512):
                node[key] = (64, 64)
            else:
                shrink(value)
    elif isinstance(node, list):
        for value in node:
            shrink(value)


def test_configs_are_shipped():
    assert {'vapt_ade20k.py', 'vapt_vit-b16_upernet_8xb2-160k_ade20k-512x512.py',
            'vapt_demo_tiny.py', 'vpt-deep_vit-b16_upernet_8xb2-160k_ade20k-512x512.py',
            'head-only_vit-b16_upernet_8xb2-160k_ade20k-512x512.py',
            'vapt_vit-b16_setr-pup_8xb2-160k_ade20k-512x512.py'} <= set(CONFIGS)


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory) -> Path:
    return write_timm_file(tmp_path_factory.mktemp('pretrain') / 'vit.pth', depth=12, dim=32,
                           patch=16, img_size=224, mlp_ratio=4)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds_and_runs(name, pretrained, tmp_path):
    cfg = Config.fromfile(str(ROOT / 'configs' / name))
    assert cfg.custom_imports.imports == ['vapt_mm']
    assert {'type': 'TrainableCheckpointHook'} in cfg.custom_hooks
    backbone = cfg.model.backbone
    if name != 'vapt_demo_tiny.py':
        assert backbone.init_cfg.type == 'Pretrained'
        assert cfg.model.decode_head.num_classes == 150
        assert cfg.train_cfg.max_iters == 160000 and cfg.train_dataloader.batch_size == 2
        shrink(cfg.model)
        checkpoint = pretrained
        if backbone.type == 'VisionTransformer':  # mmseg's own ViT wants mmseg keys
            checkpoint = tmp_path / 'vit_mmseg.pth'
            state = torch.load(pretrained, weights_only=True)['state_dict']
            torch.save(timm_to_mmseg_vit(state), checkpoint)
        backbone.init_cfg.checkpoint = str(checkpoint)
    sync_bn_to_bn(cfg.model)
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    model.init_weights()
    if name != 'vapt_demo_tiny.py':  # every pretrained tensor is used, the patch bias too
        vit = model.backbone.vit if backbone.type == 'VAPTBackbone' else model.backbone
        bias = torch.load(pretrained, weights_only=True)['state_dict']['patch_embed.proj.bias']
        assert torch.equal(vit.patch_embed.projection.bias, bias)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith('backbone.') and 'prompts' not in n for n in trainable)
    if backbone.type == 'VAPTBackbone':
        assert any('prompts' in n for n in trainable)
    size = cfg.model.data_preprocessor.size
    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 3, *size), mode='tensor')
    assert logits.shape[:2] == (1, 150)

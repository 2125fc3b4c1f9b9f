"""tools/pretrain_tiny_vit.py: a timm-format checkpoint the wrappers load fully, cached."""
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from mmseg.models.backbones import VisionTransformer
from safetensors.torch import load_file

from seg_helpers import PYTHON, ROOT
from vapt_mm.demo import tiny_vit as pretrain_vit
from vapt_mm.seg import VAPTBackbone
from vapt_mm.weights.mmseg_keys import timm_to_mmseg_vit


@pytest.fixture(scope='module')
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp('pretrain_cache')


@pytest.fixture(scope='module')
def checkpoint(cache) -> Path:
    result = subprocess.run([PYTHON, 'tools/pretrain_tiny_vit.py', '--recipe', 'tiny'], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, 'VAPT_PRETRAIN_CACHE': str(cache),
                                 'OMP_NUM_THREADS': '1'})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.parent.parent == cache
    return path


def geometry(checkpoint: Path) -> dict:
    return json.loads((checkpoint.parent / 'geometry.json').read_text())['timm']


def test_second_call_is_a_cache_hit(checkpoint, cache, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError('the cached checkpoint was trained again')
    monkeypatch.setattr(pretrain_vit, 'pretrain', no_training)
    assert pretrain_vit.pretrained_vit('tiny', root=cache) == checkpoint.parent


def test_timm_wrapper_loads_every_key(checkpoint):
    g = geometry(checkpoint)
    backbone = VAPTBackbone(
        vit=dict(type='timm', model_name='vit_tiny_patch16_224', patch_size=g['patch_size'],
                 embed_dim=g['embed_dim'], depth=g['depth'], num_heads=g['num_heads'],
                 mlp_ratio=g['mlp_ratio']),
        prompt_cfg=dict(method='vapt', num_tokens=2), img_size=g['img_size'],
        init_cfg=dict(type='Pretrained', checkpoint=str(checkpoint)))
    backbone.init_weights()
    keys = backbone.load_pretrained(str(checkpoint))
    assert keys == dict(missing_keys=[], unexpected_keys=[])
    saved = load_file(str(checkpoint))
    for name, tensor in backbone.vit.state_dict().items():
        assert torch.equal(tensor, saved[name]), name


def mmseg_vit_args(g: dict) -> dict:
    return dict(patch_size=g['patch_size'], embed_dims=g['embed_dim'], num_layers=g['depth'],
                num_heads=g['num_heads'], mlp_ratio=g['mlp_ratio'], qkv_bias=True, patch_bias=True,
                final_norm=True, norm_cfg=dict(type='LN', eps=1e-6),
                img_size=(g['img_size'], g['img_size']))


def test_mmseg_wrapper_and_plain_mmseg_vit_load_every_key(checkpoint, tmp_path):
    g = geometry(checkpoint)
    args = mmseg_vit_args(g)
    backbone = VAPTBackbone(
        vit=dict(type='VisionTransformer', **{k: v for k, v in args.items()
                                              if k not in ('final_norm', 'img_size')}),
        prompt_cfg=dict(method='vpt-deep', num_tokens=2), img_size=g['img_size'],
        final_norm=True)
    keys = backbone.load_pretrained(str(checkpoint))
    assert keys == dict(missing_keys=[], unexpected_keys=[])
    mmseg_file = tmp_path / 'vit_mmseg.pth'
    torch.save(timm_to_mmseg_vit(load_file(str(checkpoint))), mmseg_file)
    plain = VisionTransformer(**args, init_cfg=dict(type='Pretrained', checkpoint=str(mmseg_file)))
    plain.init_weights()
    wrapped = backbone.vit.state_dict()
    for name, tensor in plain.state_dict().items():
        assert torch.equal(tensor, wrapped[name]), name
    assert set(plain.state_dict()) == set(wrapped)

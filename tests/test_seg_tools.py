"""tools/*.py end to end on generated data: train, resume, test, merge, dist, unsafe files."""
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest
import torch

from seg_helpers import PYTHON, ROOT, timm_state, write_timm_file
from vapt_mm.seg import RandomSubsetDataset
from vapt_mm.seg.checkpoint import is_trainable_only
from vapt_mm.seg.weights import read_checkpoint
from vapt_mm.weights.mmseg_keys import timm_to_mmseg_vit

CONFIG = """_base_ = ['{root}/configs/vapt_demo_tiny.py']
data_root = '{data}'
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='{pretrained}')))
train_cfg = dict(max_iters=4, val_interval=100)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=100)]
default_hooks = dict(checkpoint=dict(interval=2, save_best=None), logger=dict(interval=1),
                     visualization=dict(type='SegVisualizationHook'))
"""
PRETRAINED = dict(depth=4, dim=64, patch=8, img_size=64)


def run(*args, check=True, env=None):
    result = subprocess.run([*args], cwd=ROOT, capture_output=True, text=True, timeout=240,
                            env={**os.environ, 'OMP_NUM_THREADS': '1', **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f'{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}')
    return result


def tool(name, *args, **kwargs):
    return run(PYTHON, f'tools/{name}', *map(str, args), **kwargs)


def make_space(root: Path) -> Path:
    """``root`` with a tiny demo data set, a timm ViT file and ``cfg.py`` using both."""
    tool('make_demo_ade20k.py', root / 'data', '--train', 6, '--val', 2, '--size', 48, 64)
    write_timm_file(root / 'vit.safetensors', **PRETRAINED)
    (root / 'cfg.py').write_text(CONFIG.format(root=ROOT, data=root / 'data',
                                               pretrained=root / 'vit.safetensors'))
    return root


@pytest.fixture(scope='module')
def space(tmp_path_factory) -> Path:
    return make_space(tmp_path_factory.mktemp('seg_tools'))


def mIoU(output: str) -> float:
    return float(re.findall(r'mIoU: ([0-9.]+)', output)[-1])


def test_train_resume_merge_and_test(space):
    work = space / 'work'
    tool('train.py', space / 'cfg.py', '--work-dir', work, '--data-fraction', 0.5)
    first = read_checkpoint(str(work / 'iter_2.pth'))
    last = read_checkpoint(str(work / 'iter_4.pth'))
    assert is_trainable_only(last) and 'optimizer' in last and 'param_schedulers' in last
    keys = set(last['state_dict'])
    assert not any(k.startswith('backbone.encoder.vit.') for k in keys)
    changed = {k for k in keys if not torch.equal(first['state_dict'][k], last['state_dict'][k])}
    assert any(k.startswith('backbone.encoder.prompts.') for k in changed)
    assert any(k.startswith('decode_head.') for k in changed)

    tool('merge_checkpoint.py', space / 'cfg.py', work / 'iter_4.pth', space / 'merged.pth')
    merged = read_checkpoint(str(space / 'merged.pth'))['state_dict']
    pretrained = timm_to_mmseg_vit(timm_state(**PRETRAINED))
    backbone = {k[len('backbone.encoder.vit.model.'):]: v for k, v in merged.items()
                if k.startswith('backbone.encoder.vit.model.')}
    assert backbone and all(torch.equal(v, pretrained[k]) for k, v in backbone.items())
    assert all(torch.equal(merged[k], v) for k, v in last['state_dict'].items())

    resumed = tool('train.py', space / 'cfg.py', '--work-dir', work, '--resume',
                   '--cfg-options', 'train_cfg.max_iters=6')
    assert 'resumed epoch: 0, iter: 4' in resumed.stdout + resumed.stderr
    assert (work / 'iter_6.pth').is_file() and not list(work.glob('.tmp_*'))

    small = tool('test.py', space / 'cfg.py', work / 'iter_4.pth', '--work-dir', space / 'test1',
                 '--show-dir', space / 'show', '--cfg-options',
                 'default_hooks.visualization.interval=1')
    full = tool('test.py', space / 'cfg.py', space / 'merged.pth', '--work-dir', space / 'test2')
    assert 0.0 < mIoU(small.stdout) == mIoU(full.stdout)
    assert list((space / 'show').rglob('*.png'))  # --show-dir painted the predictions


def test_dist_train_with_two_cpu_processes(space):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    work = space / 'dist'
    run('bash', 'tools/dist_train.sh', str(space / 'cfg.py'), '2', '--work-dir', str(work),
        '--cfg-options', 'train_cfg.max_iters=2',
        env={'PYTHON': PYTHON, 'PORT': str(port)})
    assert is_trainable_only(read_checkpoint(str(work / 'iter_2.pth')))


RUNNER_TEST = """import sys, torch
from mmengine.runner import Runner
from vapt_mm.seg.runtime import load_config, prepare_runtime
cfg = load_config(sys.argv[1], 'none', {'load_from': sys.argv[2]}, sys.argv[3])
prepare_runtime(cfg, 'none')
runner = Runner.from_cfg(cfg)
print('mIoU:', runner.test()['mIoU'])
torch.save(runner.model.state_dict(), sys.argv[4])
"""


def test_stock_runner_test_with_load_from_a_trainable_only_checkpoint(space):
    """mmengine's own path (``load_from`` + ``Runner.test``, as mmseg's test.py) gets the
    frozen weights from the pretrained file, not random ones."""
    work = space / 'load_from'
    tool('train.py', space / 'cfg.py', '--work-dir', work, '--cfg-options',
         'train_cfg.max_iters=2')
    tool('merge_checkpoint.py', space / 'cfg.py', work / 'iter_2.pth', work / 'merged.pth')
    tested = run(PYTHON, '-c', RUNNER_TEST, str(space / 'cfg.py'), str(work / 'iter_2.pth'),
                 str(work / 'test'), str(work / 'tested_state.pth'))
    assert 'trainable weights only; frozen weights come from the pretrained file' in \
        tested.stdout + tested.stderr
    state = torch.load(work / 'tested_state.pth', weights_only=True)
    merged = read_checkpoint(str(work / 'merged.pth'))['state_dict']
    assert state.keys() == merged.keys()
    assert all(torch.equal(state[k], merged[k]) for k in merged)
    assert mIoU(tested.stdout) > 0.0


class Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def test_malicious_checkpoint_is_refused(space):
    marker = space / 'pwned'
    work = space / 'evil'
    work.mkdir()
    torch.save({'meta': Exploit(marker), 'state_dict': {}}, work / 'iter_8.pth')
    (work / 'last_checkpoint').write_text(str(work / 'iter_8.pth'))
    resumed = tool('train.py', space / 'cfg.py', '--work-dir', work, '--resume', check=False)
    assert resumed.returncode != 0 and 'Weights only load failed' in resumed.stderr
    tested = tool('test.py', space / 'cfg.py', work / 'iter_8.pth', '--work-dir', work,
                  check=False)
    assert tested.returncode != 0 and 'refused to load' in tested.stderr
    assert not marker.exists()
    with pytest.raises(RuntimeError, match='refused to load'):
        read_checkpoint(str(work / 'iter_8.pth'))


def test_random_subset_is_fixed_by_seed():
    data = list(range(100))
    a, b = RandomSubsetDataset(data, 0.25, seed=3), RandomSubsetDataset(data, 0.25, seed=3)
    assert len(a) == 25 and [a[i] for i in range(25)] == [b[i] for i in range(25)]
    assert [a[i] for i in range(25)] != [RandomSubsetDataset(data, 0.25, seed=4)[i]
                                         for i in range(25)]
    with pytest.raises(ValueError, match='fraction'):
        RandomSubsetDataset(data, 0.0)

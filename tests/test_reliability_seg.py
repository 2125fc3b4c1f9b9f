"""Segmentation reliability: exact resume after SIGKILL, atomic saves, NaN, seeds, 2 = 1 process.

The faults are hooks of this module that the training subprocesses import
(``custom_imports``): a real SIGKILL half-way through writing a checkpoint,
and weights turned NaN before an iteration.
"""
import os
import re
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Sequence

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from seg_helpers import PYTHON, ROOT
from test_seg_tools import make_space, mIoU, tool
from vapt_mm.seg.checkpoint import is_complete, latest_checkpoint
from vapt_mm.seg.weights import read_checkpoint

TESTS = str(Path(__file__).resolve().parent)


class HalfWriter:
    """Stands in for ``os.fdopen``: writes half of the data, then ``fail``s: SIGKILLs the
    process."""

    def __init__(self, fd: int, mode: str = 'wb') -> None:
        self.fd = fd

    def __enter__(self) -> 'HalfWriter':
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def write(self, data: bytes) -> None:
        os.write(self.fd, data[:len(data) // 2])
        self.fail()

    def fail(self) -> None:
        os.fsync(self.fd)
        os.kill(os.getpid(), signal.SIGKILL)


class FaultDuringSave(Hook):
    """Fault: ``writer`` stands in for ``os.fdopen`` from the checkpoint of ``iteration`` on
    (the atomic backend's next write is that checkpoint)."""

    priority = 'LOWEST'
    writer: type

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if runner.iter + 1 == self.iteration:
            os.fdopen = self.writer


@HOOKS.register_module()
class SigkillDuringSave(FaultDuringSave):
    """Fault: the process is killed half-way through writing the checkpoint of ``iteration``."""

    writer = HalfWriter


@HOOKS.register_module()
class PoisonHead(Hook):
    """Fault: the decode head's classifier turns NaN right before ``iteration``."""

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        if runner.iter + 1 == self.iteration:
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            with torch.no_grad():
                model.decode_head.conv_seg.weight.fill_(float('nan'))


DDP_CONFIG = """_base_ = ['./cfg.py']
# No batch statistics (GN heads), no dropout, no random augmentation: 2 x 2 images = 1 x 4.
# SGD: AdamW's first step, g / (|g| + eps), turns round-off in gradients near eps into
# visible weight differences; the gradients themselves agree (momentum buffers compared).
optim_wrapper = dict(optimizer=dict(_delete_=True, type='SGD', lr=0.1, momentum=0.9,
                                     weight_decay=0.0))
gn = dict(type='GN', num_groups=8, requires_grad=True)
model = dict(backbone=dict(prompt_cfg=dict(prompt_dropout=0.0, conv_dropout=0.0,
                                           projector_dropout=0.0)),
             decode_head=dict(norm_cfg=gn, dropout_ratio=0.0),
             auxiliary_head=dict(norm_cfg=gn, dropout_ratio=0.0))
pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', reduce_zero_label=True),
            dict(type='Resize', scale=(64, 64), keep_ratio=False), dict(type='PackSegInputs')]
train_dataloader = dict(dataset=dict(pipeline=pipeline))
train_cfg = dict(max_iters=1, val_begin=100)
default_hooks = dict(checkpoint=dict(interval=1))
"""


def fault_config(space: Path, name: str, fault: Dict[str, Any], base: str = 'cfg.py',
                 module: str = 'test_reliability_seg') -> Path:
    """``base`` plus the ``fault`` hook of ``module`` (imported by the training process)."""
    hooks = [dict(h) for h in Config.fromfile(space / base).custom_hooks] + [fault]
    path = space / f'{name}.py'
    path.write_text(f"_base_ = ['./{base}']\ncustom_imports = dict(imports=['vapt_mm', "
                    f"'{module}'], allow_failed_imports=False)\n"
                    f'custom_hooks = {hooks!r}\n')
    return path


def free_port() -> str:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return str(sock.getsockname()[1])


def concurrently(*commands: Sequence[Any]) -> List[subprocess.CompletedProcess]:
    """Run the commands (tools/*, optionally with an environment dict last) side by side."""
    started = []
    for command in commands:
        extra = command[-1] if isinstance(command[-1], dict) else {}
        args = [str(a) for a in (command[:-1] if extra else command)]
        env = {**os.environ, 'OMP_NUM_THREADS': '1',
               'PYTHONPATH': os.pathsep.join([TESTS, os.environ.get('PYTHONPATH', '')]), **extra}
        started.append((args, subprocess.Popen(args, cwd=ROOT, env=env, text=True,
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
    results = []
    for args, process in started:
        out, err = process.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(args, process.returncode, out, err))
    return results


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (f'{result.args}:\n{result.stdout[-3000:]}\n'
                                    f'{result.stderr[-3000:]}')
    return result.stdout + result.stderr


def state(path: Path) -> Dict[str, torch.Tensor]:
    return read_checkpoint(str(path))['state_dict']


def max_difference(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


@pytest.fixture(scope='module')
def space(tmp_path_factory) -> Path:
    return make_space(tmp_path_factory.mktemp('seg_reliability'))


@pytest.fixture(scope='module')
def runs(space) -> Dict[str, subprocess.CompletedProcess]:
    """Side by side: an uninterrupted 4-iteration run (checkpoints at 2 and 4, validation at
    the end); the same run killed while saving iteration 4; one with seed 1 whose weights
    turn NaN before iteration 3; one step of ``DDP_CONFIG`` with 1 process x 4 images and
    with 2 processes x 2 images."""
    kill = fault_config(space, 'kill', dict(type='SigkillDuringSave', iteration=4))
    nan = fault_config(space, 'nan', dict(type='PoisonHead', iteration=3))
    (space / 'ddp.py').write_text(DDP_CONFIG)
    train = [PYTHON, 'tools/train.py']
    results = concurrently(
        [*train, space / 'cfg.py', '--work-dir', space / 'full'],
        [*train, kill, '--work-dir', space / 'killed'],
        [*train, nan, '--work-dir', space / 'nan', '--cfg-options', 'randomness.seed=1'],
        [*train, space / 'ddp.py', '--work-dir', space / 'one', '--cfg-options',
         'train_dataloader.batch_size=4'],
        ['bash', 'tools/dist_train.sh', space / 'ddp.py', '2', '--work-dir', space / 'two',
         '--cfg-options', 'train_dataloader.batch_size=2', dict(PYTHON=PYTHON, PORT=free_port())])
    return dict(zip(['full', 'killed', 'nan', 'one', 'two'], results))


def test_sigkill_during_a_save_then_resume_is_bit_exact(space, runs):
    work = space / 'killed'
    full = ok(runs['full'])
    assert runs['killed'].returncode == -signal.SIGKILL
    # The kill hit the save of iteration 4: its half-written temporary file is all there is.
    partial = list(work.glob('.tmp_*'))
    assert len(partial) == 1 and partial[0].stat().st_size > 0 and not is_complete(partial[0])
    assert not (work / 'iter_4.pth').exists() and is_complete(str(work / 'iter_2.pth'))
    # Same seed, same weights (determinism), up to the kill.
    assert max_difference(state(work / 'iter_2.pth'), state(space / 'full' / 'iter_2.pth')) == 0
    # A half-copied newer checkpoint that last_checkpoint names is passed over too.
    (work / 'iter_3.pth').write_bytes((work / 'iter_2.pth').read_bytes()[:1000])
    (work / 'last_checkpoint').write_text(str(work / 'iter_3.pth'))
    assert latest_checkpoint(str(work)) == str(work / 'iter_2.pth')

    resumed = tool('train.py', space / 'cfg.py', '--work-dir', work, '--resume')
    log = resumed.stdout + resumed.stderr
    assert 'resumed epoch: 0, iter: 2' in log
    a, b = (read_checkpoint(str(d / 'iter_4.pth')) for d in (work, space / 'full'))
    assert max_difference(a['state_dict'], b['state_dict']) == 0  # bit-identical
    moments = [{f'{i}.{k}': v for i, s in c['optimizer']['state'].items() for k, v in s.items()
                if torch.is_tensor(v)} for c in (a, b)]
    assert max_difference(*moments) == 0
    assert mIoU(log) == mIoU(full) > 0


def test_nan_loss_stops_with_the_iteration_and_keeps_the_last_checkpoint(space, runs):
    work = space / 'nan'
    result = runs['nan']
    ok(runs['full'])
    assert result.returncode != 0
    assert re.search(r'FloatingPointError: the loss is nan at iteration 3; training stopped',
                     result.stderr)
    assert str(work / 'iter_2.pth') in result.stderr  # named as the checkpoint to go back to
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_2.pth']
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')
    last = state(work / 'iter_2.pth')
    assert all(torch.isfinite(t).all() for t in last.values())
    # Another seed, other weights after the same 2 iterations.
    assert max_difference(last, state(space / 'full' / 'iter_2.pth')) > 1e-3


def test_two_processes_equal_one_process_without_batch_statistics(space, runs):
    ok(runs['one'])
    ok(runs['two'])
    one, two = (read_checkpoint(str(space / d / 'iter_1.pth')) for d in ('one', 'two'))
    assert max_difference(one['state_dict'], two['state_dict']) <= 1e-6
    moments = [{f'{i}.{k}': v for i, s in c['optimizer']['state'].items() for k, v in s.items()
                if k == 'momentum_buffer'} for c in (one, two)]
    assert max_difference(*moments) <= 1e-6
    assert max(t.abs().max().item() for t in moments[0].values()) > 1e-4  # a real step


def test_resume_when_the_only_checkpoint_is_truncated_names_it_and_the_ways_on(tmp_path):
    """A copied or partly synced work dir whose one checkpoint is cut short: ``--resume``
    stops before the Runner with the file, 'no complete checkpoint', and two commands."""
    work = tmp_path / 'work'
    work.mkdir()
    torch.save({'state_dict': {'w': torch.zeros(64, 64)}}, work / 'iter_2.pth')
    (work / 'iter_2.pth').write_bytes((work / 'iter_2.pth').read_bytes()[:3000])
    (work / 'last_checkpoint').write_text(str(work / 'iter_2.pth'))
    config = str(ROOT / 'configs' / 'vapt_demo_tiny.py')
    result = subprocess.run([PYTHON, 'tools/train.py', config, '--work-dir', str(work),
                             '--resume'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    err = result.stderr
    assert 'Traceback' not in err and 'PytorchStreamReader' not in err, err[-3000:]
    assert (f'no complete checkpoint is left in {work} to resume from: '
            f'{work / "iter_2.pth"} (incomplete)') in err
    assert f'python tools/train.py {config} --work-dir {work}\n' in err  # without --resume
    assert f'rm {work / "iter_2.pth"} {work / "last_checkpoint"}' in err
    assert (f'python tools/train.py {config} --work-dir {work} --resume --cfg-options '
            'load_from=OTHER.pth') in err
    assert sorted(p.name for p in work.iterdir()) == ['iter_2.pth', 'last_checkpoint']

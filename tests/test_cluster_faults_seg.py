"""Segmentation on a cluster, faults injected for real (CPU, gloo): SIGUSR1/SIGTERM stop with
a checkpoint (exit 75), a SIGKILLed rank stops the others and torchrun restarts the workers
from the newest checkpoint, resumes on another number of processes, a checkpoint write that
fails with a full disk (exit 74).

The faults are hooks of this module that the training processes import (``custom_imports``).
The runs use ``DDP_CONFIG``'s model (GroupNorm heads, no dropout, SGD), on which 2 processes
x 2 images step as 1 x 4 (float round-off), 4 iterations with checkpoints at 2 and 4.
"""
import errno
import os
import re
import shutil
import signal
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence

import pytest
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from cluster_runs import Run, free_port, gone_after, pid_in, stopped_at_exit
from seg_helpers import PYTHON
from test_reliability_seg import (DDP_CONFIG, TESTS, FaultDuringSave, HalfWriter,
                                  fault_config, max_difference)
from test_seg_tools import make_space
from vapt_mm.cluster import EXIT_PREEMPTED, EXIT_SAVE_FAILED, stop_signal
from vapt_mm.seg.checkpoint import RNG_STATES, is_complete, latest_checkpoint
from vapt_mm.seg.weights import read_checkpoint

#: The model of DDP_CONFIG for 4 iterations; validation off (val_begin).
EXACT = """_base_ = ['./ddp.py']
train_cfg = dict(max_iters=4, val_begin=100)
default_hooks = dict(checkpoint=dict(interval=2))
"""
#: DataLoader workers, which SLURM's SIGTERM reaches too.
WORKERS = ['train_dataloader.num_workers=2', 'train_dataloader.persistent_workers=True']
#: Seconds within which the other rank must end after one is killed (gloo fails its
#: collective at once; torchrun ends it with SIGKILL 30 s after its SIGTERM at the latest).
KILL_BOUND_S = 40


def first_attempt() -> bool:
    return os.environ.get('TORCHELASTIC_RESTART_COUNT', '0') == '0'


@HOOKS.register_module()
class HoldRank(Hook):
    """Fault, in torchrun's first attempt: before ``iteration`` (its data loaded) every rank
    writes its pid to ``<marker>.<rank>``, and rank ``rank`` waits there, while the others
    wait in the iteration's gradient all-reduce, until it gets a stop signal (or is killed)."""

    def __init__(self, iteration: int, rank: int, marker: str) -> None:
        self.iteration, self.rank, self.marker = iteration, rank, marker

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        if runner.iter + 1 != self.iteration or not first_attempt():
            return
        rank = int(os.environ.get('RANK', 0))
        Path(f'{self.marker}.{rank}').write_text(str(os.getpid()))
        deadline = time.monotonic() + 300
        while rank == self.rank and not stop_signal() and time.monotonic() < deadline:
            time.sleep(0.02)


@HOOKS.register_module()
class SignalSelf(Hook):
    """Fault: the process sends itself ``signal_name`` before ``iteration``."""

    def __init__(self, iteration: int, signal_name: str) -> None:
        self.iteration, self.signal_name = iteration, signal_name

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        if runner.iter + 1 == self.iteration:
            os.kill(os.getpid(), getattr(signal, self.signal_name))


class HalfThenNoSpace(HalfWriter):
    """Stands in for ``os.fdopen``: writes half of the data, then fails as a full disk does."""

    def __exit__(self, *exc: Any) -> None:
        os.close(self.fd)

    def fail(self) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@HOOKS.register_module()
class NoSpaceDuringSave(FaultDuringSave):
    """Fault: the disk is full half-way through writing the checkpoint of ``iteration``."""

    writer = HalfThenNoSpace


def faulted(space: Path, name: str, fault: Dict[str, Any]) -> Path:
    """``EXACT`` with the VAPT runtime hooks and ``fault``."""
    return fault_config(space, name, fault, 'exact.py', 'test_cluster_faults_seg')


def train(space: Path, name: str, config: Path, procs: int, *extra: Any,
          options: Sequence[str] = ()) -> Run:
    """tools/train.py (1 process) or tools/dist_train.sh (``procs``), global batch 4."""
    tail = ['--work-dir', space / name, *extra,
            '--cfg-options', f'train_dataloader.batch_size={4 // procs}', *options]
    if procs == 1:
        args = [PYTHON, 'tools/train.py', config, *tail]
    else:
        args = ['bash', 'tools/dist_train.sh', config, procs, *tail]
    return Run(args, space / f'{name}.log', [TESTS], dict(PYTHON=PYTHON, PORT=free_port()))


def iterations(run: Run) -> List[int]:
    return [int(n) for n in re.findall(r'Iter\(train\) \[(\d+)/', run.output)]


@pytest.fixture(scope='module')
def space(tmp_path_factory) -> Path:
    space = make_space(tmp_path_factory.mktemp('seg_cluster'))
    (space / 'ddp.py').write_text(DDP_CONFIG)
    (space / 'exact.py').write_text(EXACT)
    return space


@pytest.fixture(scope='module')
def runs(space) -> Iterator[Dict[str, Run]]:
    """Side by side: the uninterrupted reference (1 process); SIGUSR1 before iteration 3
    (1 process); SIGTERM to the process group of a run with DataLoader workers, held in
    iteration 3 (1 process); SIGTERM to rank 1 only, held in iteration 3 (2 processes);
    rank 1 SIGKILLed in iteration 3, with --max-restarts 1 (2 processes); a full disk while
    saving iteration 4 of 6 (1 process). Then copies of the SIGUSR1 run resumed on 1 and on
    2 processes, and of the SIGTERM run with workers on 1."""
    marks = {name: space / f'{name}.pid' for name in ('term', 'kill', 'workers')}
    with stopped_at_exit({}) as runs:
        runs.update(ref=train(space, 'ref', space / 'exact.py', 1),
                    usr1=train(space, 'usr1', faulted(space, 'usr1', dict(
                        type='SignalSelf', iteration=3, signal_name='SIGUSR1')), 1),
                    workers=train(space, 'workers', faulted(space, 'workers', dict(
                        type='HoldRank', iteration=3, rank=0, marker=str(marks['workers']))),
                        1, options=WORKERS))
        for name in ('term', 'kill'):
            config = faulted(space, name, dict(type='HoldRank', iteration=3, rank=1,
                                               marker=str(marks[name])))
            runs[name] = train(space, name, config, 2,
                               *(['--max-restarts', '1'] if name == 'kill' else []))
        runs['disk'] = train(space, 'disk', faulted(space, 'disk', dict(
            type='NoSpaceDuringSave', iteration=4)), 1, options=['train_cfg.max_iters=6'])
        os.kill(pid_in(Path(f'{marks["term"]}.1'), runs['term']), signal.SIGTERM)
        pid_in(Path(f'{marks["workers"]}.0'), runs['workers'])  # held in iteration 3
        os.killpg(runs['workers'].process.pid, signal.SIGTERM)  # with its DataLoader workers
        survivor = pid_in(Path(f'{marks["kill"]}.0'), runs['kill'])
        os.kill(pid_in(Path(f'{marks["kill"]}.1'), runs['kill']), signal.SIGKILL)
        runs['kill'].stopped_after = gone_after(survivor, time.time())
        for run in runs.values():
            run.wait()
        for procs in (1, 2):  # copies, resumed on ``procs``
            name = f'usr1_on_{procs}'
            shutil.copytree(space / 'usr1', space / name)
            runs[name] = train(space, name, space / 'exact.py', procs, '--resume')
        shutil.copytree(space / 'workers', space / 'workers_resumed')
        runs['workers_resumed'] = train(space, 'workers_resumed', space / 'exact.py', 1,
                                        '--resume', options=WORKERS)
        for name in ('usr1_on_1', 'usr1_on_2', 'workers_resumed'):
            runs[name].wait()
        yield runs


def checkpoint(space: Path, work: str, iteration: int) -> dict:
    path = space / work / f'iter_{iteration}.pth'
    assert is_complete(str(path)), path
    return read_checkpoint(str(path))


def momenta(state: dict) -> Dict[str, Any]:
    return {f'{i}.{k}': v for i, s in state['optimizer']['state'].items() for k, v in s.items()
            if k == 'momentum_buffer'}


def assert_same_run(a: dict, b: dict, tolerance: float) -> float:
    """Assert the checkpoints agree to ``tolerance``; their largest difference."""
    difference = max(max_difference(a['state_dict'], b['state_dict']),
                     max_difference(momenta(a), momenta(b)))
    assert difference <= tolerance and a['meta']['iter'] == b['meta']['iter']
    return difference


def test_sigusr1_stops_after_the_iteration_and_resumes_bit_exactly(space, runs):
    run, ref = runs['usr1'], runs['ref']
    assert ref.wait() == 0, ref
    assert run.wait() == EXIT_PREEMPTED, run
    assert 'SIGUSR1: stopped after iteration 3, saved in' in run.output
    assert iterations(run) == [1, 2, 3]
    assert (space / 'usr1' / 'last_checkpoint').read_text() == str(space / 'usr1' / 'iter_3.pth')
    assert not list((space / 'usr1').glob('.tmp_*'))
    resumed = runs['usr1_on_1']
    assert resumed.wait() == 0, resumed
    assert 'resumed epoch: 0, iter: 3' in resumed.output and iterations(resumed) == [4]
    assert 'resuming on' not in resumed.output  # the same number of processes: nothing to note
    assert_same_run(checkpoint(space, 'usr1_on_1', 4), checkpoint(space, 'ref', 4), 0.0)


def test_sigterm_to_the_process_and_its_workers_stops_after_the_iteration_and_resumes(
        space, runs):
    run = runs['workers']
    assert run.wait() == EXIT_PREEMPTED, run
    assert 'SIGTERM: stopped after iteration 3, saved in' in run.output
    assert 'killed by signal' not in run.output  # the workers ignored it
    assert iterations(run) == [1, 2, 3]
    resumed = runs['workers_resumed']
    assert resumed.wait() == 0, resumed
    assert iterations(resumed) == [4]
    assert_same_run(checkpoint(space, 'workers_resumed', 4), checkpoint(space, 'ref', 4), 0.0)


def test_sigterm_to_one_rank_stops_every_rank_after_the_same_iteration(space, runs):
    run = runs['term']
    assert run.wait() != 0  # torchrun: a worker exited non-zero
    assert run.output.count(f'exitcode  : {EXIT_PREEMPTED} ') == 2, run  # rank 0 too
    assert 'SIGTERM: stopped after iteration 3' in run.output
    assert iterations(run) == [1, 2, 3]
    saved = checkpoint(space, 'term', 3)
    assert saved['meta']['iter'] == 3 and len(saved[RNG_STATES]) == 2
    assert saved['meta']['vapt_world'] == dict(world_size=2, global_batch=4)


def test_a_killed_rank_stops_the_other_and_torchrun_restarts_from_the_newest_checkpoint(
        space, runs):
    run = runs['kill']
    print(f'\nrank 0 ended {run.stopped_after:.2f} s after rank 1 was SIGKILLed')
    assert run.stopped_after < KILL_BOUND_S, run
    # rank 0's collective failed at once (gloo words it either way, by timing)
    assert re.search(r'Connection (closed|reset) by peer', run.output), run
    assert run.wait() == 0, run  # after one restart
    assert (f'restart 1 of the workers by torchrun: resuming from '
            f'{space / "kill" / "iter_2.pth"}') in run.output  # the newest complete one
    assert 'resumed epoch: 0, iter: 2' in run.output and iterations(run) == [1, 2, 3, 4]
    # 2 processes x 2 images throughout: the run on 1 x 4, to float round-off.
    assert_same_run(checkpoint(space, 'kill', 4), checkpoint(space, 'ref', 4), 1e-6)


def test_a_one_process_checkpoint_resumes_on_two_processes(space, runs):
    resumed = runs['usr1_on_2']
    assert resumed.wait() == 0, resumed
    assert 'resuming on 2 process(es) a checkpoint written by 1' in resumed.output
    assert iterations(resumed) == [4]
    difference = assert_same_run(checkpoint(space, 'usr1_on_2', 4), checkpoint(space, 'ref', 4),
                                 1e-6)
    print(f'\n1 then 2 processes vs 1: {difference:.1e}')


def test_a_full_disk_during_a_save_stops_training_and_keeps_the_previous_checkpoint(space, runs):
    run, work = runs['disk'], space / 'disk'
    assert run.wait() == EXIT_SAVE_FAILED, run
    assert (f'could not write the checkpoint {work / "iter_4.pth"} ([Errno 28] No space left on '
            f'device); training stopped. The newest complete checkpoint is '
            f'{work / "iter_2.pth"}') in run.output
    assert iterations(run) == [1, 2, 3, 4]  # no iteration after the failed save
    assert sorted(p.name for p in work.iterdir() if p.suffix == '.pth' or p.name.startswith(
        '.tmp')) == ['iter_2.pth']
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')
    assert latest_checkpoint(str(work)) == str(work / 'iter_2.pth')
    assert_same_run(checkpoint(space, 'disk', 2), checkpoint(space, 'ref', 2), 0.0)

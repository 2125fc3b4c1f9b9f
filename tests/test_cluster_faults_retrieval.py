"""Retrieval training on a cluster, faults injected for real (CPU, gloo): SIGTERM/SIGUSR1 stop
with a checkpoint (exit 75), a hung rank stops the other by the process-group timeout and
the newest checkpoint resumes, a resume on another number of processes, a checkpoint write
that fails with a full disk (exit 74).

The faults come from ``tests/faults/sitecustomize.py``, which every training process imports
at start-up (``PYTHONPATH``); the test chooses them through the environment. 12-pair global
batches (1 x 12 or 2 x 6), 10 steps, checkpoints every 3 steps.
"""
import json
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import torch
from safetensors.torch import load_file

from clip_tiny import VIT_CONFIG, VIT_MODEL
from cluster_runs import Run, free_port, gone_after, pid_in, stopped_at_exit
from test_retrieval_train import make_setup
from vapt_mm.cluster import EXIT_PREEMPTED, EXIT_SAVE_FAILED

FAULTS = str(Path(__file__).resolve().parent / 'faults')
OPTIONS = ['--epochs', '1', '--lr', '1e-2', '--warmup', '3', '--save-every', '3',
           '--train-extra', 'proj', '--no-augment', '--log-every', '1']
NO_DROPOUT = ['prompt_dropout=0', 'conv_dropout=0', 'projector_dropout=0']
#: Process-group timeout of the hung-rank run, and the bound on its stop.
TIMEOUT_S = 5
HANG_BOUND_S = TIMEOUT_S + 30


def train(setup, name: str, procs: int, *extra: str, dropout: bool = False, workers: int = 0,
          **fault: str) -> Run:
    """train_retrieval.py (1 process) or dist_train_retrieval.sh (``procs``) into ``name``,
    global batch 12; ``fault``: the VAPT_FAULT* environment."""
    root, data, base = setup
    tool = ([sys.executable, 'tools/train_retrieval.py'] if procs == 1 else
            ['bash', 'tools/dist_train_retrieval.sh', str(procs)])
    args = [*tool, *extra, '--model', VIT_MODEL, '--model-config', VIT_CONFIG,
            '--pretrained', base, '--train-data', os.path.join(data, 'train.csv'),
            '--output', root / name, '--batch-size', str(12 // procs), *OPTIONS,
            '--workers', str(workers),
            '--prompt', 'num_tokens=4', *([] if dropout else NO_DROPOUT)]
    env = {'PYTHON': sys.executable, 'PORT': free_port(),
           **{'VAPT_' + ('FAULT' if k == 'fault' else f'FAULT_{k.upper()}'): v
              for k, v in fault.items()}}  # fault='hold', step='5' -> VAPT_FAULT, VAPT_FAULT_STEP
    return Run(args, root / f'{name}.log', [FAULTS], env)


def log(setup, out: str) -> List[dict]:
    with open(setup[0] / out / 'train_log.jsonl') as f:
        return [json.loads(line) for line in f]


def losses(setup, out: str) -> List[float]:
    return [entry['loss'] for entry in log(setup, out)]


def weights(setup, out: str) -> Dict[str, torch.Tensor]:
    return load_file(setup[0] / out / 'vapt.safetensors')


def max_difference(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def saved(setup, out: str) -> dict:
    return torch.load(setup[0] / out / 'checkpoint.pt', weights_only=True)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    return make_setup(tmp_path_factory.mktemp('retrieval_cluster'))


@pytest.fixture(scope='module')
def runs(setup) -> Iterator[Dict[str, Run]]:
    """Side by side: uninterrupted references on 1 process (with dropout) and on 2; SIGTERM to
    the process and its 2 DataLoader workers, as SLURM signals a job step, while the process
    is held in step 5 (1 process, with dropout); SIGUSR1 to torchrun while rank 1 is held in
    step 5 (2); rank 1 hung in step 5 with a 5 s timeout (2); a full disk while rank 0
    writes the checkpoint of step 6 (2). Then copies of the SIGTERM run and of the hung run
    resumed on 1 process."""
    root = setup[0]
    marks = {name: root / f'{name}.pid' for name in ('term', 'usr1', 'hang')}
    with stopped_at_exit({}) as runs:
        runs.update(
            ref1=train(setup, 'ref1', 1, dropout=True),
            ref2=train(setup, 'ref2', 2),
            term=train(setup, 'term', 1, dropout=True, workers=2, fault='hold', step='5',
                       file=str(marks['term'])),
            usr1=train(setup, 'usr1', 2, fault='hold', rank='1', step='5',
                       file=str(marks['usr1'])),
            hang=train(setup, 'hang', 2, '--dist-timeout', str(TIMEOUT_S), fault='hold',
                       rank='1', step='5', file=str(marks['hang'])),
            disk=train(setup, 'disk', 2, fault='enospc', step='6'))
        survivor = pid_in(Path(f'{marks["hang"]}.0'), runs['hang'])
        pid_in(Path(f'{marks["hang"]}.1'), runs['hang'])  # rank 1 hangs from now on
        since = Path(f'{marks["hang"]}.1').stat().st_mtime
        runs['hang'].stopped_after = gone_after(survivor, since)
        pid_in(Path(f'{marks["term"]}.0'), runs['term'])  # held in step 5
        os.killpg(runs['term'].process.pid, signal.SIGTERM)  # with its DataLoader workers
        pid_in(Path(f'{marks["usr1"]}.1'), runs['usr1'])  # rank 1 is held in step 5
        runs['usr1'].process.send_signal(signal.SIGUSR1)  # to torchrun, which passes it on
        for run in runs.values():
            run.wait()
        for name in ('term', 'hang'):  # copies, resumed on 1 process
            shutil.copytree(root / name, root / f'{name}_on_1')
            runs[f'{name}_on_1'] = train(setup, f'{name}_on_1', 1, '--resume', 'latest',
                                         dropout=name == 'term', workers=2 * (name == 'term'))
        for name in ('term_on_1', 'hang_on_1'):
            runs[name].wait()
        yield runs


def test_sigterm_to_the_process_and_its_workers_stops_after_the_step_and_resumes_bit_exactly(
        setup, runs):
    run = runs['term']
    assert runs['ref1'].wait() == 0, runs['ref1']
    assert run.wait() == EXIT_PREEMPTED, run
    assert ('SIGTERM: stopped after step 5, saved in '
            f'{setup[0] / "term" / "checkpoint.pt"}; continue with --resume latest') in run.output
    assert saved(setup, 'term')['step'] == 5 and [e['step'] for e in log(setup, 'term')] == [
        1, 2, 3, 4, 5]
    assert not (setup[0] / 'term' / 'vapt.safetensors').exists()
    resumed = runs['term_on_1']
    assert resumed.wait() == 0, resumed
    assert 'at step 5' in resumed.output and 'resuming on' not in resumed.output
    # Dropout on, DataLoader workers (2) or not (the reference): the RNG, optimizer, data
    # order and schedule all carried over.
    assert losses(setup, 'term_on_1') == losses(setup, 'ref1')
    assert max_difference(weights(setup, 'term_on_1'), weights(setup, 'ref1')) == 0


def test_sigusr1_to_torchrun_stops_both_ranks_after_the_same_step(setup, runs):
    run = runs['usr1']
    assert run.wait() != 0, run  # torchrun re-raises the signal once its workers ended
    assert run.output.count('closing signal SIGUSR1') == 2, run  # passed on to both ranks
    assert run.output.count('SIGUSR1: stopped after step 5') == 2  # rank 1 was held in step 5
    assert 'Unable to shutdown process' not in run.output  # no rank needed torchrun's SIGKILL
    state = saved(setup, 'usr1')
    assert state['step'] == 5 and len(state['rng']) == 2 and state['global_batch'] == 12
    assert [e['step'] for e in log(setup, 'usr1')] == [1, 2, 3, 4, 5]


def test_a_hung_rank_times_out_the_other_and_leaves_the_newest_checkpoint(setup, runs):
    run = runs['hang']
    print(f'\nrank 0 ended {run.stopped_after:.2f} s after rank 1 stopped answering '
          f'(process-group timeout {TIMEOUT_S} s)')
    assert TIMEOUT_S < run.stopped_after < HANG_BOUND_S, run
    assert f'Timed out waiting {TIMEOUT_S * 1000}ms' in run.output  # rank 0's collective
    assert run.wait() != 0, run
    assert saved(setup, 'hang')['step'] == 3  # the newest complete checkpoint
    assert [e['step'] for e in log(setup, 'hang')] == [1, 2, 3, 4]


def test_a_two_process_checkpoint_resumes_on_one_process(setup, runs):
    resumed = runs['hang_on_1']
    assert runs['ref2'].wait() == 0, runs['ref2']
    assert resumed.wait() == 0, resumed
    assert ('resuming on 1 process(es) a checkpoint written by 2: exact: the weights, optimizer '
            'state and step count, and the LR schedule and data position (the same global '
            'batch of 12); not exact: the per-rank RNG streams') in resumed.output
    assert 'resumed from' in resumed.output and 'at step 3' in resumed.output
    # Steps 1-3 on 2 processes, 4-10 on 1: the 2-process run, to float round-off.
    loss = max(abs(a - b) for a, b in zip(losses(setup, 'hang_on_1'), losses(setup, 'ref2')))
    difference = max_difference(weights(setup, 'hang_on_1'), weights(setup, 'ref2'))
    print(f'\n2 then 1 process(es) vs 2: weights {difference:.1e}, losses {loss:.1e}')
    assert [e['step'] for e in log(setup, 'hang_on_1')] == list(range(1, 11))
    assert loss <= 1e-6 and difference <= 1e-6


def test_a_full_disk_during_a_save_stops_every_rank_and_keeps_the_previous_checkpoint(
        setup, runs):
    run, path = runs['disk'], setup[0] / 'disk' / 'checkpoint.pt'
    assert run.wait() != 0, run
    assert run.output.count(f'exitcode  : {EXIT_SAVE_FAILED} ') == 2, run  # both ranks
    assert (f'could not write the checkpoint {path} at step 6 (OSError: [Errno 28] No space '
            f'left on device); training stopped and {path} still holds step 3, the newest '
            'complete one') in run.output
    assert saved(setup, 'disk')['step'] == 3 and not Path(f'{path}.tmp').exists()
    assert [e['step'] for e in log(setup, 'disk')] == list(range(1, 7))  # no step 7

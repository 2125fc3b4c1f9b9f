"""Retrieval reliability: exact resume after a SIGKILL during a save, NaN stop, seeds (CPU)."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from clip_tiny import VIT_CONFIG, VIT_MODEL, tiny_clip
from test_retrieval_data import ROOT
from test_retrieval_train import make_setup
from vapt_mm.clip import evaluate_retrieval, load_captions, load_vapt
from vapt_mm.clip.checkpoint import truncate_log

SCRIPT = os.path.join(ROOT, 'tools', 'train_retrieval.py')
#: Runs train_retrieval.py; its ``kill_at``-th torch.save writes half a file, then SIGKILLs.
KILL_DURING_SAVE = """import io, os, runpy, signal, sys
import torch
save, calls = torch.save, []
def half_save(obj, f, *args, **kwargs):
    calls.append(f)
    if len(calls) < int(os.environ['KILL_AT']):
        return save(obj, f, *args, **kwargs)
    data = io.BytesIO()
    save(obj, data, *args, **kwargs)
    f.write(data.getvalue()[:len(data.getvalue()) // 2])
    f.flush()
    os.fsync(f.fileno())
    os.kill(os.getpid(), signal.SIGKILL)
torch.save = half_save
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""
OPTIONS = ['--epochs', '1', '--lr', '1e-2', '--warmup', '3', '--save-every', '3',
           '--train-extra', 'proj']


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    return make_setup(tmp_path_factory.mktemp('retrieval_reliability'))


def command(setup, out, *extra, kill_at=None):
    """train_retrieval.py into ``out`` (12-pair batches, 10 steps an epoch), to run."""
    root, data, base = setup
    launcher = [sys.executable] if kill_at is None else [sys.executable, '-c', KILL_DURING_SAVE]
    args = [*launcher, SCRIPT, '--model', VIT_MODEL, '--model-config', VIT_CONFIG,
            '--pretrained', base, '--train-data', os.path.join(data, 'train.csv'),
            '--output', str(root / out), '--batch-size', '12', '--workers', '0', '--no-augment',
            '--log-every', '1', '--prompt', 'num_tokens=4', *extra]
    env = {**os.environ, 'PYTHONPATH': ROOT, 'OMP_NUM_THREADS': '1', 'KILL_AT': str(kill_at)}
    return args, env


def concurrently(*commands):
    """Run ``command(...)`` results side by side; their CompletedProcess results."""
    started = [(args, subprocess.Popen(args, env=env, text=True, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE)) for args, env in commands]
    results = []
    for args, process in started:
        out, err = process.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(args, process.returncode, out, err))
    return results


@pytest.fixture(scope='module')
def runs(setup):
    """Side by side: 10 steps; the same killed while saving step 6 (after step 3's
    checkpoint); 3 steps with seed 1; lr 1e30, which gives a NaN loss."""
    names = ['full', 'killed', 'seed1', 'nan']
    results = concurrently(
        command(setup, 'full', *OPTIONS),
        command(setup, 'parts', *OPTIONS, kill_at=2),
        command(setup, 'seed1', *OPTIONS, '--exit-after-steps', '3', '--seed', '1'),
        # lr 1e30 throws the prompts to ~1e30 in step 1: step 2's loss is NaN.
        command(setup, 'nan', '--epochs', '1', '--lr', '1e30', '--warmup', '1',
                '--save-every', '1'))
    return dict(zip(names, results))


def log(setup, out):
    with open(setup[0] / out / 'train_log.jsonl') as f:
        return [json.loads(line) for line in f]


def mean_recall(setup, weights):
    """Mean recall on the training images of the tiny model with ``weights`` applied."""
    root, data, base = setup
    model = load_vapt(tiny_clip(pretrained=base), weights).eval()
    _, _, preprocess = __import__('open_clip').create_model_and_transforms(VIT_MODEL)
    tokenizer = __import__('open_clip').get_tokenizer(VIT_MODEL)
    captions = load_captions(os.path.join(data, 'captions.json'), 'train')
    return evaluate_retrieval(model, captions, preprocess, tokenizer,
                              torch.device('cpu'))['mean_recall']


def trainable(setup, out):
    return torch.load(setup[0] / out / 'checkpoint.pt', weights_only=True)['trainable']


def test_sigkill_during_a_save_then_resume_is_bit_exact(setup, runs):
    assert runs['full'].returncode == 0, runs['full'].stderr
    work = setup[0] / 'parts'
    assert runs['killed'].returncode == -signal.SIGKILL
    assert (work / 'checkpoint.pt.tmp').stat().st_size > 0  # the half-written one
    assert torch.load(work / 'checkpoint.pt', weights_only=True)['step'] == 3
    assert [e['step'] for e in log(setup, 'parts')] == list(range(1, 7))
    # Another seed, other weights after the same 3 steps.
    killed, other = (trainable(setup, d) for d in ('parts', 'seed1'))
    assert max((killed[k] - other[k]).abs().max() for k in killed) > 1e-3

    (resumed,) = concurrently(command(setup, 'parts', *OPTIONS, '--resume', 'latest'))
    assert resumed.returncode == 0, resumed.stderr
    assert 'at step 3' in resumed.stderr and not (work / 'checkpoint.pt.tmp').exists()
    # The same seed in other processes: the same losses (steps 4-6 logged once) and
    # bit-identical weights and metric.
    timing = ('samples_per_s', 'data_time', 'batch_time')  # wall-clock measurements
    assert log(setup, 'parts') == [{**e, **{k: a[k] for k in timing}}
                                   for e, a in zip(log(setup, 'full'), log(setup, 'parts'))]
    assert [e['step'] for e in log(setup, 'parts')] == list(range(1, 11))
    final, again = (load_file(setup[0] / d / 'vapt.safetensors') for d in ('full', 'parts'))
    assert final.keys() == again.keys() and all(torch.equal(final[k], again[k]) for k in final)
    recall = mean_recall(setup, str(setup[0] / 'full' / 'vapt.safetensors'))
    assert mean_recall(setup, str(work / 'vapt.safetensors')) == recall


def test_nan_loss_stops_with_the_step_and_keeps_the_last_checkpoint(setup, runs):
    result = runs['nan']
    assert result.returncode != 0
    assert 'the loss is nan at step 2; stopped before its optimizer step' in result.stderr
    work = setup[0] / 'nan'
    checkpoint = torch.load(work / 'checkpoint.pt', weights_only=True)
    assert checkpoint['step'] == 1 and not (work / 'vapt.safetensors').exists()
    assert all(torch.isfinite(t).all() for t in checkpoint['trainable'].values())
    assert [e['step'] for e in log(setup, 'nan')] == [1]


def test_truncate_log_keeps_saved_steps_and_drops_a_half_line(tmp_path):
    path = tmp_path / 'train_log.jsonl'
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n{"step": 3, "lo')
    truncate_log(str(path), 1)
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {'step': 1, 'loss': 2.0}]


def test_resume_when_the_checkpoint_is_truncated_names_it_and_the_ways_on(setup):
    """The run folder's one checkpoint cut short (a partly synced copy): ``--resume latest``
    stops with the file, 'no complete checkpoint', and the commands, no torch traceback."""
    folder = setup[0] / 'truncated'
    folder.mkdir()
    torch.save({'trainable': {'w': torch.zeros(64, 64)}}, folder / 'checkpoint.pt')
    (folder / 'checkpoint.pt').write_bytes((folder / 'checkpoint.pt').read_bytes()[:3000])
    (result,) = concurrently(command(setup, 'truncated', '--resume', 'latest'))
    assert result.returncode == 1
    err = result.stderr
    assert 'Traceback' not in err and 'PytorchStreamReader' not in err, err[-3000:]
    assert f'cannot read {folder / "checkpoint.pt"} (truncated or partly copied' in err
    assert 'No complete checkpoint is left' in err and 'run without --resume' in err
    start_over = [line for line in err.splitlines() if line.startswith(f'    python {SCRIPT}')]
    assert len(start_over) == 2 and '--resume' not in start_over[0]
    assert start_over[1] == start_over[0] + ' --resume OTHER/checkpoint.pt'

"""tools/train_retrieval.py on webdataset shards (subprocesses, CPU): the same training as the
CSV path when both read in file order, validation with the best checkpoint, results.jsonl and
TensorBoard, a run killed (SIGKILL) mid-epoch that resumes as if uninterrupted, corrupt
members. 120 pairs of the demo set in 4 shards, global batch 12."""
import json
import os
import shutil
import signal
import sys

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from clip_tiny import VIT_CONFIG, VIT_MODEL
from cluster_runs import Run, free_port, pid_in, stopped_at_exit
from test_retrieval_train import TOOLS, make_setup, run
from test_shards import copy_with_bad_member, make_shards_tool

FAULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'faults')
TOOL = os.path.join(TOOLS, 'train_retrieval.py')
COMMON = ['--model', VIT_MODEL, '--model-config', VIT_CONFIG, '--batch-size', '12',
          '--no-augment', '--log-every', '1', '--lr', '1e-2', '--warmup', '3',
          '--train-extra', 'proj', '--prompt', 'num_tokens=4']


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """The demo set of test_retrieval_train, its 120 training pairs in 4 shards and its 8
    validation images (with their 5 captions) in 2 grouped shards."""
    root, data, base = make_setup(tmp_path_factory.mktemp('retrieval_shards'))
    assert make_shards_tool.main([os.path.join(data, 'train.csv'), str(root / 'shards'),
                                  '--num-shards', '4']) == 0
    assert make_shards_tool.main([os.path.join(data, 'captions.json'), str(root / 'val'),
                                  '--split', 'val', '--group-captions', '--num-shards', '2']) == 0
    return root, data, base


def shards(setup):
    return str(setup[0] / 'shards' / 'shard-{0000..0003}.tar')


def args(setup, *extra, data=None):
    root, csv_data, base = setup
    return [sys.executable, TOOL, *COMMON, '--pretrained', base,
            '--train-data', data or shards(setup), *extra]


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def max_difference(a, b):
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_shards_train_as_the_csv_when_both_read_in_file_order(setup):
    root, data, _ = setup
    options = ['--epochs', '2', '--workers', '0', '--no-shuffle']
    run(args(setup, *options, '--output', str(root / 'csv'), '--val-data',
             str(root / 'val' / 'shard-{0000..0001}.tar'), data=os.path.join(data, 'train.csv')))
    out = run(args(setup, *options, '--output', str(root / 'tars'), '--train-num-samples',
                   '120'))
    assert '120 samples per epoch (--train-num-samples) from 4 shards, 10 steps per epoch' in out
    from_csv, from_tars = (read_jsonl(root / d / 'train_log.jsonl') for d in ('csv', 'tars'))
    assert [e['step'] for e in from_tars] == list(range(1, 21))
    assert [e['loss'] for e in from_tars] == pytest.approx([e['loss'] for e in from_csv],
                                                           abs=1e-6)
    assert from_csv[-1]['loss'] < from_csv[0]['loss'] - 0.2  # it trained
    difference = max_difference(*(load_file(root / d / 'vapt.safetensors')
                                  for d in ('csv', 'tars')))
    assert difference <= 1e-6
    assert [e['step'] for e in read_jsonl(root / 'csv' / 'results.jsonl')] == [10, 20]


@pytest.fixture(scope='module')
def killed(setup):
    """Shards read by 2 DataLoader workers, shuffled, 2 epochs of 10 steps, validation on the
    validation shards every 6 steps, checkpoints every 13 steps and with each validation: a
    reference, and a run SIGKILLed (with its workers) in step 15 and resumed from its
    checkpoint of step 13 (epoch 1 after 3 steps: one round of the 2 workers' batches
    skipped unread, one read and dropped)."""
    root = setup[0]
    options = ['--epochs', '2', '--workers', '2', '--train-num-samples', '120',
               '--save-every', '13', '--val-data', str(root / 'val' / 'shard-{0000..0001}.tar'),
               '--val-every-steps', '6', '--report-to', 'tensorboard', '--logs', str(root)]
    mark = root / 'kill.pid'
    with stopped_at_exit({}) as runs:
        runs.update(ref=Run(args(setup, *options, '--name', 'ref'), root / 'ref.log', [], {}),
                    kill=Run(args(setup, *options, '--name', 'kill'), root / 'kill.log',
                             [FAULTS], {'VAPT_FAULT': 'hold', 'VAPT_FAULT_STEP': '15',
                                        'VAPT_FAULT_FILE': str(mark)}))
        pid_in(mark.with_suffix('.pid.0'), runs['kill'], timeout=300)
        os.killpg(runs['kill'].process.pid, signal.SIGKILL)
        assert runs['kill'].wait() == -signal.SIGKILL
        shutil.copytree(root / 'kill', root / 'killed')  # as the kill left it
        runs['resumed'] = Run(args(setup, *options, '--name', 'kill', '--resume', 'latest'),
                              root / 'resumed.log', [], {})
        assert runs['ref'].wait(300) == 0, runs['ref']
        assert runs['resumed'].wait(300) == 0, runs['resumed']
        yield runs


def test_a_run_killed_mid_epoch_resumes_as_if_uninterrupted(setup, killed):
    root = setup[0]
    assert torch.load(root / 'killed' / 'checkpoint.pt', weights_only=True)['step'] == 13
    assert [e['step'] for e in read_jsonl(root / 'killed' / 'train_log.jsonl')] == list(
        range(1, 15))
    assert ('at step 13 (epoch 1, after 36 of its 120 samples; 156 samples seen in all)'
            in killed['resumed'].output)
    ref, resumed = (read_jsonl(root / d / 'train_log.jsonl') for d in ('ref', 'kill'))
    assert [e['step'] for e in resumed] == list(range(1, 21))
    assert [e['loss'] for e in resumed] == [e['loss'] for e in ref]  # bit-exact
    assert max_difference(*(load_file(root / d / 'vapt.safetensors')
                            for d in ('ref', 'kill'))) == 0
    assert read_jsonl(root / 'kill' / 'results.jsonl') == read_jsonl(root / 'ref' / 'results.jsonl')


def test_val_data_writes_recalls_tensorboard_and_keeps_the_best(setup, killed):
    root = setup[0]
    results = read_jsonl(root / 'ref' / 'results.jsonl')
    assert [e['step'] for e in results] == [6, 12, 18, 20]
    assert {'mean_recall', 'image_retrieval_recall@1', 'text_retrieval_recall@10'} <= set(
        results[0])
    recalls = [e['mean_recall'] for e in results]
    assert [e['best'] for e in results] == [
        r > max(recalls[:i], default=-1) for i, r in enumerate(recalls)]
    best = max(range(4), key=lambda i: (recalls[i], -i))
    with safe_open(str(root / 'ref' / 'best.safetensors'), 'pt') as f:
        assert f.metadata()['step'] == str(results[best]['step'])
    out = killed['ref'].output
    assert '(2 shards) every 6 steps' in out
    assert 'samples/s ETA' in out and ' data ' in out
    events = EventAccumulator(str(root / 'ref' / 'tensorboard'))
    events.Reload()
    assert [e.step for e in events.Scalars('val/mean_recall')] == [6, 12, 18, 20]
    assert [e.value for e in events.Scalars('val/mean_recall')] == pytest.approx(recalls)
    assert [e.step for e in events.Scalars('train/loss')] == list(range(1, 21))


@pytest.fixture(scope='module')
def corrupt(setup):
    """The 4 shards, the first with its member 00000003.png overwritten by other bytes."""
    folder = setup[0] / 'corrupt'
    shutil.copytree(setup[0] / 'shards', folder)
    path = folder / 'shard-0000.tar'
    copy_with_bad_member(setup[0] / 'shards' / 'shard-0000.tar', path, b'\x89PNG broken' * 4)
    return str(folder / 'shard-{0000..0003}.tar'), str(path)


def test_a_corrupt_member_stops_with_the_shard_name_or_is_skipped_with_a_count(setup, corrupt):
    pattern, bad = corrupt
    options = ['--epochs', '1', '--workers', '0', '--train-num-samples', '120']
    result = Run(args(setup, *options, '--output', str(setup[0] / 'bad'), data=pattern),
                 setup[0] / 'bad.log', [], {})
    assert result.wait(300) == 1
    assert f"cannot read the sample '00000003' of the shard {bad}" in result.output
    assert '--skip-corrupt' in result.output
    out = run(args(setup, *options, '--skip-corrupt', '--output', str(setup[0] / 'skip'),
                   data=pattern))
    assert "skipped the sample '00000003'" in out and '1 skipped so far' in out
    assert len(read_jsonl(setup[0] / 'skip' / 'train_log.jsonl')) == 10


def test_two_processes_train_on_shards_with_open_clips_option_names(setup):
    """torchrun (dist_train_retrieval.sh), 2 x 6 pairs, 2 workers each, open_clip's names."""
    root = setup[0]
    out = run(['bash', os.path.join(TOOLS, 'dist_train_retrieval.sh'), '2',
               *args(setup, '--epochs', '1', '--workers', '2', '--train-num-samples', '120',
                     '--batch-size', '6',
                     '--val-data', os.path.join(setup[1], 'captions.json'),
                     '--val-frequency', '1', '--logs', str(root), '--name', 'two',
                     '--accum-freq', '2', '--log-every-n-steps', '5', '--save-frequency', '1',
                     '--dataset-type', 'webdataset')[2:]],
              env_extra={'PYTHON': sys.executable, 'PORT': free_port()})
    assert '120 samples per epoch' in out and 'global batch 24' in out  # 2 x 6 x 2
    assert [e['step'] for e in read_jsonl(root / 'two' / 'train_log.jsonl')] == [5]
    assert [e['step'] for e in read_jsonl(root / 'two' / 'results.jsonl')] == [5]
    assert (root / 'two' / 'best.safetensors').is_file()
    assert torch.load(root / 'two' / 'checkpoint.pt', weights_only=True)['data_split'] == [2, 2]


def test_a_shard_pattern_that_matches_nothing_stops_training_with_a_clear_error(setup, tmp_path):
    empty = str(tmp_path / 'nowhere' / 'shard-{0000..0009}.tar')
    result = Run(args(setup, '--train-num-samples', '120', '--output', str(tmp_path / 'out'),
                      data=empty), tmp_path / 'empty.log', [], {})
    assert result.wait(300) == 1
    assert f"--train-data: the shard pattern '{empty}' matches no file (10 name(s)" in (
        result.output) and 'Traceback' not in result.output
    result = Run(args(setup, '--output', str(tmp_path / 'out')), tmp_path / 'count.log', [], {})
    assert result.wait(300) == 2 and 'needs --train-num-samples' in result.output

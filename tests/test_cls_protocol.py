"""The tuning protocol (tools/cls_protocol.py) on tiny real runs through tools/train.py: the
grid runs, the best is chosen from the logged metrics, finished runs are reused, a changed
setting reruns only what it changes, the table's mean ± std is numpy's."""
import importlib.util
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seg_helpers import ROOT
from vapt_mm.cls.protocol import (BENCHMARKS, RECORD, Run, Task, command_of, execute_run,
                                  learning_rates, locate, tune)

CONFIG = """
_base_ = ['{root}/configs/_base_/vapt_cls_runtime.py']
pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
dataset = dict(type='CustomDataset', data_root='{data}', pipeline=pipeline)
train_dataloader = dict(batch_size=4, num_workers=0, sampler=dict(type='InfiniteSampler'),
                        dataset=dict(**dataset, data_prefix='train'))
val_dataloader = dict(batch_size=16, num_workers=0, sampler=dict(type='DefaultSampler',
                      shuffle=False), dataset=dict(**dataset, data_prefix='val'))
val_evaluator = dict(type='Accuracy', topk=(1, ))
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=[127.5] * 3, std=[64.0] * 3,
                           to_rgb=True),
    backbone=dict(type='VAPTClsBackbone', img_size=16, prompt_cfg=dict(num_tokens=2),
                  vit=dict(type='VisionTransformer', patch_size=8, arch=dict(
                      embed_dims=16, num_layers=2, num_heads=2, feedforward_channels=32))),
    neck=None, head=dict(type='LinearClsHead', num_classes=2, in_channels=16))
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.05, weight_decay=0.0))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=3, val_interval=3)
val_cfg = dict()
default_hooks = dict(logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
                     checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=3))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
"""


def write_images(root: Path) -> None:
    """Reddish vs bluish 16x16 PNGs, a weak signal in noise, in CustomDataset's layout."""
    rng = np.random.default_rng(0)
    for split, count in (('train', 6), ('val_select', 10), ('test', 10)):
        for label, channel in (('blue', 2), ('red', 0)):
            (root / split / label).mkdir(parents=True)
            for i in range(count):
                image = rng.integers(0, 200, (16, 16, 3), dtype=np.uint8)
                image[..., channel] = np.clip(image[..., channel] + 40, 0, 255)
                Image.fromarray(image).save(root / split / label / f'{i}.png')


@pytest.fixture(scope='module')
def space(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('cls_protocol')
    write_images(root / 'data')
    (root / 'vapt_tiny.py').write_text(CONFIG.format(root=ROOT, data=root / 'data'))
    return root


_SPEC = importlib.util.spec_from_file_location('cls_protocol', ROOT / 'tools' / 'cls_protocol.py')
cls_protocol = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(cls_protocol)


def protocol(space, capsys, *args):
    """tools/cls_protocol.py in this process; its runs are tools/train.py subprocesses."""
    code = cls_protocol.main([str(space / 'vapt_tiny.py'), '--work-dir', str(space / 'runs'),
                              '--wds', '0', *map(str, args)])
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    return out


def logged(folder: Path) -> float:
    """The last accuracy/top1 of a run, read from mmengine's json log itself."""
    [log] = folder.glob('*/vis_data/scalars.json')
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    return [entry['accuracy/top1'] for entry in lines if 'accuracy/top1' in entry][-1]


def test_search_choice_reuse_rerun_and_table(space, capsys):
    out = protocol(space, capsys, '--lrs', 0.05, 1e-5, '--seeds', 0)
    assert '3 runs trained, 0 reused' in out
    search = {lr: logged(space / 'runs/vapt_tiny/search' / f'lr{lr:g}_wd0') for lr in (0.05, 1e-5)}
    chosen = max(search, key=lambda lr: (search[lr], -lr))
    final_dir = space / 'runs/vapt_tiny/final/seed0'
    record = json.loads((final_dir / RECORD).read_text())
    assert record['settings']['overrides']['optim_wrapper.optimizer.lr'] == chosen
    assert record['settings']['overrides']['val_dataloader.dataset.data_prefix'] == 'test'
    assert record['settings']['overrides']['train_dataloader.dataset.data_prefix'] == 'train'
    search_record = json.loads((space / f'runs/vapt_tiny/search/lr{chosen:g}_wd0' / RECORD)
                               .read_text())
    assert search_record['settings']['overrides']['val_dataloader.dataset.data_prefix'] == \
        'val_select'
    # Nothing changed: nothing runs. One more seed: only that run.
    assert '0 runs trained, 3 reused' in protocol(space, capsys, '--lrs', 0.05, 1e-5, '--seeds', 0)
    out = protocol(space, capsys, '--lrs', 0.05, 1e-5, '--seeds', 0, 7)
    assert '1 runs trained, 3 reused' in out
    finals = [logged(space / 'runs/vapt_tiny/final' / f'seed{s}') for s in (0, 7)]
    table = (space / 'runs' / 'table.md').read_text()
    row = re.search(r'\| vapt \| tiny \| ([0-9.e-]+) \| 0 \| ([0-9.]+) \| ([0-9.]+) ± ([0-9.]+) '
                    r'\| 2 \|', table)
    assert row, table
    assert float(row.group(1)) == chosen and float(row.group(2)) == pytest.approx(search[chosen],
                                                                                  abs=5e-3)
    assert float(row.group(3)) == pytest.approx(np.mean(finals), abs=5e-3)
    assert float(row.group(4)) == pytest.approx(np.std(finals), abs=5e-3)


def test_changed_config_content_runs_in_a_fresh_folder(space, tmp_path):
    config = tmp_path / 'vapt_tiny.py'
    config.write_text(CONFIG.format(root=ROOT, data=space / 'data'))
    run = Run(Task.from_file(str(config)), 'search', 'lr1_wd0', {'x': 1})
    first, record = locate(tmp_path / 'runs', run)
    assert record is None and first.name == 'lr1_wd0'
    first.mkdir(parents=True)
    (first / RECORD).write_text(json.dumps({'settings': {'other': 1}, 'metric': 50.0}))
    assert locate(tmp_path / 'runs', run) == (first.parent / 'lr1_wd0-2', None)
    config.write_text(config.read_text().replace('max_iters=3, val_interval=3',
                                                 'max_iters=4, val_interval=4'))
    assert Task.from_file(str(config)).sha256 != run.task.sha256


def test_an_interrupted_run_resumes_and_its_metric_is_read(space, tmp_path):
    task = Task.from_file(str(space / 'vapt_tiny.py'))
    commands = []

    def fake(command):
        commands.append(command)
        work = Path(command[command.index('--work-dir') + 1]) / '20260101_000000' / 'vis_data'
        work.mkdir(parents=True)
        work.joinpath('scalars.json').write_text('{"loss": 1.0, "step": 1}\n'
                                                 '{"accuracy/top1": 62.5, "step": 3}\n')
        return 0
    run = Run(task, 'final', 'seed3', {'randomness.seed': 3})
    folder, _ = locate(tmp_path, run)
    folder.mkdir(parents=True)
    (folder / RECORD).write_text(json.dumps({'settings': json.loads(json.dumps(
        {'config': task.config, 'config_sha256': task.sha256,
         'overrides': {'randomness.seed': 3}})), 'metric': None}))
    done = execute_run(tmp_path, run, ['train'], 'accuracy/top1', fake)
    assert done.metric == 62.5 and '--resume' in commands[0] and done.work_dir == folder
    assert json.loads((folder / RECORD).read_text())['metric'] == 62.5
    assert execute_run(tmp_path, Run(task, 'final', 'seed3', {'randomness.seed': 3}),
                       ['train'], 'accuracy/top1', fake).reused and len(commands) == 1


def test_splits_grid_and_launcher(space, tmp_path):
    task = Task.from_file(str(space / 'vapt_tiny.py'))
    assert task.method == 'vapt' and task.task == 'tiny' and task.batch_size == 4
    assert task.benchmark is BENCHMARKS['CustomDataset']
    assert learning_rates(task, None, None, None)[0] == pytest.approx(50.0 * 4 / 256)
    assert learning_rates(task, [1.0], None, 64) == [0.25]
    vtab = Task.from_file(str(ROOT / 'configs/vtab1k/vapt_cifar.py'))
    assert vtab.benchmark.search['train_dataloader.dataset.split'] == 'train800'
    assert vtab.benchmark.final['val_dataloader.dataset.split'] == 'test'
    fgvc = Task.from_file(str(ROOT / 'configs/fgvc/full-ft_cub.py'))
    assert fgvc.benchmark.final['train_dataloader.dataset.split'] == 'train'
    assert learning_rates(fgvc, None, None, None) == pytest.approx(
        [b * 64 / 256 for b in (0.005, 0.001, 0.0005, 0.0001)])
    run = Run(task, 'search', 't', {'b': 2, 'a': 1}, work_dir=tmp_path)
    assert command_of(run, ['bash', 'tools/dist_train.sh', '{config}', '4'], True) == [
        'bash', 'tools/dist_train.sh', task.config, '4', '--work-dir', str(tmp_path),
        '--resume', '--cfg-options', 'a=1', 'b=2']
    row = tune(task, tmp_path / 'dry', [0.1], [0.0], [1], ['train'], {}, dry_run=True)
    assert row['final'] == [] and not (tmp_path / 'dry').exists()
    shutil.rmtree(tmp_path)

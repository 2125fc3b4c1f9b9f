"""Learning-rate selection for the segmentation study, on its own draw of the target set.

    python benchmarks/select_lr_seg.py --recipe deep   # 96 runs of 150 iterations, ~50 min

Every method gets the same search: each base lr of ``--lrs`` at each data
fraction and seed, trained by ``sample_efficiency_seg.run_study`` on the
target set generated with ``--data-seed`` (1 by default; the study reports on
seed 0, so the selection never sees the reported validation images). Prints
a Markdown table of the mean val mIoU per method and lr and each method's
best lr; finished runs in ``OUT/lr<LR>/runs`` are reused.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from statistics import mean
from typing import Dict, List, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sample_efficiency_seg import METHODS, run_study  # noqa: E402


def selection_table(results: Dict[float, List[dict]], methods: Sequence[str]) -> str:
    """Markdown: mean metric per method (rows) and lr (columns), the best lr per method."""
    lrs = sorted(results)
    lines = ['| method | ' + ' | '.join(f'lr {lr:g}' for lr in lrs) + ' | best lr |',
             '|---|' + '---:|' * (len(lrs) + 1)]
    for method in methods:
        means = {lr: mean(r['metric'] for r in results[lr] if r['method'] == method)
                 for lr in lrs}
        best = max(means, key=means.get)
        lines.append(f'| {method} | ' + ' | '.join(f'{means[lr]:.2f}' for lr in lrs)
                     + f' | {best:g} |')
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--recipe', default='default', help='pretraining recipe of the ViT')
    parser.add_argument('--methods', nargs='+', choices=METHODS, default=list(METHODS))
    parser.add_argument('--lrs', type=float, nargs='+',
                        default=(1e-3, 5e-3, 2.5e-2, 1e-1, 0.5, 2.5),
                        help='base learning rates to compare')
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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out_dir = Path(args.out_dir or f'work_dirs/select_lr_seg_{args.recipe}_{args.target}')
    results = {lr: run_study(args.methods, args.fractions, args.seeds, args.iters, args.train,
                             args.val, out_dir / f'lr{lr:g}', args.recipe,
                             {'optim_wrapper.optimizer.lr': lr}, args.data_seed,
                             target=args.target)
               for lr in args.lrs}
    table = selection_table(results, args.methods)
    (out_dir / 'selection.md').write_text(table + '\n')
    print(table)


if __name__ == '__main__':
    main()

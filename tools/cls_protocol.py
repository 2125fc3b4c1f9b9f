"""The paper's tuning protocol on classification configs: lr x wd search, seeded final runs.

    python tools/cls_protocol.py configs/vtab1k/vapt_cifar.py configs/vtab1k/vpt-deep_cifar.py \\
        --work-dir work_dirs/protocol --out work_dirs/protocol/table.md
    python tools/cls_protocol.py configs/fgvc/vapt_cub.py --base-lrs 10 5 --wds 0.001 0 \\
        --seeds 42 44 --launcher-cmd 'bash tools/dist_train.sh {config} 4' \\
        --cfg-options train_dataloader.batch_size=16 --batch 64
    python tools/cls_protocol.py configs/vtab1k/vapt_*.py --dry-run    # print the commands

For each config (``<method>_<task>.py``, one per method and task): one run per
lr and weight decay on the search splits (VTAB-1k train800 / val200, FGVC train /
val, folder sets train / val_select), the best by the validation metric (ties to
the smaller lr), then one run per seed on the final splits (train800val200 or
train) reporting the test split. The default grid is the official VAPT code's
for the method (``tune_vtab.py``): base lrs x global batch / 256 (the global
batch: ``--batch``, else the config's train batch size; give it when a launcher
splits the batch over GPUs) and weight decays {0.01, 0.001, 1e-4, 0}; seeds
{42, 44, 82, 100, 800}. Finished runs with identical settings are reused; run
the same command again after an interruption. Writes the Markdown table of mean
± std (numpy, ddof=0) per method and task to ``--out``.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from mmengine.config import DictAction

from vapt_mm.cls.protocol import (SEEDS, WEIGHT_DECAYS, RunFailed, Task, default_launcher,
                                  format_table, learning_rates, tune)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+', help='one config per method and task')
    parser.add_argument('--work-dir', default='work_dirs/cls_protocol',
                        help='the runs go to WORK_DIR/<config name>/{search,final}/')
    parser.add_argument('--out', help='the Markdown table (default: WORK_DIR/table.md)')
    grid = parser.add_mutually_exclusive_group()
    grid.add_argument('--base-lrs', type=float, nargs='+',
                      help='base lrs, x global batch / 256 (default: the official grid)')
    grid.add_argument('--lrs', type=float, nargs='+', help='optimizer lrs as they are')
    parser.add_argument('--batch', type=int, help='global batch size for the lr scaling')
    parser.add_argument('--wds', type=float, nargs='+', default=list(WEIGHT_DECAYS),
                        help='weight decays')
    parser.add_argument('--seeds', type=int, nargs='+', default=list(SEEDS),
                        help='seeds of the final runs')
    parser.add_argument('--metric', default='accuracy/top1', help='the logged metric to compare')
    parser.add_argument('--launcher-cmd', default=None,
                        help="the run command before the config's options, e.g. 'bash "
                        "tools/dist_train.sh {config} 4' (default: python tools/train.py)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='overrides for every run, key=value')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the commands of the runs still to do; run nothing')
    args = parser.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        parser.error('--seeds repeats a seed.')
    launcher = shlex.split(args.launcher_cmd) if args.launcher_cmd else default_launcher()
    root = Path(args.work_dir)
    try:
        tasks = [Task.from_file(config) for config in args.configs]
        rows = [tune(task, root, learning_rates(task, args.base_lrs, args.lrs, args.batch),
                     args.wds, args.seeds, launcher, dict(args.cfg_options), args.metric,
                     dry_run=args.dry_run)
                for task in tasks]
    except (FileNotFoundError, ValueError, RunFailed) as error:
        print(f'cls_protocol: {error}', file=sys.stderr)
        return 1
    if args.dry_run:
        return 0
    table = format_table(rows, args.metric)
    out = Path(args.out) if args.out else root / 'table.md'
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + '\n')
    reused = sum(r.reused for row in rows for r in row['search'] + row['final'])
    total = sum(len(row['search']) + len(row['final']) for row in rows)
    print(f'{table}\n\n{total - reused} runs trained, {reused} reused; table: {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Train a segmentor with VAPT (mmseg's tools/train.py, plus CPU and data-fraction options).

Exit codes: 0 trained; 75 stopped by SIGTERM/SIGUSR1 after writing a checkpoint (``--resume``
continues); 74 a checkpoint could not be written (the earlier ones are kept); 1 other errors.
"""
import argparse
import gc
import logging
import os
import shlex
import sys

import torch.distributed as dist
from mmengine.config import DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

from vapt_mm.cluster import (EXIT_SAVE_FAILED, catch_stop_signals, ignore_stop_signals,
                             restart_count)
from vapt_mm.seg import PreemptionHook
from vapt_mm.seg.checkpoint import (CheckpointWriteError, NoCompleteCheckpointError,
                                    resume_checkpoint)
from vapt_mm.seg.checks import check_data_roots, check_resume_fits
from vapt_mm.seg.runtime import load_config, prepare_runtime
from vapt_mm.seg.workers import protect_loader_workers


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', action='store_true', default=False,
                        help='resume from the latest checkpoint in the work_dir automatically '
                        '(implied when torchrun restarts the workers, --max-restarts)')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training')
    parser.add_argument('--data-fraction', type=float, default=None,
                        help='train on this fraction (0, 1] of the training set')
    parser.add_argument('--data-seed', type=int, default=0,
                        help='seed choosing the --data-fraction subset')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override some settings in the used config, the key-value pair '
                        'in xxx=yyy format will be merged into config file.')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main() -> int:
    args = parse_args()
    cfg = load_config(args.config, args.launcher, args.cfg_options, args.work_dir)
    if args.amp:
        if cfg.optim_wrapper.type == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.', logger='current',
                      level=logging.WARNING)
        else:
            assert cfg.optim_wrapper.type == 'OptimWrapper', (
                '`--amp` is only supported when the optimizer wrapper type is '
                f'`OptimWrapper` but got {cfg.optim_wrapper.type}.')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.data_fraction is not None:
        cfg.train_dataloader.dataset = dict(type='RandomSubsetDataset', fraction=args.data_fraction,
                                            seed=args.data_seed,
                                            dataset=cfg.train_dataloader.dataset)
    restarts = restart_count()
    cfg.resume = args.resume or restarts > 0  # restarted by torchrun: go on from the last save
    if cfg.resume and cfg.get('load_from') is None:
        try:
            cfg.load_from = resume_checkpoint(cfg.work_dir)  # None: nothing to resume, start anew
        except NoCompleteCheckpointError as error:
            raise SystemExit(no_complete_checkpoint(error, args.config, cfg.work_dir))
    check_data_roots(cfg, ['train_dataloader', 'val_dataloader'])
    prepare_runtime(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    if restarts:
        print_log(f'restart {restarts} of the workers by torchrun: resuming from '
                  f'{cfg.load_from or "the start (no checkpoint yet)"}', logger='current')
    if any(isinstance(hook, PreemptionHook) for hook in runner.hooks):
        catch_stop_signals()  # before runner.train() forks the DataLoader workers (inherited)
        protect_loader_workers(runner)  # and the workers ignore them
    if cfg.resume and cfg.load_from:
        check_resume_fits(runner.model, cfg.load_from)
    code = train(runner)
    ignore_stop_signals()  # training is over: leave with ``code``, not killed by a late signal
    # DDP's reducer must not outlive the process group: destroyed from there (or while the
    # interpreter shuts down), gloo's group waits for its worker thread while holding the GIL
    # that thread may need.
    del runner
    gc.collect()
    if dist.is_initialized():
        dist.destroy_process_group()
    return code


def no_complete_checkpoint(error: NoCompleteCheckpointError, config: str, work_dir: str) -> str:
    """``error``'s message and the ways on: start over, or resume from another file."""
    command = [sys.argv[0], *(a for a in sys.argv[1:] if a != '--resume')]
    other = [sys.argv[0], config, '--work-dir', work_dir, '--resume', '--cfg-options',
             'load_from=OTHER.pth']
    stale = error.files + [p for p in [os.path.join(work_dir, 'last_checkpoint')]
                           if os.path.exists(p)]
    return (f'--resume: {error}\n'
            'To start over, run without --resume (or delete the stale files, '
            f'rm {shlex.join(stale)}, and keep --resume):\n'
            f'    python {shlex.join(command)}\n'
            'To resume from a complete checkpoint elsewhere (e.g. in the original work dir):\n'
            f'    python {shlex.join(other)}')


def train(runner: Runner) -> int:
    """``runner.train()``; the exit code."""
    try:
        runner.train()
    except CheckpointWriteError as error:
        print_log(str(error), logger='current', level=logging.ERROR)
        return EXIT_SAVE_FAILED
    except SystemExit as stop:  # PreemptionHook: stopped after writing a checkpoint
        return stop.code
    return 0


if __name__ == '__main__':
    sys.exit(main())

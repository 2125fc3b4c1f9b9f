"""Preemption: on SIGTERM or SIGUSR1 every rank finishes the iteration, one checkpoint of
it is written, and the process exits with ``EXIT_PREEMPTED``."""
from __future__ import annotations

from typing import Any, Optional

from mmengine.dist import barrier
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ..cluster import EXIT_PREEMPTED, agree_stop, catch_stop_signals, signal_name
from .checkpoint import RNGStateHook, checkpoint_due


def iteration_checkpoint_hook(runner) -> Optional[CheckpointHook]:
    """The runner's iteration-based ``CheckpointHook``, if it has one."""
    return next((hook for hook in runner.hooks
                 if isinstance(hook, CheckpointHook) and not hook.by_epoch), None)


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Stops training at an iteration boundary on SIGTERM or SIGUSR1 (SLURM preemption,
    ``--signal=USR1@90``, torchrun's shutdown), with a checkpoint to resume from.

    After every training iteration the ranks agree (one all-reduce) on whether any of
    them received such a signal; if so, all finish that iteration, ``CheckpointHook``
    writes its checkpoint (unless it just did), the loop ends after that iteration's
    validation if one is due, and every process exits with ``EXIT_PREEMPTED`` (75).
    ``--resume`` then continues as after a planned stop. A signal during the last
    iteration lets the run end normally. tools/train.py installs the signal handlers
    before the DataLoader workers start (they inherit them); other tools get them at
    ``before_train``.
    """

    priority = 'LOWEST'  # after ParamSchedulerHook, RNGStateHook and CheckpointHook

    def __init__(self) -> None:
        self.stopped_by = 0

    def before_train(self, runner) -> None:
        if iteration_checkpoint_hook(runner) is None:
            raise ValueError('PreemptionHook writes its checkpoint with an iteration-based '
                             'CheckpointHook (default_hooks.checkpoint with by_epoch=False), '
                             'which this config lacks; add one, or remove PreemptionHook from '
                             'custom_hooks.')
        catch_stop_signals()

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Optional[dict] = None) -> None:
        signum = agree_stop()  # every rank, every iteration
        if not signum or self.is_last_train_iter(runner):
            return
        checkpoint_hook = iteration_checkpoint_hook(runner)
        if not checkpoint_due(runner):
            for hook in runner.hooks:
                if isinstance(hook, RNGStateHook):
                    hook.gather()
            # CheckpointHook's own save: its file names, max_keep_ckpts and last_checkpoint.
            checkpoint_hook._save_checkpoint(runner)
        barrier()  # no rank leaves before the checkpoint is written
        runner.train_loop.stop_training = True
        self.stopped_by = signum
        print_log(f'{signal_name(signum)}: stopped after iteration {runner.iter + 1}, saved in '
                  f'{checkpoint_hook.last_ckpt}; continue with --resume (exit code '
                  f'{EXIT_PREEMPTED}).', logger='current')

    def after_run(self, runner) -> None:
        if self.stopped_by:
            raise SystemExit(EXIT_PREEMPTED)

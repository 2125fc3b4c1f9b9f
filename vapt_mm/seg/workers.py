"""DataLoader workers that leave the stop signals to their main process."""
import logging
from typing import Any

from mmengine.dataset import worker_init_fn as seed_worker
from mmengine.logging import print_log
from mmengine.registry import FUNCTIONS
from mmengine.runner import Runner

from vapt_mm.cluster import leave_stop_signals_to_parent

LOADERS = ('_train_dataloader', '_val_dataloader', '_test_dataloader')


@FUNCTIONS.register_module()
def stop_signal_safe_worker_init(worker_id: int, num_workers: int, rank: int, seed: int,
                                 disable_subprocess_warning: bool = False) -> None:
    """mmengine's worker seeding, then ``leave_stop_signals_to_parent``."""
    seed_worker(worker_id, num_workers, rank, seed, disable_subprocess_warning)
    leave_stop_signals_to_parent(worker_id)


def protect_loader_workers(runner: Runner) -> None:
    """Give the runner's data loaders with workers ``stop_signal_safe_worker_init``, with the
    arguments mmengine's default seeding gets (so the data and augmentation stay the same).
    Must run after ``Runner.from_cfg`` (rank and seed known) and before ``runner.train()``
    builds the loaders. A loader whose config names its own ``worker_init_fn`` keeps it."""
    for name in LOADERS:
        loader: Any = getattr(runner, name)  # still the config: the runner builds it lazily
        if not isinstance(loader, dict) or not loader.get('num_workers'):
            continue
        if 'worker_init_fn' in loader:
            print_log(f'{name[1:]} has its own worker_init_fn: its workers die of a SIGTERM '
                      'that does not come from their parent (add vapt_mm.cluster.'
                      'leave_stop_signals_to_parent to it)', logger='current',
                      level=logging.WARNING)
            continue
        loader['worker_init_fn'] = dict(
            type='stop_signal_safe_worker_init', num_workers=loader['num_workers'],
            rank=runner.rank, seed=runner.seed,
            disable_subprocess_warning=loader.pop('disable_subprocess_warning', False))

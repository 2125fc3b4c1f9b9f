"""A fault for the classification training subprocesses: SIGTERM to the process itself."""
import os
import signal

from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class SigtermAt(Hook):
    """Sends SIGTERM to this process after training iteration ``iteration`` (1-based)."""

    priority = 'VERY_HIGH'

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.iteration:
            os.kill(os.getpid(), signal.SIGTERM)

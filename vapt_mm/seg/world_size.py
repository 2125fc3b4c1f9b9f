"""The number of processes and the global batch of a checkpoint, and what a resume on
other ones keeps exact."""
from __future__ import annotations

import logging
from typing import Optional, Tuple

from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ..cluster import world_size_note
from .checkpoint import RNG_STATES

#: Key in ``checkpoint['meta']``: ``dict(world_size=..., global_batch=...)``.
WORLD = 'vapt_world'


def global_batch(runner) -> int:
    return runner.cfg.train_dataloader.batch_size * get_world_size()


@HOOKS.register_module()
class WorldSizeHook(Hook):
    """Records the number of processes and the global batch in every checkpoint; when
    training resumes on another number (or another global batch), logs what stays exact
    instead of diverging silently. Checkpoints without the record give their number of
    processes by their RNG states (``RNGStateHook``)."""

    def __init__(self) -> None:
        self._saved: Optional[Tuple[int, Optional[int]]] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})[WORLD] = dict(world_size=get_world_size(),
                                                        global_batch=global_batch(runner))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        world = checkpoint.get('meta', {}).get(WORLD)
        if world is not None:
            self._saved = world['world_size'], world['global_batch']
        elif checkpoint.get(RNG_STATES) is not None:
            self._saved = len(checkpoint[RNG_STATES]), None

    def before_train(self, runner) -> None:
        if self._saved is None or not runner.cfg.get('resume'):
            return  # not resuming (``load_from`` only loads weights)
        saved, saved_batch = self._saved
        note = world_size_note(saved, get_world_size(), saved_batch, global_batch(runner))
        if note:
            print_log(note, logger='current', level=logging.WARNING)

"""Checkpoints that hold only what trains, written atomically."""
from __future__ import annotations

import glob
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Union

import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import find_latest_checkpoint
from mmseg.registry import HOOKS
from torch import nn

from ..weights.files import is_complete

#: Key in ``checkpoint['meta']`` marking a checkpoint without frozen weights.
TRAINABLE_ONLY = 'vapt_trainable_only'
#: Checkpoint key of the per-rank torch RNG states (``RNGStateHook``).
RNG_STATES = 'vapt_rng_states'


def frozen_keys(model: nn.Module) -> Set[str]:
    """State-dict keys of the parameters that do not train."""
    return {name for name, param in model.named_parameters() if not param.requires_grad}


def runner_model(runner) -> nn.Module:
    """The runner's model without its DDP (or other) wrapper."""
    return runner.model.module if is_model_wrapper(runner.model) else runner.model


def is_trainable_only(checkpoint: Dict) -> bool:
    return bool(checkpoint.get('meta', {}).get(TRAINABLE_ONLY, False))


@HOOKS.register_module()
class TrainableCheckpointHook(Hook):
    """Drops the frozen parameters from every checkpoint the runner saves.

    Resuming and testing take them from the pretrained file again
    (``VAPTBackbone.init_weights``): training initialises the model before it
    loads a checkpoint, and for ``Runner.test``/``val``, which do not, the hook
    calls ``init_weights`` before the checkpoint is loaded, so ``load_from``
    with such a file never leaves the frozen weights random.
    ``tools/merge_checkpoint.py`` writes a full checkpoint. Optimizer,
    scheduler and message-hub state are kept.
    """

    priority = 'VERY_LOW'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # Runner.load_checkpoint calls this before it loads the state dict.
        model = runner_model(runner)
        if is_trainable_only(checkpoint) and not getattr(model, 'is_init', True):
            print_log('the checkpoint holds trainable weights only; frozen weights come from '
                      'the pretrained file (init_weights).', logger='current')
            model.init_weights()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner_model(runner)
        state = checkpoint['state_dict']
        for key in frozen_keys(model):
            state.pop(key, None)
        checkpoint.setdefault('meta', {})[TRAINABLE_ONLY] = True


def torch_rng_state() -> Dict[str, Any]:
    """This process's torch CPU RNG state and that of its current CUDA device."""
    return {'cpu': torch.get_rng_state(),
            'cuda': torch.cuda.get_rng_state() if torch.cuda.is_available() else None}


def checkpoint_due(runner) -> bool:
    """Whether a ``CheckpointHook`` saves after this training iteration."""
    return any(isinstance(hook, CheckpointHook) and not hook.by_epoch and (
        hook.every_n_train_iters(runner, hook.interval, hook.save_begin)
        or (hook.save_last and hook.is_last_train_iter(runner))) for hook in runner.hooks)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Saves every rank's torch RNG state in the checkpoints and restores it on
    resume, so a resumed iteration-based run draws the same dropout masks as an
    uninterrupted one.

    The numpy and Python RNGs need no saving: on resume mmengine seeds them
    again and replays the data pipeline of the iterations already trained
    (``IterBasedTrainLoop`` skips data by loading it), which leaves them as
    they were. The torch state is restored after that replay, right before
    the first resumed iteration. The states of another number of processes do
    not map onto this one: they are then left as mmengine seeded them
    (``WorldSizeHook`` logs what that changes).
    """

    priority = 'LOW'  # after_train_iter before CheckpointHook (VERY_LOW)

    def __init__(self) -> None:
        self._gathered: Optional[List[Dict[str, Any]]] = None
        self._pending: Optional[Dict[str, Any]] = None
        self._pending_iter = -1

    def gather(self) -> None:
        """Collect every rank's state for the next checkpoint: a collective that all ranks
        call (the checkpoint itself is written by rank 0 only)."""
        if get_world_size() > 1:
            self._gathered = all_gather_object(torch_rng_state())

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Any = None) -> None:
        if checkpoint_due(runner):
            self.gather()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = self._gathered if get_world_size() > 1 else [torch_rng_state()]
        if states is not None:
            checkpoint[RNG_STATES] = states

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        states = checkpoint.get(RNG_STATES)
        if states is None or len(states) != get_world_size():
            return
        self._pending = states[get_rank()]
        self._pending_iter = checkpoint.get('meta', {}).get('iter', -1)

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        # Only when resuming (the loop starts at the checkpoint's iteration), not for load_from.
        if self._pending is not None and runner.iter == self._pending_iter:
            torch.set_rng_state(self._pending['cpu'])
            if self._pending['cuda'] is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state(self._pending['cuda'])
        self._pending = None


def numbered_checkpoints(work_dir: str) -> List[str]:
    """The ``iter_*.pth``/``epoch_*.pth`` files of ``work_dir``, the highest number first."""
    found = [(int(m.group(1)), path) for path in glob.glob(os.path.join(work_dir, '*.pth'))
             if (m := re.fullmatch(r'(?:iter|epoch)_(\d+)\.pth', os.path.basename(path)))]
    return [path for _, path in sorted(found, reverse=True)]


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` continues from: the one ``last_checkpoint``
    names if it is complete, else the complete ``iter_*.pth``/``epoch_*.pth``
    of the highest number; ``None`` if there is none."""
    named = find_latest_checkpoint(work_dir)
    if named and is_complete(named):
        return named
    for path in numbered_checkpoints(work_dir):
        if is_complete(path):
            if named:
                print_log(f'last_checkpoint names {named!r}, which is missing or incomplete; '
                          f'resuming from {path}, the newest complete checkpoint.',
                          logger='current')
            return path
    return None


class NoCompleteCheckpointError(FileNotFoundError):
    """The work dir has checkpoints (or ``last_checkpoint`` names one), none of them
    complete: a truncated, half-copied or missing file. ``files`` lists them."""

    def __init__(self, work_dir: str, files: List[str]) -> None:
        self.files = files
        listed = ', '.join(f'{path} ({"incomplete" if os.path.exists(path) else "missing"})'
                           for path in files)
        super().__init__(f'no complete checkpoint is left in {work_dir} to resume from: '
                         f'{listed}; a truncated or partly copied file lacks the zip '
                         'directory torch writes last.')


def resume_checkpoint(work_dir: str) -> Optional[str]:
    """``latest_checkpoint`` for ``--resume``; ``None`` when ``work_dir`` holds no
    checkpoint at all (the run starts anew).

    Raises:
        NoCompleteCheckpointError: checkpoints are there but none is complete
            (mmengine would otherwise load the one ``last_checkpoint`` names and
            fail in torch's zip reader).
    """
    latest = latest_checkpoint(work_dir)
    if latest is not None:
        return latest
    named = find_latest_checkpoint(work_dir)
    files = numbered_checkpoints(work_dir) + ([named] if named else [])
    if files:
        raise NoCompleteCheckpointError(work_dir, list(dict.fromkeys(files)))
    return None


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (full disk, quota, permissions); the message names
    it and the newest complete checkpoint, which the failed write left as it was."""

    def __init__(self, path: str, error: OSError) -> None:
        newest = latest_checkpoint(os.path.dirname(os.path.abspath(path)))
        super().__init__(error.errno, (
            f'could not write the checkpoint {path} ({error}); training stopped. The newest '
            f'complete checkpoint is {newest or "none yet"}: free disk space '
            'or fix the folder\'s permissions, then continue with --resume.'))


class AtomicLocalBackend(LocalBackend):
    """Local file backend whose writes go to a temporary file, synced to the disk, then
    renamed, so an interrupted save never leaves a truncated checkpoint, and a failed one
    (also an error a network file system reports only on sync) raises
    ``CheckpointWriteError`` with the earlier files untouched."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        try:
            self._write(obj, str(filepath))
        except OSError as error:
            raise CheckpointWriteError(str(filepath), error) from error

    @staticmethod
    def _write(obj: bytes, filepath: str) -> None:
        directory = os.path.dirname(os.path.abspath(filepath))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp_')
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(obj)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, filepath)
        except BaseException:
            os.unlink(tmp)
            raise

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        self.put(obj.encode(encoding), filepath)


register_backend('atomic_local', AtomicLocalBackend, force=True)

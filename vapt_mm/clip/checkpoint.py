"""Training checkpoints: trainable weights, optimizer, scaler, step and RNG, loaded safely."""
from __future__ import annotations

import json
import os
import pickle
import random
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from vapt_mm.core import trainable_state_dict
from vapt_mm.weights.files import is_complete


def rng_state() -> Dict[str, Any]:
    """This process's torch (CPU and CUDA) and Python RNG states."""
    return {'torch': torch.get_rng_state(),
            'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            'python': random.getstate()}


def set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state['torch'])
    if state['cuda'] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])
    random.setstate(state['python'])


def save_checkpoint(path: str, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scaler: Optional[torch.amp.GradScaler], step: int,
                    rng_states: List[Dict[str, Any]], global_batch: Optional[int] = None,
                    extra: Optional[Dict[str, Any]] = None) -> None:
    """Write the state to resume from (``rng_states``: one per rank; ``extra``: more entries
    of plain values, e.g. the samples seen and the best validation) atomically: to a
    temporary file, synced to the disk, then renamed. A failed write (full disk, quota,
    permissions; also an error a network file system reports only on sync) raises with
    ``path`` left as it was and the temporary file removed."""
    state = {'step': step,
             'trainable': {n: t.cpu() for n, t in trainable_state_dict(model).items()},
             'optimizer': optimizer.state_dict(),
             'scaler': scaler.state_dict() if scaler is not None else {},
             'rng': rng_states,
             'global_batch': global_batch,
             **(extra or {})}
    tmp = f'{path}.tmp'
    try:
        with open(tmp, 'wb') as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class IncompleteCheckpointError(RuntimeError):
    """A checkpoint file torch cannot read: truncated, partly copied or empty."""


def check_param_groups(optimizer: torch.optim.Optimizer, saved: Dict[str, Any],
                       path: str) -> None:
    """Refuse a checkpoint whose optimiser groups (sizes, lr multipliers) differ from
    ``optimizer``'s: torch would fail on other sizes and silently keep the checkpoint's
    multipliers, dropping a changed ``--generator-lr-mult``."""
    def groups(param_groups) -> List[Tuple[int, float]]:
        return [(len(g['params']), g.get('lr_mult', 1.0)) for g in param_groups]

    then, now = groups(saved['param_groups']), groups(optimizer.param_groups)
    if then != now:
        raise ValueError(f'checkpoint {path} was trained with other optimiser groups '
                         f'(parameters and lr multiplier per group: {then}; now {now}). Resume '
                         'with the --generator-lr-mult it was trained with, or train into a '
                         'new --output.')


def load_checkpoint(path: str, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scaler: Optional[torch.amp.GradScaler]) -> Dict[str, Any]:
    """Restore weights, optimizer and scaler from ``path`` (``weights_only=True``).

    Refuses a checkpoint whose trainable tensors differ in name or shape from
    the model's. Returns the checkpoint (for ``step`` and ``rng``).
    """
    if not is_complete(path):
        raise IncompleteCheckpointError(
            f'cannot read {path} (truncated or partly copied: the zip directory torch '
            'writes last is missing); it is not a complete checkpoint, resume from another '
            'one.')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        raise RuntimeError(f'refused to load {path}: it holds objects outside the weights-only '
                           f'allow-list (loading it could run code); resume from a checkpoint of '
                           f'train_retrieval.py. {error}') from error
    except Exception as error:  # a damaged member: RuntimeError, OSError or EOFError
        raise IncompleteCheckpointError(f'cannot read {path} ({error}); it is not a complete '
                                        'checkpoint, resume from another one.') from error
    params = trainable_state_dict(model)
    saved = state['trainable']
    problems = [f'missing {sorted(set(params) - set(saved))}'] if set(params) - set(saved) else []
    if set(saved) - set(params):
        problems.append(f'unexpected {sorted(set(saved) - set(params))}')
    problems += [f'{n}: checkpoint {tuple(t.shape)} vs model {tuple(params[n].shape)}'
                 for n, t in saved.items() if n in params and t.shape != params[n].shape]
    if problems:
        raise ValueError(f'checkpoint {path} does not fit the model (other prompt options or '
                         f'trainable extras?): ' + '; '.join(problems) + '. Resume with the '
                         'options it was trained with, or train into a new --output.')
    check_param_groups(optimizer, state['optimizer'], path)
    with torch.no_grad():
        for name, tensor in saved.items():
            params[name].copy_(tensor)
    optimizer.load_state_dict(state['optimizer'])
    if scaler is not None and state['scaler']:
        scaler.load_state_dict(state['scaler'])
    return state


def truncate_log(path: str, step: int) -> None:
    """Keep the entries of a JSON-lines training log up to ``step`` (and drop a
    half-written last line): a run killed after its last checkpoint logged
    steps that the resumed run trains again. Rewritten atomically."""
    if not os.path.isfile(path):
        return
    kept = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get('step', 0) <= step:
                kept.append(json.dumps(entry) + '\n')
    tmp = f'{path}.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.writelines(kept)
    os.replace(tmp, path)

"""Input and training checks that stop with an error naming the problem and the fix."""
from __future__ import annotations

import logging
import os
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import torch
from mmcv.transforms import LoadImageFromFile
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import find_latest_checkpoint
from mmseg.registry import HOOKS, TRANSFORMS
from torch import nn

from .checkpoint import runner_model
from .weights import read_checkpoint, state_dict_of


def _datasets(node: Any, where: str) -> Iterator[Tuple[str, dict]]:
    """(config path, dict) of ``node`` and of the data sets it wraps."""
    if isinstance(node, dict):
        yield where, node
        if 'dataset' in node:
            yield from _datasets(node['dataset'], f'{where}.dataset')
        for i, inner in enumerate(node.get('datasets') or []):
            yield from _datasets(inner, f'{where}.datasets[{i}]')


def check_data_roots(cfg: Config, loaders: Sequence[str]) -> None:
    """Raise if a ``data_root`` of the data sets of ``loaders`` is not a folder."""
    for loader in loaders:
        if not cfg.get(loader):
            continue
        for where, dataset in _datasets(cfg[loader].get('dataset'), f'{loader}.dataset'):
            root = dataset.get('data_root')
            if root and not os.path.isdir(root):
                raise FileNotFoundError(
                    f'{where}.data_root {root!r} is not a folder; point it at your data set '
                    f'(--cfg-options {where}.data_root=PATH) or generate the demo data with '
                    'tools/make_demo_ade20k.py.')


def check_resume_fits(model: nn.Module, path: str) -> None:
    """Raise if the checkpoint ``path`` was not written for ``model``'s config:
    a trainable weight it lacks, or a tensor of another name or shape."""
    model = model.module if is_model_wrapper(model) else model
    saved = state_dict_of(read_checkpoint(path))
    params = model.state_dict()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    problems = [f'missing {n}' for n in trainable if n not in saved][:5]
    problems += [f'unexpected {n}' for n in saved if n not in params][:5]
    problems += [f'{n}: checkpoint {tuple(t.shape)} vs model {tuple(params[n].shape)}'
                 for n, t in saved.items() if n in params and t.shape != params[n].shape][:5]
    if problems:
        raise ValueError(f'--resume: {path} was written by another config ('
                         + '; '.join(problems) + '); resume with the config it was trained '
                         'with, or train this config into a new --work-dir.')


@HOOKS.register_module()
class InvalidLossHook(Hook):
    """Stops training on a NaN or infinite loss (as mmdet's ``CheckInvalidLossHook``,
    which mmengine lacks), every ``interval`` iterations, with an error that
    names the iteration and the checkpoint to go back to.

    It runs before ``CheckpointHook``, so weights updated from such a loss are
    never saved; earlier checkpoints stay as they were.
    """

    def __init__(self, interval: int = 1) -> None:
        self.interval = interval

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Optional[dict] = None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        loss = outputs['loss']
        if torch.isfinite(loss).all():
            return
        last = find_latest_checkpoint(runner.work_dir) or 'none yet'
        raise FloatingPointError(
            f'the loss is {loss.item()} at iteration {runner.iter + 1}; training stopped '
            f'before saving it (last checkpoint: {last}). Lower the learning rate or check '
            'the data of this iteration, then continue with --resume.')


class BatchCheckHook(Hook):
    """Runs ``_check(runner, data_batch)`` before every training, validation and test batch."""

    def _check(self, runner, data_batch: Optional[dict]) -> None:
        raise NotImplementedError

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        self._check(runner, data_batch)

    def before_val_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        self._check(runner, data_batch)

    def before_test_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        self._check(runner, data_batch)


@HOOKS.register_module()
class SegLabelCheckHook(BatchCheckHook):
    """Checks that every ground-truth label is a class index or the ignore index.

    mmseg would otherwise fail deep in the loss (training) or silently leave
    such pixels out of the IoU (validation, test). The check is a comparison
    per batch, after the data pipeline (labels as the model sees them).
    """

    def _check(self, runner, data_batch: Optional[dict]) -> None:
        model = runner_model(runner)
        num_classes = getattr(model, 'num_classes', None)
        head = getattr(model, 'decode_head', None)
        head = head[-1] if isinstance(head, nn.ModuleList) else head
        ignore = getattr(head, 'ignore_index', 255)
        if num_classes is None or not data_batch:
            return
        for sample in data_batch.get('data_samples', []):
            if 'gt_sem_seg' not in sample:
                continue
            labels = sample.gt_sem_seg.data
            bad = ((labels >= num_classes) & (labels != ignore)) | (labels < 0)
            if bad.any():
                values: List[int] = labels[bad].unique()[:10].tolist()
                raise ValueError(
                    f'{sample.metainfo.get("seg_map_path", "an annotation")} has label(s) '
                    f'{values} outside the classes 0..{num_classes - 1} (ignore index '
                    f'{ignore}; labels as loaded, after reduce_zero_label); fix the annotation, '
                    'or make num_classes / reduce_zero_label in the config match the data.')


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` whose error on an unreadable (corrupt, truncated)
    image names the file and the way out.

    Args:
        skip_corrupt (bool): Instead of stopping, skip such images (the data
            set then loads another sample), logging each with a running count.
            Default: False.
        **kwargs: ``LoadImageFromFile`` arguments.
    """

    def __init__(self, skip_corrupt: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.skip_corrupt = skip_corrupt
        self.skipped = 0

    def transform(self, results: dict) -> Optional[dict]:
        try:
            return super().transform(results)
        except Exception as error:  # mmcv raises or asserts on an image that does not decode
            filename = results['img_path']
            if not self.skip_corrupt:
                raise ValueError(
                    f'cannot read the image {filename} ({type(error).__name__}: {error}); '
                    'replace or remove the file, or set skip_corrupt=True in '
                    'CheckedLoadImageFromFile to train past such images.') from error
            self.skipped += 1
            print_log(f'skipped the unreadable image {filename} ({self.skipped} skipped so far '
                      f'in this process)', logger='current', level=logging.WARNING)
            return None

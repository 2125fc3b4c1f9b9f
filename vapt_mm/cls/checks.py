"""A classification label check that stops with an error naming the image and the fix."""
from __future__ import annotations

from typing import Optional

from mmpretrain.registry import HOOKS

from ..seg.checkpoint import runner_model
from ..seg.checks import BatchCheckHook


@HOOKS.register_module()
class ClsLabelCheckHook(BatchCheckHook):
    """Checks that every ground-truth label is a class index of the head.

    Cross-entropy would otherwise fail deep in the loss (training) or a metric
    count a wrong class (validation, test). One comparison per batch, on the
    labels as the model sees them.
    """

    def _check(self, runner, data_batch: Optional[dict]) -> None:
        num_classes = getattr(getattr(runner_model(runner), 'head', None), 'num_classes', None)
        if num_classes is None or not data_batch:
            return
        for sample in data_batch.get('data_samples', []):
            if 'gt_label' not in sample:
                continue
            labels = sample.gt_label
            bad = (labels >= num_classes) | (labels < 0)
            if bad.any():
                raise ValueError(
                    f'{sample.metainfo.get("img_path", "an image")} has label(s) '
                    f'{labels[bad].tolist()} outside the classes 0..{num_classes - 1}; fix the '
                    "data set's labels, or set model.head.num_classes to the data set's classes.")

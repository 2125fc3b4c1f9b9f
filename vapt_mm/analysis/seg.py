"""Segmentation runs (config + checkpoint, loaded as tools/test.py does) through the probe."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS
from torch import nn

from vapt_mm.core import PromptedViT
from vapt_mm.seg.checks import check_data_roots
from vapt_mm.seg.loading import load_segmentor_checkpoint
from vapt_mm.seg.runtime import load_config, prepare_runtime

from .figures import ImageRow
from .probe import image_panels, patch_grid, prompted_encoder

IGNORE_INDEX = 255
#: Classes of this name are skipped when the class of an image is chosen for it.
BACKGROUND = 'background'


@dataclass
class SegRun:
    """A trained segmentor in eval mode and its prompted ViT."""

    name: str
    model: nn.Module
    encoder: PromptedViT


def load_seg_run(name: str, config: str, checkpoint: str,
                 cfg_options: Optional[Dict[str, Any]] = None) -> Tuple[SegRun, Config]:
    """Build the model of ``config`` and load ``checkpoint`` (full or trainable-only)."""
    cfg = load_config(config, 'none', cfg_options)
    prepare_runtime(cfg, 'none')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    load_segmentor_checkpoint(model, checkpoint)
    model.eval()
    encoder = prompted_encoder(getattr(model.backbone, 'encoder', None),
                               f'the backbone of {config} ({type(model.backbone).__name__})')
    return SegRun(name, model, encoder), cfg


def load_test_set(cfg: Config) -> Any:
    """The config's test set, with a clear error if its data root is missing."""
    check_data_roots(cfg, ['test_dataloader'])
    return DATASETS.build(cfg.test_dataloader.dataset)


def choose_class(label: torch.Tensor, classes: Sequence[str], wanted: Optional[str]) -> int:
    """``wanted`` (a class name or index), or the image's most frequent labelled class
    not named 'background'; an error if that class is not in the image."""
    if wanted is None:
        counts = torch.bincount(label[label != IGNORE_INDEX].flatten(), minlength=len(classes))
        for index, name in enumerate(classes):
            if name == BACKGROUND:
                counts[index] = 0
        if int(counts.max()) == 0:
            raise ValueError('the image has no labelled pixel of a class other than '
                             f'{BACKGROUND!r}; pass --class or choose other --images.')
        return int(counts.argmax())
    index = classes.index(wanted) if wanted in classes else None
    if index is None and wanted.isdigit() and int(wanted) < len(classes):
        index = int(wanted)
    if index is None:
        raise ValueError(f'--class {wanted!r} is neither a class name nor an index of this data '
                         f'set; its classes are {list(classes)}.')
    if not bool((label == index).any()):
        raise ValueError(f'class {classes[index]!r} is not in the ground truth of this image; '
                         'choose another --class or other --images.')
    return index


def seg_row(runs: Sequence[SegRun], sample: Dict[str, Any], classes: Sequence[str],
            wanted: Optional[str], layers: Sequence[int], index: int) -> ImageRow:
    """The panels of every run on one test sample (``index`` of the test set)."""
    label = sample['data_samples'].gt_sem_seg.data[0]
    chosen = choose_class(label, classes, wanted)
    image = sample['inputs']
    size = tuple(image.shape[-2:])
    region = F.interpolate((label == chosen).float()[None, None], size=size, mode='nearest')
    panels = []
    for run in runs:
        data = run.model.data_preprocessor(
            {'inputs': [image], 'data_samples': [sample['data_samples']]}, False)
        inputs = data['inputs']
        metas = [s.metainfo for s in data['data_samples']]
        grid = patch_grid(run.encoder, inputs)

        def score() -> torch.Tensor:
            logits = run.model.encode_decode(inputs, metas)
            mask = F.interpolate(region, size=logits.shape[-2:], mode='nearest')
            return (logits[:, chosen:chosen + 1] * mask).sum()
        prefix = torch.zeros(run.encoder.vit.num_prefix_tokens)
        share = F.adaptive_avg_pool2d(region, grid).flatten()
        panels.append(image_panels(run.encoder, score, prefix, share, grid, size, layers))
    rgb = image.flip(0) if runs[0].model.data_preprocessor.channel_conversion else image
    name = classes[chosen]
    return ImageRow(rgb.permute(1, 2, 0).numpy().astype(np.uint8),
                    f'test image {index}\n{name!r} region (outlined)', region[0, 0].numpy() > 0.5,
                    panels, query=f'the {name!r} patches', target=f'the {name!r} logit (region)')

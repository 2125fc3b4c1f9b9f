"""``--val-data`` of tools/train_retrieval.py: Recall@K on a caption JSON, a CSV or shards."""
from __future__ import annotations

from typing import Callable, Dict

import torch
from torch import nn

from .data import load_captions
from .retrieval import evaluate_retrieval, evaluate_shards
from .shards import expand_shards, is_shard_spec


class Validation:
    """The validation data (shards if ``spec`` names ``.tar`` files, a brace pattern or a
    ``::`` list), read (and its image paths or shards checked) when created; called with a
    model, its recalls (``metrics.recall_at_k``: R@1/5/10 both ways and their mean)."""

    def __init__(self, spec: str, split: str, transform: Callable,
                 tokenizer: Callable, device: torch.device, batch_size: int, workers: int,
                 separator: str = '\t', image_key: str = 'filepath', caption_key: str = 'title',
                 image_root: str | None = None, skip_corrupt: bool = False) -> None:
        self.transform, self.tokenizer, self.device = transform, tokenizer, device
        self.batch_size, self.workers, self.skip_corrupt = batch_size, workers, skip_corrupt
        if is_shard_spec(spec):
            self.urls, self.data = expand_shards(spec), None
            self.description = f'{len(self.urls)} shard' + 's' * (len(self.urls) != 1)
        else:
            self.urls = []
            self.data = load_captions(spec, split if spec.endswith('.json') else None,
                                      separator, image_key, caption_key, image_root)
            self.description = (f'{len(self.data.images)} images, '
                                f'{len(self.data.captions)} captions')

    def __call__(self, model: nn.Module) -> Dict[str, float]:
        if self.data is None:
            return evaluate_shards(model, self.urls, self.transform, self.tokenizer, self.device,
                                   self.batch_size, self.workers, skip_corrupt=self.skip_corrupt)
        return evaluate_retrieval(model, self.data, self.transform, self.tokenizer, self.device,
                                  self.batch_size, self.workers, progress=False)

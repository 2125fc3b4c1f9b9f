"""The batches of a training epoch from its position on: pairs of a CSV or caption JSON
(map-style) or webdataset shards, both resumable at a step."""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, Sequence, Tuple

import torch
from torch.utils.data import DataLoader, DistributedSampler, Subset

from vapt_mm.cluster import leave_stop_signals_to_parent

from .data import PairDataset
from .shards import Batch, train_loader


class PairBatches:
    """An epoch of (image path, caption) pairs: a seeded permutation split across ranks
    (``DistributedSampler``, dropping the rest), batches of the rank's part in order."""

    def __init__(self, pairs: Sequence[Tuple[str, str]], transform: Callable,
                 tokenizer: Callable, batch_size: int, accum_freq: int, rank: int,
                 world_size: int, seed: int, workers: int, shuffle: bool = True,
                 pin_memory: bool = False) -> None:
        self.dataset = PairDataset(pairs, transform, tokenizer)
        self.sampler = DistributedSampler(self.dataset, world_size, rank, shuffle=shuffle,
                                          seed=seed, drop_last=True)
        self.batch_size, self.step_size = batch_size, batch_size * accum_freq
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.workers, self.pin_memory = workers, pin_memory
        self.steps_per_epoch = len(self.sampler) // self.step_size
        self.description = f'{len(self.dataset)} pairs, {self.steps_per_epoch} steps per epoch'

    def epoch(self, epoch: int, done: int) -> Iterable[Batch]:
        """The batches of ``epoch`` after its first ``done`` steps."""
        self.sampler.set_epoch(epoch)
        order = list(self.sampler)[done * self.step_size:]
        # Own generator: creating the loader leaves the global RNG (saved in checkpoints) alone.
        generator = torch.Generator().manual_seed(self.seed + epoch * self.world_size + self.rank)
        return DataLoader(Subset(self.dataset, order), self.batch_size, drop_last=True,
                          num_workers=self.workers, pin_memory=self.pin_memory,
                          generator=generator, worker_init_fn=leave_stop_signals_to_parent)


class ShardBatches:
    """An epoch of ``num_samples`` samples (open_clip's ``--train-num-samples``) read from
    webdataset shards (``shards.train_loader``); each rank takes its equal part, rounded
    down to whole steps."""

    def __init__(self, urls: Sequence[str], num_samples: int, transform: Callable,
                 tokenizer: Callable, batch_size: int, accum_freq: int, rank: int,
                 world_size: int, seed: int, workers: int, shuffle_buffer: int = 5000,
                 skip_corrupt: bool = False, pin_memory: bool = False) -> None:
        streams = world_size * max(1, workers)
        if len(urls) < streams:
            raise SystemExit(f'{len(urls)} shard(s) for {world_size} process(es) x '
                             f'{max(1, workers)} DataLoader worker(s): every worker needs a '
                             'shard of its own; use fewer --workers or write more shards '
                             '(tools/make_shards.py --num-shards).')
        self.urls, self.transform, self.tokenizer = list(urls), transform, tokenizer
        self.batch_size, self.accum_freq, self.rank, self.seed = batch_size, accum_freq, rank, seed
        self.workers, self.shuffle_buffer = workers, shuffle_buffer
        self.skip_corrupt, self.pin_memory = skip_corrupt, pin_memory
        self.steps_per_epoch = num_samples // (world_size * batch_size * accum_freq)
        self.description = (f'{num_samples} samples per epoch (--train-num-samples) from '
                            f'{len(urls)} shards, {self.steps_per_epoch} steps per epoch')
        if len(urls) % streams:
            self.description += (f'; the {len(urls)} shards do not split evenly over '
                                 f'{streams} readers, so an epoch may read some samples twice '
                                 'and others not at all')

    def epoch(self, epoch: int, done: int) -> Iterator[Batch]:
        """The batches of ``epoch`` after its first ``done`` steps."""
        batches = self.steps_per_epoch * self.accum_freq
        return iter(train_loader(self.urls, self.transform, self.tokenizer, self.batch_size,
                                 batches, self.workers, self.seed, epoch, self.rank,
                                 done * self.accum_freq, self.shuffle_buffer, self.skip_corrupt,
                                 self.pin_memory))

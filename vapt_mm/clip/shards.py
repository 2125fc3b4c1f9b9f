"""Image-caption pairs from webdataset tar shards, as open_clip's ``--dataset-type webdataset``.

A sample is ``KEY.jpg``/``.png``/``.webp`` plus ``KEY.txt`` (one caption) or ``KEY.json``
(``{"captions": [...]}`` or ``{"caption": ...}``). The training pipeline is deterministic
for a seed, an epoch, the rank and the number of processes and DataLoader workers: that
is what lets a resumed run continue with the very samples an uninterrupted one would read.
"""
from __future__ import annotations

import io
import json
import logging
import math
import os
import random
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import braceexpand
import torch
import webdataset as wds
from PIL import Image
from torch.utils.data import DataLoader

from vapt_mm.cluster import leave_stop_signals_to_parent

IMAGE_EXTENSIONS = ('jpg', 'jpeg', 'png', 'webp')
Batch = Tuple[torch.Tensor, torch.Tensor]
log = logging.getLogger('vapt_mm.shards')


def expand_shards(spec: str | Sequence[str]) -> List[str]:
    """Shard URLs of ``spec``: brace patterns joined by ``::`` (open_clip's form) or a list.

    Local files must exist; URLs with a scheme (``pipe:``, ``s3://``, ...) are left to
    webdataset. Raises ``FileNotFoundError`` naming the pattern if it matches nothing.
    """
    patterns = spec.split('::') if isinstance(spec, str) else list(spec)
    urls = [url for pattern in patterns for url in braceexpand.braceexpand(pattern)]
    local = [url for url in urls if '://' not in url and not url.startswith('pipe:')]
    missing = [url for url in local if not os.path.isfile(url)]
    if not urls or (local and len(missing) == len(urls)):
        raise FileNotFoundError(f'the shard pattern {spec!r} matches no file ({len(urls)} '
                                f'name(s), e.g. {urls[:3]}); check the path and the braces, '
                                'e.g. data/shard-{0000..0099}.tar.')
    if missing:
        raise FileNotFoundError(f'{len(missing)} of the {len(urls)} shards of {spec!r} do not '
                                f'exist, e.g. {missing[:3]}.')
    return urls


def is_shard_spec(path: str) -> bool:
    """Whether ``path`` names tar shards (``.tar``, a brace pattern or a ``::`` list)."""
    return path.endswith('.tar') or '{' in path or '::' in path


class CorruptPolicy:
    """What an unreadable shard or member (image that does not decode, caption missing) does:
    stop with the shard's and member's names, or with ``skip`` go on, logging a running
    count (per process: each DataLoader worker counts its own)."""

    def __init__(self, skip: bool = False) -> None:
        self.skip = skip
        self.skipped = 0

    def _skip_or_raise(self, what: str, error: Exception) -> None:
        if not self.skip:
            raise ValueError(f'cannot read {what} ({type(error).__name__}: {error}); replace '
                             'or remove it, or pass --skip-corrupt to train past such '
                             'samples.') from error
        self.skipped += 1
        log.warning('skipped %s (%s: %s; %d skipped so far in this process)', what,
                    type(error).__name__, error, self.skipped)

    def handler(self, error: Exception) -> bool:
        """webdataset's ``handler=`` for reading tars (it appends the shard's URL to errors)."""
        url = next((a for a in reversed(error.args) if isinstance(a, str)), '?')
        self._skip_or_raise(f'a member of the shard {url}', error)
        return True

    def decode(self, sample: Dict[str, object]) -> Optional[Tuple[Image.Image, List[str]]]:
        """(RGB image, captions) of a raw sample; None where it is skipped."""
        what = f'the sample {sample.get("__key__")!r} of the shard {sample.get("__url__")}'
        try:
            image_ext = next((e for e in IMAGE_EXTENSIONS if e in sample), None)
            if image_ext is None:
                raise KeyError(f'no image ({"/".join(IMAGE_EXTENSIONS)}) among '
                               f'{sorted(k for k in sample if not k.startswith("__"))}')
            with Image.open(io.BytesIO(sample[image_ext])) as image:
                rgb = image.convert('RGB')
            return rgb, captions_of(sample)
        except Exception as error:  # PIL raises many kinds on a truncated or foreign file
            self._skip_or_raise(what, error)
            return None


def captions_of(sample: Dict[str, object]) -> List[str]:
    """The captions of a raw sample: its ``txt``, else its ``json``'s captions."""
    if 'txt' in sample:
        return [sample['txt'].decode('utf-8').strip()]
    if 'json' not in sample:
        raise KeyError('no caption (txt or json)')
    data = json.loads(sample['json'])
    captions = data if isinstance(data, list) else data.get('captions', data.get('caption'))
    captions = [captions] if isinstance(captions, str) else captions
    if not captions or not all(isinstance(c, str) for c in captions):
        raise ValueError('its json holds no "captions" list of strings nor a "caption"')
    return captions


class EpochShards(torch.utils.data.IterableDataset):
    """The shard list of one epoch, reshuffled (seeded by seed, epoch and pass) each time the
    pipeline repeats it; every rank and worker draws the same order, then takes its share."""

    def __init__(self, urls: Sequence[str], seed: int, epoch: int, shuffle: bool) -> None:
        super().__init__()
        self.urls, self.seed, self.epoch, self.shuffle = list(urls), seed, epoch, shuffle
        self.passes = 0

    def __iter__(self) -> Iterator[Dict[str, str]]:
        urls = list(self.urls)
        if self.shuffle:
            random.Random(f'{self.seed}:{self.epoch}:{self.passes}').shuffle(urls)
        self.passes += 1
        for url in urls:
            yield {'url': url}


class Skip:
    """Drop the first ``count`` items of a stream, once (the pipeline's later passes not)."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __call__(self, source: Iterable) -> Iterator:
        for item in source:
            if self.count:
                self.count -= 1
                continue
            yield item


def one_caption(seed: int, epoch: int) -> Callable[[Tuple[Image.Image, List[str]]], tuple]:
    """Training takes one caption of a sample with several, drawn by a generator seeded by
    the seed, the epoch and the sample's first caption."""
    def pick(item: Tuple[Image.Image, List[str]]) -> Tuple[Image.Image, str]:
        image, captions = item
        if len(captions) == 1:
            return image, captions[0]
        return image, random.Random(f'{seed}:{epoch}:{captions[0]}').choice(captions)
    return pick


def train_loader(urls: Sequence[str], transform: Callable, tokenizer: Callable,
                 batch_size: int, batches: int, workers: int, seed: int, epoch: int,
                 rank: int = 0, skip_batches: int = 0, shuffle_buffer: int = 5000,
                 skip_corrupt: bool = False, pin_memory: bool = False) -> Iterable[Batch]:
    """The ``batches`` batches (image, tokens) of this rank in ``epoch``, after the first
    ``skip_batches`` of them (a resumed epoch).

    Shards are shuffled (seed, epoch), split across ranks (``wds.split_by_node``) and then
    DataLoader workers (``wds.split_by_worker``) without overlap, read, and their samples
    shuffled in a buffer of ``shuffle_buffer`` seeded by (seed, epoch, rank); 0 turns both
    shuffles off. Each worker yields ``ceil(batches / workers)`` batches, repeating its
    shards (reshuffled) when they run out, and the DataLoader takes the workers' batches in
    turn, so batch ``b`` is worker ``b % workers``'s number ``b // workers``. A resume skips
    whole rounds of workers' batches as raw samples (read, not decoded) and reads the rest.
    """
    streams = max(1, workers)
    per_worker = math.ceil(batches / streams)
    rounds = skip_batches // streams
    policy = CorruptPolicy(skip_corrupt)
    shuffle = shuffle_buffer > 0
    stages = [EpochShards(urls, seed, epoch, shuffle), wds.split_by_node, wds.split_by_worker,
              wds.tarfile_to_samples(handler=policy.handler)]
    if shuffle:
        stages.append(wds.shuffle(shuffle_buffer, initial=min(shuffle_buffer, 1000),
                                  rng=random.Random(f'{seed}:{epoch}:{rank}')))
    stages += [Skip(rounds * batch_size), wds.map(policy.decode), wds.map(one_caption(seed, epoch)),
               wds.map_tuple(transform, lambda caption: tokenizer([caption])[0]),
               wds.batched(batch_size, collation_fn=stack, partial=False)]
    pipeline = wds.DataPipeline(*stages).with_epoch(nbatches=per_worker - rounds)
    # Own generator (the workers' seeds): creating the loader leaves the global RNG alone.
    generator = torch.Generator().manual_seed(seed + 7919 * epoch + rank)
    loader = DataLoader(pipeline, batch_size=None, num_workers=workers, pin_memory=pin_memory,
                        generator=generator, worker_init_fn=leave_stop_signals_to_parent)
    return _Tail(loader, skip_batches - rounds * streams, batches - skip_batches)


def stack(rows: Sequence[Tuple[torch.Tensor, torch.Tensor]]) -> Batch:
    """Collate (image, tokens) rows into a batch, as torch's default collation does."""
    images, tokens = zip(*rows)
    return torch.stack(images), torch.stack(tokens)


class _Tail:
    """A loader's batches after dropping the first ``drop``, at most ``count`` of them."""

    def __init__(self, loader: DataLoader, drop: int, count: int) -> None:
        self.loader, self.drop, self.count = loader, drop, count

    def __iter__(self) -> Iterator[Batch]:
        iterator = iter(self.loader)
        for index in range(self.drop + self.count):
            try:
                batch = next(iterator)
            except StopIteration:
                raise RuntimeError(f'the shards gave {index} of the {self.drop + self.count} '
                                   'batches of the epoch: a reader found no readable sample in '
                                   'its shards (empty, or all skipped as corrupt).') from None
            if index >= self.drop:
                yield batch


def eval_samples(urls: Sequence[str], transform: Callable, workers: int = 0,
                 skip_corrupt: bool = False) -> DataLoader:
    """Every sample of the shards once, in file order per worker: (image tensor, captions)."""
    policy = CorruptPolicy(skip_corrupt)
    pipeline = wds.DataPipeline(wds.SimpleShardList(list(urls)), wds.split_by_worker,
                                wds.tarfile_to_samples(handler=policy.handler),
                                wds.map(policy.decode), wds.map_tuple(transform, list))
    return DataLoader(pipeline, batch_size=None, num_workers=min(workers, len(urls)),
                      collate_fn=lambda item: item, worker_init_fn=leave_stop_signals_to_parent)

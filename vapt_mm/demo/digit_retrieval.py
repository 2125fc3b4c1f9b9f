"""Real MNIST digit pairs on real photos as an image-caption retrieval set (the files).

See ``tools/make_digits_retrieval.py`` for the layout: ``images/*.png``, one
open_clip CSV per split and a Karpathy-style ``captions.json``.
"""
from __future__ import annotations

import os
from typing import Dict, List

import numpy as np
from PIL import Image

from ..data.caption_files import write_caption_files
from .digit_scenes import captions, check_size, retrieval_scene
from .real_sources import digit_pools, split_halves

SPLITS = ('source', 'train', 'val', 'test')


def split_pools() -> Dict[str, np.ndarray]:
    """The digit indices each split draws from (val and test: halves of the pool ``val``)."""
    pools = digit_pools()
    val, test = split_halves(pools['val'])
    return {'source': pools['source'], 'train': pools['train'], 'val': val, 'test': test}


def split_rng(seed: int, split: str) -> np.random.Generator:
    """The random stream of one split: the same whatever the other splits' counts."""
    return np.random.default_rng([seed, SPLITS.index(split)])


def make(out_dir: str, counts: Dict[str, int], size: int, seed: int) -> Dict[str, List[dict]]:
    """Draw ``counts[split]`` images per split and return the caption entries per split."""
    check_size(size)
    os.makedirs(os.path.join(out_dir, 'images'), exist_ok=True)
    pools = split_pools()
    splits: Dict[str, List[dict]] = {}
    index = 0
    for split in SPLITS:
        rng = split_rng(seed, split)
        splits[split] = []
        for _ in range(counts[split]):
            image, (left, right), photo_caption = retrieval_scene(rng, size, pools[split], split)
            filename = f'{index:05d}.png'
            Image.fromarray(image).save(os.path.join(out_dir, 'images', filename))
            sentences = [{'raw': c} for c in captions(left, right, photo_caption)]
            splits[split].append({'filepath': 'images', 'filename': filename, 'split': split,
                                  'imgid': index, 'sentences': sentences})
            index += 1
    return splits


def write(out_dir: str, splits: Dict[str, List[dict]]) -> None:
    """Write one CSV per non-empty split and ``captions.json``."""
    write_caption_files(out_dir, splits, 'vapt_mm-digits-on-photos')

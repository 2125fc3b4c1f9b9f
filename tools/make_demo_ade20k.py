"""Write a small procedurally drawn data set in the ADE20K layout.

    python tools/make_demo_ade20k.py data/demo_ade20k --train 64 --val 16 --size 96 128

Labels follow ADE20K: 0 is "other" (ignored with ``reduce_zero_label``),
1..150 the classes. Each scene has a sky/floor background and a few shapes
of classes with their own colour and texture, outlined by a thin band of 0.

``--context-swap`` makes a control target whose labels need image context:
half the scenes are drawn at dusk (an orange sky), and there the
building-looking and car-looking shapes swap labels, so a shape's class
depends on the sky, not only on its own appearance.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Tuple

import numpy as np
from PIL import Image, ImageDraw

#: Sky colour of the dusk scenes of ``--context-swap``.
DUSK_SKY = (235, 130, 60)
#: Labels swapped in the dusk scenes (building <-> car).
DUSK_SWAP = {2: 21, 21: 2}
#: ADE20K label -> (RGB colour, texture); label = class index + 1.
BACKGROUND = {3: ((90, 150, 230), 'gradient'), 4: ((140, 100, 60), 'noise')}   # sky, floor
OBJECTS = {
    5: ((40, 160, 50), 'dots'),       # tree
    2: ((150, 150, 150), 'stripes'),  # building
    21: ((210, 40, 40), 'flat'),      # car
    13: ((240, 200, 60), 'checker'),  # person
}


def texture(kind: str, colour: Tuple[int, int, int], shape: Tuple[int, int],
            rng: np.random.Generator) -> np.ndarray:
    """An (H, W, 3) float image of one class's appearance."""
    h, w = shape
    base = np.array(colour, np.float32) + rng.normal(0, 12, 3)
    image = np.broadcast_to(base, (h, w, 3)).copy()
    yy, xx = np.mgrid[:h, :w]
    if kind == 'gradient':
        image *= (0.75 + 0.35 * yy / max(h - 1, 1))[..., None]
    elif kind == 'stripes':
        image *= (0.7 + 0.3 * ((xx // 4) % 2))[..., None]
    elif kind == 'checker':
        image *= (0.7 + 0.3 * (((xx // 6) + (yy // 6)) % 2))[..., None]
    elif kind == 'dots':
        image *= (0.75 + 0.35 * (((xx % 5) < 2) & ((yy % 5) < 2)))[..., None]
    return image + rng.normal(0, 8 if kind != 'noise' else 20, (h, w, 3))


def draw_scene(rng: np.random.Generator, shape: Tuple[int, int],
               context_swap: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """One image (H, W, 3 uint8) and its ADE20K label map (H, W uint8)."""
    h, w = shape
    horizon = int(rng.uniform(0.3, 0.6) * h)
    dusk = context_swap and rng.random() < 0.5
    label = np.full((h, w), 4, np.uint8)
    label[:horizon] = 3
    image = np.zeros((h, w, 3), np.float32)
    for cls, (colour, kind) in BACKGROUND.items():
        colour = DUSK_SKY if dusk and cls == 3 else colour
        image = np.where((label == cls)[..., None], texture(kind, colour, shape, rng), image)
    for _ in range(rng.integers(1, 4)):
        cls = int(rng.choice(list(OBJECTS)))
        colour, kind = OBJECTS[cls]
        bh, bw = rng.integers(h // 5, h // 2), rng.integers(w // 5, w // 2)
        y0, x0 = rng.integers(0, h - bh), rng.integers(0, w - bw)
        box = [int(x0), int(y0), int(x0 + bw), int(y0 + bh)]
        mask_img = Image.new('L', (w, h), 0)
        draw = ImageDraw.Draw(mask_img)
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=1, outline=2, width=1)
        mask = np.asarray(mask_img)
        image = np.where((mask > 0)[..., None], texture(kind, colour, shape, rng), image)
        label[mask == 1] = DUSK_SWAP.get(cls, cls) if dusk else cls
        label[mask == 2] = 0
    return np.clip(image, 0, 255).astype(np.uint8), label


def write_split(root: Path, split: str, count: int, shape: Tuple[int, int],
                rng: np.random.Generator, context_swap: bool = False) -> None:
    (root / 'images' / split).mkdir(parents=True, exist_ok=True)
    (root / 'annotations' / split).mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image, label = draw_scene(rng, shape, context_swap)
        name = f"ADE_{'train' if split == 'training' else 'val'}_{index + 1:08d}"
        Image.fromarray(image).save(root / 'images' / split / f'{name}.jpg', quality=95)
        Image.fromarray(label).save(root / 'annotations' / split / f'{name}.png')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', nargs='?', default='data/demo_ade20k', help='output folder')
    parser.add_argument('--train', type=int, default=64, help='training images')
    parser.add_argument('--val', type=int, default=16, help='validation images')
    parser.add_argument('--size', type=int, nargs=2, default=(96, 128), metavar=('H', 'W'),
                        help='image height and width')
    parser.add_argument('--seed', type=int, default=0, help='random seed (same seed, same data)')
    parser.add_argument('--context-swap', action='store_true',
                        help='dusk scenes swap building and car labels (a control target)')
    args = parser.parse_args()
    if min(args.size) < 16 or args.train < 1 or args.val < 1:
        parser.error('--size must be >= 16 pixels and --train/--val >= 1.')
    rng = np.random.default_rng(args.seed)
    root = Path(args.root)
    write_split(root, 'training', args.train, tuple(args.size), rng, args.context_swap)
    write_split(root, 'validation', args.val, tuple(args.size), rng, args.context_swap)
    print(f'wrote {args.train} training and {args.val} validation images to {root}')


if __name__ == '__main__':
    main()

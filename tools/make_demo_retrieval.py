"""Generate a small image-caption retrieval set of drawn shapes.

Each image shows one coloured shape at one of nine positions; five captions
describe its colour, shape and position in different words. Writes the images,
one open_clip CSV per split (``filepath``/``title``, tab-separated) and a
Karpathy-style ``captions.json``. The same seed gives the same files.

    python tools/make_demo_retrieval.py data/demo_retrieval --num-images 200
"""
from __future__ import annotations

import argparse
import os
import random
from typing import Dict, List, Tuple

from PIL import Image, ImageDraw

from vapt_mm.data.caption_files import write_caption_files
from vapt_mm.demo.tiny_clip_captions import position_words  # the same words as the source

COLOURS = {'red': (220, 30, 30), 'green': (30, 170, 60), 'blue': (40, 70, 220),
           'yellow': (235, 210, 30), 'purple': (140, 50, 170), 'orange': (245, 130, 20)}
SHAPES = ('circle', 'square', 'triangle', 'diamond')
TEMPLATES = (
    'a {colour} {shape} in the {where}',
    'a picture of a {colour} {shape} at the {where}',
    'the {where} of the image shows a {colour} {shape}',
    'a {shape} coloured {colour}, placed in the {where}',
    'one {colour} {shape} drawn in the {where} on a white background',
)


def draw(size: int, colour: str, shape: str, row: int, column: int,
         rng: random.Random) -> Image.Image:
    image = Image.new('RGB', (size, size), (255, 255, 255))
    cell = size / 3
    radius = cell * rng.uniform(0.3, 0.45)
    cx = cell * (column + 0.5) + rng.uniform(-0.1, 0.1) * cell
    cy = cell * (row + 0.5) + rng.uniform(-0.1, 0.1) * cell
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    pen = ImageDraw.Draw(image)
    fill = COLOURS[colour]
    if shape == 'circle':
        pen.ellipse(box, fill=fill)
    elif shape == 'square':
        pen.rectangle(box, fill=fill)
    elif shape == 'triangle':
        pen.polygon([(cx, cy - radius), (cx + radius, cy + radius), (cx - radius, cy + radius)],
                    fill=fill)
    else:
        pen.polygon([(cx, cy - radius), (cx + radius, cy), (cx, cy + radius), (cx - radius, cy)],
                    fill=fill)
    return image


def make(out_dir: str, num_images: int, size: int, seed: int,
         fractions: Tuple[float, float]) -> Dict[str, List[dict]]:
    """Draw the images and return the caption entries per split."""
    rng = random.Random(seed)
    os.makedirs(os.path.join(out_dir, 'images'), exist_ok=True)
    num_train = round(num_images * fractions[0])
    num_val = round(num_images * fractions[1])
    splits: Dict[str, List[dict]] = {'train': [], 'val': [], 'test': []}
    for index in range(num_images):
        colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
        row, column = rng.randrange(3), rng.randrange(3)
        filename = f'{index:05d}.png'
        draw(size, colour, shape, row, column, rng).save(os.path.join(out_dir, 'images', filename))
        where = position_words(row, column)
        split = 'train' if index < num_train else 'val' if index < num_train + num_val else 'test'
        sentences = [{'raw': t.format(colour=colour, shape=shape, where=where)} for t in TEMPLATES]
        splits[split].append({'filepath': 'images', 'filename': filename, 'split': split,
                              'imgid': index, 'sentences': sentences})
    return splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir')
    parser.add_argument('--num-images', type=int, default=200)
    parser.add_argument('--size', type=int, default=224, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--train-fraction', type=float, default=0.8)
    parser.add_argument('--val-fraction', type=float, default=0.1)
    args = parser.parse_args()
    splits = make(args.out_dir, args.num_images, args.size, args.seed,
                  (args.train_fraction, args.val_fraction))
    write_caption_files(args.out_dir, splits, 'vapt_mm-demo-shapes')
    counts = ', '.join(f'{k}: {len(v)}' for k, v in splits.items())
    print(f'wrote {args.num_images} images ({counts}) with 5 captions each to {args.out_dir}')


if __name__ == '__main__':
    main()

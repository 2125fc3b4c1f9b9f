"""The generated *source* task of the tiny pretrained ViT: dense shape and texture-family labels.

Each scene is a textured background with a few textured shapes (ellipse,
rectangle, triangle) in random colours. Every pixel has two labels: its
shape (background or one of the three) and the *family* of its texture:

* ``smooth``: flat colour or a linear gradient in a random direction;
* ``periodic``: stripes at any angle, checkerboards or dot grids, random period;
* ``noisy``: pixel noise or blotchy low-frequency noise.

The families are coarse on purpose. The demo's *target* task
(``tools/make_demo_ade20k.py``) tells apart tree (dots), building (stripes)
and person (checker), all ``periodic`` here, and sky (gradient) from car
(flat), both ``smooth``; colours are random here but fixed per target class.
So the source teaches texture and object features without ever separating
the target classes: the frozen features need adapting, the usual transfer case.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ('background', 'ellipse', 'rectangle', 'triangle')
FAMILIES = ('smooth', 'periodic', 'noisy')


def _texture(family: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A (size, size, 3) float image of one random texture of ``family``, colour included."""
    colour = rng.uniform(30, 225, 3).astype(np.float32)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    if FAMILIES[family] == 'smooth':
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * xx + np.sin(angle) * yy) / size
        shade = 1.0 + rng.choice([0.0, rng.uniform(0.2, 0.5)]) * (ramp - ramp.mean())
        image = colour * shade[..., None]
        sigma = rng.uniform(3, 10)
    elif FAMILIES[family] == 'periodic':
        period = rng.uniform(3, 8)
        kind = rng.integers(3)
        if kind == 0:  # stripes at a random angle
            angle = rng.uniform(0, np.pi)
            pattern = ((np.cos(angle) * xx + np.sin(angle) * yy) / period) % 2 < 1
        elif kind == 1:  # checkerboard
            pattern = ((xx // period) + (yy // period)) % 2 < 1
        else:  # dot grid
            side = rng.uniform(0.3, 0.6) * period
            pattern = ((xx % period) < side) & ((yy % period) < side)
        contrast = rng.uniform(0.25, 0.5)
        image = colour * (1.0 - contrast + contrast * pattern.astype(np.float32))[..., None]
        sigma = rng.uniform(3, 10)
    else:
        image = np.broadcast_to(colour, (size, size, 3)).copy()
        if rng.random() < 0.5:  # blotches: coarse noise upsampled
            cells = int(rng.integers(4, 12))
            coarse = rng.normal(0, rng.uniform(20, 40), (cells, cells, 3)).astype(np.float32)
            image += np.asarray(Image.fromarray(coarse[..., 0]).resize((size, size), 2))[..., None]
        sigma = rng.uniform(15, 35)
    return image + rng.normal(0, sigma, (size, size, 3)).astype(np.float32)


def _shape_mask(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean (size, size) mask of one random ellipse, rectangle or triangle."""
    h, w = rng.integers(size // 4, size * 3 // 4, 2)
    y0, x0 = rng.integers(0, size - h), rng.integers(0, size - w)
    canvas = Image.new('L', (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
    if SHAPES[kind] == 'ellipse':
        draw.ellipse(box, fill=1)
    elif SHAPES[kind] == 'rectangle':
        draw.rectangle(box, fill=1)
    else:
        apex = int(rng.integers(x0, x0 + w + 1))
        draw.polygon([(apex, int(y0)), (int(x0), int(y0 + h)), (int(x0 + w), int(y0 + h))],
                     fill=1)
    return np.asarray(canvas) > 0


def draw_scene(size: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scene: image (size, size, 3) uint8, shape labels and family labels (size, size)."""
    family = int(rng.integers(len(FAMILIES)))
    image = _texture(family, size, rng)
    shapes = np.zeros((size, size), np.int64)
    families = np.full((size, size), family, np.int64)
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(1, len(SHAPES)))
        family = int(rng.integers(len(FAMILIES)))
        mask = _shape_mask(kind, size, rng)
        image = np.where(mask[..., None], _texture(family, size, rng), image)
        shapes[mask] = kind
        families[mask] = family
    return np.clip(image, 0, 255).astype(np.uint8), shapes, families


def patch_distribution(labels: np.ndarray, patch: int, num_classes: int) -> np.ndarray:
    """Per-patch label histograms (h/patch * w/patch, num_classes), rows summing to 1."""
    h, w = labels.shape
    onehot = np.eye(num_classes, dtype=np.float32)[labels]
    blocks = onehot.reshape(h // patch, patch, w // patch, patch, num_classes)
    return blocks.mean(axis=(1, 3)).reshape(-1, num_classes)


def make_batch(batch: int, size: int, patch: int,
               rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (B, size, size, 3) uint8 and soft patch targets for shapes and families."""
    images, shapes, families = [], [], []
    for _ in range(batch):
        image, shape, family = draw_scene(size, rng)
        images.append(image)
        shapes.append(patch_distribution(shape, patch, len(SHAPES)))
        families.append(patch_distribution(family, patch, len(FAMILIES)))
    return np.stack(images), np.stack(shapes), np.stack(families)

"""Generated *source* image-caption pairs for pretraining the tiny CLIP.

The source domain shares the attribute words of the retrieval demo's target
domain (``tools/make_demo_retrieval.py``: colour, shape, position) so that the
text tower, which stays frozen during prompt tuning, knows them. Everything
else differs: more colours and shapes, other caption templates, and another
image style -- textured, never-white backgrounds and outlined, striped or
bordered shapes of other sizes instead of flat shapes on white.
"""
from __future__ import annotations

import math
import random
from typing import List, Tuple

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {'red': (220, 30, 30), 'green': (30, 170, 60), 'blue': (40, 70, 220),
           'yellow': (235, 210, 30), 'purple': (140, 50, 170), 'orange': (245, 130, 20),
           'pink': (250, 120, 190), 'brown': (120, 70, 30), 'cyan': (40, 210, 220),
           'grey': (128, 128, 128)}
SHAPES = ('circle', 'square', 'triangle', 'diamond', 'star', 'cross', 'hexagon', 'ring')
ROWS = ('top', 'middle', 'bottom')
COLUMNS = ('left', 'centre', 'right')
STYLES = ('outlined', 'striped', 'bordered')
TEMPLATES = (
    '{colour} {shape}, {where}',
    '{where}: a {colour} {shape}',
    'there is one {style} {colour} {shape} near the {where}',
    'a {shape} in {colour} at the {where}',
    '{style} {shape}, {colour}, {where}',
    'at the {where} we see one {colour} {shape}',
    'the {colour} {shape} sits in the {where} of the frame',
    'one {style} {colour} {shape} on a textured backdrop, {where}',
)


def position_words(row: int, column: int) -> str:
    """The demo's words for a cell of the 3 x 3 grid (``centre``, ``top left``, ...)."""
    if row == 1 and column == 1:
        return 'centre'
    if row == 1:
        return f'middle {COLUMNS[column]}'
    if column == 1:
        return f'{ROWS[row]} centre'
    return f'{ROWS[row]} {COLUMNS[column]}'


def _polygon(shape: str, cx: float, cy: float, r: float) -> List[Tuple[float, float]]:
    if shape == 'triangle':
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == 'diamond':
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    if shape == 'square':
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == 'hexagon':
        return [(cx + r * math.cos(a * math.pi / 3), cy + r * math.sin(a * math.pi / 3))
                for a in range(6)]
    if shape == 'star':
        return [(cx + (r if k % 2 == 0 else r * 0.45) * math.sin(k * math.pi / 5),
                 cy - (r if k % 2 == 0 else r * 0.45) * math.cos(k * math.pi / 5))
                for k in range(10)]
    w = r * 0.35  # cross
    return [(cx - w, cy - r), (cx + w, cy - r), (cx + w, cy - w), (cx + r, cy - w),
            (cx + r, cy + w), (cx + w, cy + w), (cx + w, cy + r), (cx - w, cy + r),
            (cx - w, cy + w), (cx - r, cy + w), (cx - r, cy - w), (cx - w, cy - w)]


def _background(size: int, rng: random.Random) -> Image.Image:
    """A dark-to-mid, never white, noisy background: plain, gradient or checkered."""
    nprng = np.random.default_rng(rng.randrange(2 ** 32))
    base = np.array([rng.randrange(10, 110) for _ in range(3)], dtype=np.float32)
    kind = rng.randrange(3)
    canvas = np.broadcast_to(base, (size, size, 3)).copy()
    if kind == 1:
        ramp = np.linspace(-30, 30, size, dtype=np.float32)
        canvas += (ramp[:, None] if rng.random() < 0.5 else ramp[None, :])[..., None]
    elif kind == 2:
        cell = max(size // rng.choice((4, 6, 8)), 1)
        yy, xx = np.mgrid[0:size, 0:size]
        canvas += (((yy // cell + xx // cell) % 2) * 25.0)[..., None]
    canvas += nprng.normal(0.0, rng.uniform(5.0, 25.0), canvas.shape)
    return Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))


def _shape_mask(size: int, shape: str, cx: float, cy: float, r: float,
                outline: int) -> Image.Image:
    """The shape as an 'L' mask: filled, or only its outline ``outline`` pixels wide."""
    mask = Image.new('L', (size, size), 0)
    pen = ImageDraw.Draw(mask)
    if shape in ('circle', 'ring'):
        box = (cx - r, cy - r, cx + r, cy + r)
        if outline or shape == 'ring':
            pen.ellipse(box, outline=255, width=max(outline, int(r * 0.35), 1))
        else:
            pen.ellipse(box, fill=255)
    else:
        points = _polygon(shape, cx, cy, r)
        if outline:
            pen.line(points + points[:1], fill=255, width=outline, joint='curve')
        else:
            pen.polygon(points, fill=255)
    return mask


def draw(size: int, colour: str, shape: str, row: int, column: int, style: str,
         rng: random.Random) -> Image.Image:
    """One source image: a ``style`` shape in a cell of a 3 x 3 grid on a textured background."""
    image = _background(size, rng)
    cell = size / 3
    r = cell * rng.uniform(0.25, 0.5)
    cx = cell * (column + 0.5) + rng.uniform(-0.12, 0.12) * cell
    cy = cell * (row + 0.5) + rng.uniform(-0.12, 0.12) * cell
    line = max(size // 24, 1)
    fill = Image.new('RGB', (size, size), COLOURS[colour])
    if style == 'striped':
        pen = ImageDraw.Draw(fill)
        dark = tuple(int(c * 0.45) for c in COLOURS[colour])
        for offset in range(-size, size, max(size // 10, 3)):
            pen.line([(offset, 0), (offset + size, size)], fill=dark, width=line)
    if style == 'bordered':
        border = _shape_mask(size, shape, cx, cy, r + line, 0)
        image.paste((235, 235, 235), mask=border)
    image.paste(fill, mask=_shape_mask(size, shape, cx, cy, r, 2 * line if style == 'outlined'
                                       else 0))
    return image


def sample_pair(rng: random.Random, size: int) -> Tuple[Image.Image, str]:
    """A random source image and one caption for it."""
    colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
    row, column, style = rng.randrange(3), rng.randrange(3), rng.choice(STYLES)
    image = draw(size, colour, shape, row, column, style, rng)
    caption = rng.choice(TEMPLATES).format(colour=colour, shape=shape, style=style,
                                           where=position_words(row, column))
    return image, caption

"""Real MNIST digits composited on crops of real photos: segmentation and retrieval scenes.

A scene is a random square crop of one photo's split region
(:func:`~vapt_mm.demo.real_sources.photo_region`), resized to ``size`` x
``size``, with digits pasted as coloured strokes: the digit's intensity / 255
is the alpha of one colour, the candidate farthest from the photo under the
stroke (bright random colours, white and black).

Segmentation labels follow ADE20K with ``reduce_zero_label=True``: 0 ignores
the stroke edges (:data:`EDGE_ALPHA`), 1 is background, 2..11 are the digits
0..9, so the classes after the reduction are :data:`CLASSES`. Where digits
overlap, the later digit wins, its edges included.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageFilter

from .real_sources import PHOTOS, mnist_digits, photo, region_bounds

#: The classes after ``reduce_zero_label`` (annotation value - 1).
CLASSES = ('background',) + tuple(f'digit {d}' for d in range(10))
#: A colour per class of :data:`CLASSES`, for mmseg's ``metainfo`` and label renderings.
PALETTE = [(0, 0, 0), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
           (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127),
           (188, 189, 34), (23, 190, 207)]
#: Annotation values: 0 ignored, 1 background, digit ``d`` is ``d + DIGIT_OFFSET``.
IGNORE, BACKGROUND, DIGIT_OFFSET = 0, 1, 2
#: Alphas in this open interval are stroke edges (ignored); at or above the top, the digit.
EDGE_ALPHA = (0.2, 0.5)
#: Mean RGB distance a bright stroke colour needs from the photo under it.
MIN_CONTRAST = 150.0
#: Image sides must be multiples of the DINOv2 patch.
PATCH = 14
#: Side of a crop as a fraction of its region's shorter side.
CROP_SCALE = (0.5, 1.0)
#: Side of a pasted 28x28 digit box as a fraction of the image side.
SEG_DIGIT_SCALE = (0.40, 0.60)
#: Size of the maximum filter that makes the 28x28 strokes bold before scaling.
BOLD_FILTER = 3
RETRIEVAL_DIGIT_SCALE = (0.36, 0.48)
#: Caption templates of a retrieval scene; ``a_left`` is ``left`` with its article.
TEMPLATES = (
    '{a_left} on the left and {a_right} on the right over a photo of {photo}',
    'a photo of {photo} with {a_right} on the right and {a_left} on the left',
    'the handwritten digits {left} and {right}, from left to right, on a picture of {photo}',
    'two digits drawn over {photo}: {left} on the left, {right} on the right',
    'a digit {left} to the left of a digit {right} in front of {photo}',
)
_PHOTO_NAMES = tuple(PHOTOS)
Box = Tuple[int, int, int, int]


@dataclass(frozen=True)
class Paste:
    """One pasted digit: its class, its box ``(x0, y0, x1, y1)`` and its alpha inside the box."""

    digit: int
    box: Box
    alpha: np.ndarray


def check_size(size: int) -> None:
    """Refuse image sides that are not a multiple of :data:`PATCH` (at least 2 patches)."""
    if size < 2 * PATCH or size % PATCH:
        raise ValueError(f'size {size} must be a multiple of {PATCH} (the DINOv2 patch is '
                         f'{PATCH} pixels) and at least {2 * PATCH}.')


def crop_box(rng: np.random.Generator, shape: Tuple[int, ...], split: str) -> Box:
    """A random square ``(x0, y0, x1, y1)`` inside the region of ``split`` of a photo ``shape``."""
    height = shape[0]
    left, right = region_bounds(shape[1], split)
    side = max(1, round(rng.uniform(*CROP_SCALE) * min(right - left, height)))
    x0 = left + int(rng.integers(0, right - left - side + 1))
    y0 = int(rng.integers(0, height - side + 1))
    return x0, y0, x0 + side, y0 + side


def background(rng: np.random.Generator, size: int, split: str) -> Tuple[np.ndarray, str]:
    """A (size, size, 3) float32 crop of a random photo of ``split`` and the photo's name."""
    name = _PHOTO_NAMES[int(rng.integers(len(_PHOTO_NAMES)))]
    image = photo(name)
    x0, y0, x1, y1 = crop_box(rng, image.shape, split)
    crop = Image.fromarray(np.ascontiguousarray(image[y0:y1, x0:x1]))
    return np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR), np.float32), name


def stroke_colour(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """A stroke colour (3,) that stands out from the pixels ``under`` (N, 3) it covers.

    The first of a few bright random colours whose mean distance from ``under`` reaches
    :data:`MIN_CONTRAST`; failing that, white or black, whichever is farther.
    """
    for _ in range(8):
        colour = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.6, 1.0),
                                              rng.uniform(0.85, 1.0)), np.float32) * 255
        if _contrast(colour, under) >= MIN_CONTRAST:
            return colour
    white, black = np.full(3, 255, np.float32), np.zeros(3, np.float32)
    return white if _contrast(white, under) >= _contrast(black, under) else black


def _contrast(colour: np.ndarray, under: np.ndarray) -> float:
    return float(np.linalg.norm(under - colour, axis=-1).mean())


def paste_digit(image: np.ndarray, digit: np.ndarray, box: Box,
                rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """``image`` (H, W, 3) float with the 28x28 ``digit`` stroked into ``box``; and its alpha.

    The stroke is made bold first (a 3x3 maximum filter at 28x28, about 2 px
    wider), so that it is about one 14 px patch wide once the digit is scaled up.
    """
    x0, y0, x1, y1 = box
    bold = Image.fromarray(digit).filter(ImageFilter.MaxFilter(BOLD_FILTER))
    resized = bold.resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR)
    alpha = np.asarray(resized, np.float32) / 255
    region = image[y0:y1, x0:x1]
    colour = stroke_colour(rng, region[alpha >= EDGE_ALPHA[1]].reshape(-1, 3))
    out = image.copy()
    out[y0:y1, x0:x1] = region * (1 - alpha[..., None]) + colour * alpha[..., None]
    return out, alpha


def digit_label(size: int, pastes: Sequence[Paste]) -> np.ndarray:
    """The (size, size) uint8 ADE20K-style annotation of ``pastes`` (later pastes win)."""
    label = np.full((size, size), BACKGROUND, np.uint8)
    low, high = EDGE_ALPHA
    for paste in pastes:
        x0, y0, x1, y1 = paste.box
        region = label[y0:y1, x0:x1]
        region[(paste.alpha > low) & (paste.alpha < high)] = IGNORE
        region[paste.alpha >= high] = paste.digit + DIGIT_OFFSET
    return label


def _overlaps(box: Box, others: Sequence[Box]) -> bool:
    return any(box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3]
               for o in others)


def seg_boxes(rng: np.random.Generator, size: int, count: int, tries: int = 20) -> List[Box]:
    """``count`` random digit boxes, non-overlapping where ``tries`` placements allow it."""
    boxes: List[Box] = []
    for _ in range(count):
        for _ in range(tries):
            side = round(rng.uniform(*SEG_DIGIT_SCALE) * size)
            x0, y0 = (int(v) for v in rng.integers(0, size - side + 1, 2))
            box = (x0, y0, x0 + side, y0 + side)
            if not _overlaps(box, boxes):
                break
        boxes.append(box)
    return boxes


def composite(rng: np.random.Generator, size: int, digits_pool: np.ndarray, photos_split: str,
              boxes: Sequence[Box]) -> Tuple[np.ndarray, List[Paste], str]:
    """A photo crop with a random digit of ``digits_pool`` pasted into each box, in order.

    Returns the uint8 image, the pastes and the photo's name.
    """
    check_size(size)
    images, labels = mnist_digits()
    canvas, name = background(rng, size, photos_split)
    pastes = []
    for box in boxes:
        index = int(digits_pool[int(rng.integers(len(digits_pool)))])
        canvas, alpha = paste_digit(canvas, images[index], box, rng)
        pastes.append(Paste(int(labels[index]), box, alpha))
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8), pastes, name


def seg_composite(rng: np.random.Generator, size: int, digits_pool: np.ndarray,
                  photos_split: str) -> Tuple[np.ndarray, List[Paste]]:
    """A segmentation scene's image and its 1-2 pastes (see :func:`seg_scene`)."""
    boxes = seg_boxes(rng, size, int(rng.integers(1, 3)))
    image, pastes, _ = composite(rng, size, digits_pool, photos_split, boxes)
    return image, pastes


def seg_scene(rng: np.random.Generator, size: int, digits_pool: np.ndarray,
              photos_split: str) -> Tuple[np.ndarray, np.ndarray]:
    """An image (size, size, 3) uint8 with 1-2 digits and its annotation (size, size) uint8."""
    image, pastes = seg_composite(rng, size, digits_pool, photos_split)
    return image, digit_label(size, pastes)


def pair_boxes(rng: np.random.Generator, size: int) -> Tuple[Box, Box]:
    """Two digit boxes, one inside the left half of the image and one inside the right half."""
    boxes = []
    for left in (0, size // 2):
        side = round(rng.uniform(*RETRIEVAL_DIGIT_SCALE) * size)
        x0 = left + int(rng.integers(0, size // 2 - side + 1))
        y0 = int(rng.integers(0, size - side + 1))
        boxes.append((x0, y0, x0 + side, y0 + side))
    return boxes[0], boxes[1]


def retrieval_scene(rng: np.random.Generator, size: int, digits_pool: np.ndarray,
                    photos_split: str) -> Tuple[np.ndarray, Tuple[int, int], str]:
    """An image with a digit on the left and one on the right, the two digits, the photo caption."""
    image, pastes, name = composite(rng, size, digits_pool, photos_split, pair_boxes(rng, size))
    return image, (pastes[0].digit, pastes[1].digit), PHOTOS[name][0]


def captions(left: int, right: int, photo_caption: str) -> List[str]:
    """The captions of :data:`TEMPLATES` for digits ``left`` and ``right`` on ``photo_caption``."""
    def article(digit: int) -> str:
        return f'an {digit}' if digit == 8 else f'a {digit}'
    return [t.format(left=left, right=right, a_left=article(left), a_right=article(right),
                     photo=photo_caption) for t in TEMPLATES]

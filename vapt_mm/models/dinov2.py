"""timm names for the DINOv2 ViT-S/14 at the image sizes open_clip towers use here.

open_clip's ``TimmModel`` creates its trunk by name only (no ``img_size``), and
timm's ``vit_small_patch14_dinov2`` is built for 518 px with a fixed grid. The
names below are the same architecture at another default size, with
``dynamic_img_size=True`` so that VAPT (and any other grid) works too.
Importing this module registers them with timm.
"""
from __future__ import annotations

from typing import Any

from timm.models import register_model
from timm.models.vision_transformer import VisionTransformer, vit_small_patch14_dinov2


@register_model
def vit_small_patch14_dinov2_112(pretrained: bool = False, **kwargs: Any) -> VisionTransformer:
    """ViT-S/14 DINOv2 at 112 px (an 8 x 8 patch grid), any other size allowed."""
    options = dict(img_size=112, dynamic_img_size=True)
    return vit_small_patch14_dinov2(pretrained=pretrained, **{**options, **kwargs})

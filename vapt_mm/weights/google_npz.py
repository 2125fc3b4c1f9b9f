"""Google's JAX ViT ``.npz`` files (e.g. ``imagenet21k_ViT-B_16.npz``) as timm ViT weights.

The archive is read with ``numpy.load(allow_pickle=False)`` only. Its
architecture is read off the array shapes, a timm ``VisionTransformer`` of
that architecture is built, and timm's own ``.npz`` loader
(``timm.models.vision_transformer._load_weights``) fills it; its state dict is
the result, at the file's own patch grid.
"""
from __future__ import annotations

import math
import re
from typing import Dict, List, Tuple

import numpy as np
import torch
from timm.models.vision_transformer import VisionTransformer, _load_weights

NAME = 'Google ViT .npz'
POS_EMBED = 'Transformer/posembed_input/pos_embedding'
QUERY = 'Transformer/encoderblock_0/MultiHeadDotProductAttention_1/query/kernel'
FC1 = 'Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel'
#: The arrays every file of this layout holds (block 0 stands for every block).
REQUIRED = ('embedding/kernel', 'embedding/bias', POS_EMBED, QUERY, FC1,
            'Transformer/encoder_norm/scale')


def _shapes(path: str) -> Dict[str, Tuple[int, ...]]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key].shape for key in archive.files}
    except ValueError as error:  # numpy refuses object (pickled) arrays
        raise ValueError(f'refused to load {path}: the .npz holds pickled Python objects, which '
                         f'are never unpickled ({error}); use a .npz of plain arrays.') from error


def _architecture(path: str, shapes: Dict[str, Tuple[int, ...]]) -> dict:
    """timm ``VisionTransformer`` arguments of the file, or a ValueError naming what is off."""
    missing = [key for key in REQUIRED if key not in shapes]
    if missing:
        found = ', '.join(sorted(shapes)[:8])
        raise ValueError(f'{path} is a NumPy .npz archive but not the {NAME} layout: it lacks '
                         f'{missing} (found: {found}, ...).')
    blocks = sorted({int(m.group(1)) for key in shapes
                     if (m := re.match(r'Transformer/encoderblock_(\d+)/', key))})
    if blocks != list(range(len(blocks))):
        raise ValueError(f'{path}: encoder blocks {blocks} are not numbered 0..N-1.')
    patch, _, channels, width = shapes['embedding/kernel']
    tokens = shapes[POS_EMBED][1] - ('cls' in shapes)
    grid = math.isqrt(tokens)
    if grid * grid != tokens:
        raise ValueError(f'{path}: {tokens} position embeddings are not a square patch grid.')
    return dict(img_size=grid * patch, patch_size=patch, in_chans=channels, embed_dim=width,
                depth=len(blocks), num_heads=shapes[QUERY][1],
                mlp_ratio=shapes[FC1][1] / width, class_token='cls' in shapes, num_classes=0,
                global_pool='token' if 'cls' in shapes else 'avg')


def read_google_npz(path: str) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """The timm ViT state dict of ``path`` and the arrays it does not use (classifier heads)."""
    shapes = _shapes(path)
    model = VisionTransformer(**_architecture(path, shapes))
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.fill_(float('nan'))
        try:
            _load_weights(model, path)
        except (KeyError, RuntimeError) as error:
            raise ValueError(f'{path} does not hold a consistent {NAME} ViT: {error}') from error
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    unfilled = [k for k, v in state.items() if v.isnan().any()]
    if unfilled:
        raise ValueError(f'{path}: the {NAME} loader left {unfilled} unset.')
    ignored = [k for k in shapes if not k.startswith(('embedding/', 'Transformer/')) and k != 'cls']
    return state, ignored

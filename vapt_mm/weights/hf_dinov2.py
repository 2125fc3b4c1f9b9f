"""Hugging Face ``Dinov2Model`` / ``Dinov2WithRegistersModel`` keys as DINOv2 (Meta) keys.

The names are those of transformers' ``modeling_dinov2.py`` and
``modeling_dinov2_with_registers.py``: ``embeddings.{cls_token, mask_token,
register_tokens, position_embeddings, patch_embeddings.projection}``,
``encoder.layer.N.{norm1, attention.attention.{query,key,value},
attention.output.dense, layer_scale1.lambda1, norm2, mlp.fc1, mlp.fc2,
layer_scale2.lambda1}`` and ``layernorm``. The result has the keys of Meta's
DINOv2 files (``cls_token``, ``pos_embed``, ``register_tokens``, ``blocks.N.*``
with ``ls1.gamma``), which timm's DINOv2 conversion takes from there.
"""
from __future__ import annotations

import re
from typing import Dict, List, Tuple

import torch

NAME = 'Hugging Face Dinov2Model'
PATCH_KEY = 'embeddings.patch_embeddings.projection.weight'
#: Prefixes of the ``*ForImageClassification`` / ``*Backbone`` wrappers.
PREFIXES = ('dinov2.', 'dinov2_with_registers.')

_TOP = {
    'embeddings.cls_token': 'cls_token',
    'embeddings.register_tokens': 'register_tokens',
    'embeddings.position_embeddings': 'pos_embed',
    'embeddings.patch_embeddings.projection.weight': 'patch_embed.proj.weight',
    'embeddings.patch_embeddings.projection.bias': 'patch_embed.proj.bias',
    'layernorm.weight': 'norm.weight',
    'layernorm.bias': 'norm.bias',
}
_LAYER = {
    'norm1': 'norm1', 'attention.output.dense': 'attn.proj', 'norm2': 'norm2',
    'mlp.fc1': 'mlp.fc1', 'mlp.fc2': 'mlp.fc2',
}
_QKV = ('query', 'key', 'value')
_LAYER_KEY = re.compile(r'encoder\.layer\.(\d+)\.(.+)\.(weight|bias|lambda1)$')


def is_hf_dinov2(state: Dict[str, torch.Tensor]) -> bool:
    return PATCH_KEY in state


def hf_dinov2_to_meta(state: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Meta DINOv2 keys of a Hugging Face state dict; raises on a key it does not know.

    Returns the converted state and the keys no ViT forward pass reads: the
    mask token (masked-image training) and the classifier of
    ``Dinov2ForImageClassification``.
    """
    out: Dict[str, torch.Tensor] = {}
    ignored, unknown = [], []
    qkv: Dict[Tuple[int, str], Dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        match = _LAYER_KEY.match(key)
        if key in _TOP:
            out[_TOP[key]] = value
        elif key == 'embeddings.mask_token' or key.startswith('classifier.'):
            ignored.append(key)
        elif match is None:
            unknown.append(key)
        else:
            block, module, kind = int(match.group(1)), match.group(2), match.group(3)
            prefix = f'blocks.{block}.'
            if module in ('layer_scale1', 'layer_scale2') and kind == 'lambda1':
                out[f'{prefix}ls{module[-1]}.gamma'] = value
            elif module in _LAYER:
                out[f'{prefix}{_LAYER[module]}.{kind}'] = value
            elif module.startswith('attention.attention.') and module.split('.')[-1] in _QKV:
                qkv.setdefault((block, kind), {})[module.split('.')[-1]] = value
            else:
                unknown.append(key)
    if unknown:
        raise ValueError(f'{NAME} keys this loader does not know: {unknown[:6]} (SwiGLU MLPs, '
                         'as in ViT-g, are not supported); use a DINOv2 file with fc1/fc2 MLPs.')
    for (block, kind), parts in qkv.items():
        if sorted(parts) != sorted(_QKV):
            raise ValueError(f'{NAME} layer {block} lacks attention {kind}s of '
                             f'{sorted(set(_QKV) - set(parts))}.')
        out[f'blocks.{block}.attn.qkv.{kind}'] = torch.cat([parts[p] for p in _QKV])
    return out, ignored

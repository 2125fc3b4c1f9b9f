"""Recognise a backbone weight file's format and return its ViT in timm keys.

``read_vit_weights(path)`` reads the file safely (``files``), unwraps the
checkpoint (``state_dict`` / ``model`` / ``module``), strips wrapper prefixes
(``module.`` as mmengine's ``revise_keys`` does, ``backbone.`` of mmseg
segmentors, ``encoder.vit.model.`` of VAPT segmentors, ``dinov2.`` of Hugging
Face classifiers) and converts the format's keys with the module for it.
Keys that are not the ViT (classifier heads, MAE's decoder, MoCo's momentum
encoder...) are returned as ``ignored``, never dropped silently.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Tuple

import torch

from . import hf_dinov2, moco_v3, timm_keys
from .files import is_npz, read_checkpoint
from .google_npz import NAME as GOOGLE_NPZ
from .google_npz import read_google_npz

MMSEG = 'mmseg VisionTransformer'
OPEN_CLIP = 'open_clip / OpenAI CLIP image tower'
UNKNOWN = 'unrecognised'
#: Each format and an example file, as error messages list them.
FORMATS: Tuple[Tuple[str, str], ...] = (
    (GOOGLE_NPZ, 'imagenet21k_ViT-B_16.npz'),
    (moco_v3.LINEAR_PROBE, 'linear-vit-b-300ep.pth.tar'),
    (moco_v3.PRETRAINING, 'vit-b-300ep.pth.tar'),
    (timm_keys.MAE, 'mae_pretrain_vit_base.pth'),
    (timm_keys.TIMM, 'vit_base_patch16_224 model.safetensors, DeiT, DINO'),
    (timm_keys.DEIT_DISTILLED, 'deit_base_distilled_patch16_224-df68dfff.pth'),
    (timm_keys.DINOV2, 'dinov2_vits14_pretrain.pth, dinov2_vits14_reg4_pretrain.pth'),
    (hf_dinov2.NAME, 'facebook/dinov2-small model.safetensors'),
    (MMSEG, "mmseg's vit2mmseg.py output"),
    (OPEN_CLIP, 'open_clip_model.safetensors'),
)
ACCEPTED = '; '.join(f'{name} (e.g. {example})' for name, example in FORMATS)
#: Wrapper prefixes: the keys under one are the model, the rest is ignored.
PREFIXES = ('module.', 'backbone.', 'encoder.vit.model.', *hf_dinov2.PREFIXES)


@dataclass(frozen=True)
class ViTWeights:
    """A file's ViT tensors and what the file was.

    Attributes:
        state: The tensors, in timm ``VisionTransformer`` keys when ``layout``
            is ``'timm'``, mmseg ``VisionTransformer`` keys for ``'mmseg'``,
            and as in the file otherwise (timm's ``checkpoint_filter_fn``
            converts open_clip towers).
        format: The recognised format (one of ``FORMATS``, or ``UNKNOWN``).
        source: Where in the file the tensors were and which prefixes were stripped.
        layout: ``'timm'``, ``'mmseg'`` or ``'other'``.
        ignored: The file's keys that are not the ViT.
    """

    state: Dict[str, torch.Tensor]
    format: str
    source: str
    layout: str
    ignored: Tuple[str, ...] = ()

    @property
    def description(self) -> str:
        return f'{self.format} ({self.source})'


def _unwrap(checkpoint: Mapping[str, Any]) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """The tensors under ``state_dict`` / ``model`` / ``module`` and the keys descended into."""
    where = []
    for key in ('state_dict', 'model', 'module'):
        if isinstance(checkpoint.get(key), Mapping):
            checkpoint = checkpoint[key]
            where.append(key)
    return {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}, where


def _strip_prefixes(state: Dict[str, torch.Tensor]
                    ) -> Tuple[Dict[str, torch.Tensor], List[str], List[str]]:
    """``state`` without wrapper prefixes, the prefixes stripped and the keys outside them."""
    stripped, ignored = [], []
    for prefix in PREFIXES:
        if any(k.startswith(prefix) for k in state):
            ignored += [k for k in state if not k.startswith(prefix)]
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            stripped.append(prefix)
    return state, stripped, ignored


def _layout(state: Mapping[str, torch.Tensor]) -> Tuple[str, str]:
    """(layout, format) of keys that need no conversion here."""
    if any(k.startswith('layers.') for k in state) and 'cls_token' in state:
        return 'mmseg', MMSEG
    if any(k.startswith('visual.') for k in state):
        return 'other', OPEN_CLIP
    return 'other', UNKNOWN


def read_vit_weights(path: str) -> ViTWeights:
    """The ViT in ``path`` (any of ``FORMATS``) and what the file was.

    A file of no known format comes back with ``format=UNKNOWN`` and its keys
    as they are: loading it then fails with an error that names the formats
    accepted (``ACCEPTED``), unless timm's own filter knows it.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'weights file {path!r} does not exist.')
    npz = is_npz(path)
    if npz or path.endswith('.npz'):
        if not npz:
            raise RuntimeError(f'refused to load {path}: it is not a complete .npz archive; it may '
                               'be truncated: download it again.')
        state, ignored = read_google_npz(path)
        return ViTWeights(state, GOOGLE_NPZ, 'NumPy arrays', 'timm', tuple(ignored))
    checkpoint = read_checkpoint(path)
    state, where = _unwrap(checkpoint)
    state, stripped, ignored = _strip_prefixes(state)
    source = ', '.join([*(f'under {k!r}' for k in where), *(f'{p!r} stripped' for p in stripped)])
    source = source or 'top-level tensors'
    name = None
    if hf_dinov2.is_hf_dinov2(state):
        state, outside = hf_dinov2.hf_dinov2_to_meta(state)
        ignored += outside
        name = hf_dinov2.NAME
    elif moco_v3.is_pretraining(state):
        state, outside = moco_v3.base_encoder(state)
        ignored += outside
        name = moco_v3.PRETRAINING
    elif 'module.' in stripped and moco_v3.is_linear_probe(checkpoint):
        name = moco_v3.LINEAR_PROBE
    if not timm_keys.is_timm_vit(state):
        layout, name = _layout(state)
        return ViTWeights(state, name, source, layout, tuple(ignored))
    state, outside, variant = timm_keys.normalise(state)
    if 'reg_token' in state:
        source += f", {state['reg_token'].shape[1]} register tokens"
    return ViTWeights(state, name or variant, source, 'timm', tuple(ignored + outside))

"""Create an open_clip model (optionally from a local config and checkpoint) for the tools."""
from __future__ import annotations

import pickle
from typing import Callable, Optional, Tuple

import open_clip
from torch import nn

import vapt_mm.models.dinov2  # noqa: F401  (timm names of the DINOv2 towers' trunks)

from .trunk import load_trunk_weights


def create_clip(model_name: str, pretrained: Optional[str] = None,
                model_config: Optional[str] = None, device: str = 'cpu',
                trunk_weights: Optional[str] = None,
                ) -> Tuple[nn.Module, Callable, Callable, Callable]:
    """Model, train and val transforms, and tokenizer of an open_clip model.

    Args:
        model_name: An open_clip model name (``ViT-B-32``, ``ViT-B-16-SigLIP``, ...).
        pretrained: A pretrained tag or a local ``.bin``/``.pt``/``.safetensors``
            file (read with ``weights_only=True``); ``None`` for random weights.
        model_config: A JSON model config file (or folder of them) to register
            with ``open_clip.add_model_config`` first, for custom models.
        trunk_weights: A backbone file (any format of ``vapt_mm.weights.FORMATS``)
            loaded into the timm ViT trunk of a ``TimmModel`` image tower after
            ``pretrained`` (see ``load_trunk_weights``).
    """
    if model_config:
        open_clip.add_model_config(model_config)
    try:
        model, preprocess_train, preprocess_val = open_clip.create_model_and_transforms(
            model_name, pretrained=pretrained, device=device, weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f'refused to load {pretrained}: it holds objects other than tensors, '
                         'which are never unpickled here. Use a plain weights file (a '
                         'state dict, or .safetensors).') from error
    if trunk_weights:
        load_trunk_weights(model, trunk_weights)
    return model, preprocess_train, preprocess_val, open_clip.get_tokenizer(model_name)

"""Retrieval runs (open_clip model + ``vapt.safetensors``, loaded as tools/eval_retrieval.py
does) through the probe."""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.transforms import Normalize

from vapt_mm.clip import CaptionSet, PromptedVisual, load_vapt
from vapt_mm.clip.factory import create_clip
from vapt_mm.clip.visualize import first_captions
from vapt_mm.core import PromptedViT

from .figures import ImageRow
from .probe import image_panels, patch_grid, prompted_encoder


@dataclass
class ClipRun:
    """A CLIP model with trained prompts in eval mode, its transform and tokenizer."""

    name: str
    model: nn.Module
    preprocess: Callable
    tokenizer: Callable
    encoder: PromptedViT


def load_clip_run(name: str, model_name: str, pretrained: Optional[str],
                  model_config: Optional[str], trunk_weights: Optional[str],
                  weights: str) -> ClipRun:
    """Create the model (as ``create_clip``) and apply the prompts (and extras) stored in
    ``weights``."""
    model, _, preprocess, tokenizer = create_clip(model_name, pretrained, model_config,
                                                  trunk_weights=trunk_weights)
    load_vapt(model, weights)
    model.eval()
    visual = model.visual
    encoder = prompted_encoder(visual.prompted if isinstance(visual, PromptedVisual) else None,
                               f'{weights} (a {getattr(model, "vapt_baseline", {}).get("method")} '
                               'run)')
    return ClipRun(name, model, preprocess, tokenizer, encoder)


def has_class_token(encoder: PromptedViT) -> bool:
    """Whether the first prefix token is a class token (timm ViTs may have registers only)."""
    vit = encoder.vit
    return vit.num_prefix_tokens > 0 and getattr(getattr(vit, 'model', vit), 'has_class_token',
                                                 True)


def display_image(pixels: torch.Tensor, preprocess: Callable) -> np.ndarray:
    """A preprocessed (3, H, W) image back in (H, W, 3) uint8, with the transform's
    ``Normalize`` undone."""
    norm = next(t for t in preprocess.transforms if isinstance(t, Normalize))
    mean, std = torch.tensor(norm.mean).view(3, 1, 1), torch.tensor(norm.std).view(3, 1, 1)
    return ((pixels * std + mean).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def clip_row(runs: Sequence[ClipRun], data: CaptionSet, index: int,
             layers: Sequence[int]) -> ImageRow:
    """The panels of every run on image ``index``, scored against its first caption."""
    caption = data.captions[first_captions(data, index + 1)[index]]
    with Image.open(data.images[index]) as image:
        image = image.convert('RGB')
    cls = has_class_token(runs[0].encoder)
    panels = []
    for run in runs:
        pixels = run.preprocess(image)[None]
        with torch.no_grad():
            text = run.model.encode_text(run.tokenizer([caption]), normalize=True)
        grid = patch_grid(run.encoder, pixels)

        def score() -> torch.Tensor:
            return (run.model.encode_image(pixels, normalize=True) * text).sum()
        prefix = torch.zeros(run.encoder.vit.num_prefix_tokens)
        prefix[:1] = float(cls)
        patches = torch.full((grid[0] * grid[1],), float(not cls))
        panels.append(image_panels(run.encoder, score, prefix, patches, grid,
                                   tuple(pixels.shape[-2:]), layers))
    title = '\n'.join(textwrap.wrap(f'image {index}: "{caption}"', width=34)[:3])
    return ImageRow(display_image(runs[0].preprocess(image), runs[0].preprocess), title, None,
                    panels, query='the class token' if cls else 'all patch tokens',
                    target='the image-caption similarity')

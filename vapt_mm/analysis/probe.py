"""What the tool computes for one prompted ViT: token maps and per-image panels."""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from vapt_mm.core import PromptedViT

from .attention import AttentionRecorder, prompt_attention
from .figures import RunPanels
from .gradcam import grad_cam, patch_map
from .token_maps import position_weights


def prompted_encoder(module: Optional[nn.Module], where: str) -> PromptedViT:
    """``module`` if it is a ``PromptedViT``, else an error naming ``where`` it came from."""
    if not isinstance(module, PromptedViT):
        raise ValueError(f'{where} has no prompts (no PromptedViT); the tool visualises runs of '
                         'VAPT, VPT-deep or VPT-shallow, not head-only or full fine-tuning.')
    return module


def check_layers(layers: Optional[Sequence[int]], depth: int) -> Tuple[int, ...]:
    """The chosen block indices (all if ``None``), or an error naming the valid range."""
    chosen = tuple(range(depth)) if layers is None else tuple(layers)
    bad = [i for i in chosen if not 0 <= i < depth]
    if bad or not chosen:
        raise ValueError(f'--layers {list(bad or chosen)} are not blocks of this {depth}-block '
                         f'ViT; choose from 0 to {depth - 1}.')
    return chosen


def generated_layers(encoder: PromptedViT) -> Dict[int, nn.Module]:
    """The prompt generator of each generated layer, by block index (none for VPT)."""
    first = encoder.prompts.static.shape[0]
    return {first + i: g for i, g in enumerate(encoder.prompts.generators)}


def token_maps(encoder: PromptedViT,
               layers: Sequence[int]) -> Optional[Tuple[torch.Tensor, Tuple[int, ...]]]:
    """Position weights (layers, K, N, H, W) of the chosen generated layers and those
    layers, or ``None`` if none of them is generated."""
    generators = generated_layers(encoder)
    shown = tuple(i for i in layers if i in generators)
    if not shown:
        return None
    return torch.stack([position_weights(generators[i])[0] for i in shown]), shown


def patch_grid(encoder: PromptedViT, images: torch.Tensor) -> Tuple[int, int]:
    with torch.no_grad():
        return tuple(encoder.vit.embed(images)[1])


def image_panels(encoder: PromptedViT, score: Callable[[], torch.Tensor],
                 prefix_queries: torch.Tensor, patch_queries: torch.Tensor,
                 grid: Tuple[int, int], size: Tuple[int, int],
                 layers: Sequence[int]) -> RunPanels:
    """Attention of the weighted queries to the prompts in ``layers`` and Grad-CAM of
    ``score()`` at the input of the last block, for one image (``score`` runs the model on
    it). At its output, a model pooling the class token would give patches no gradient.

    ``prefix_queries`` weigh the prefix tokens (e.g. one-hot on the class token),
    ``patch_queries`` the h*w patch tokens.
    """
    prefix, num_prompts = encoder.vit.num_prefix_tokens, encoder.cfg.num_tokens
    queries = torch.cat([prefix_queries, torch.zeros(num_prompts), patch_queries])[None]
    if float(queries.sum()) <= 0:
        raise ValueError('the query tokens have no weight (an empty region?); choose another '
                         'class or image.')
    with torch.no_grad(), AttentionRecorder(encoder.vit.blocks) as recorder:
        score()
    attention = prompt_attention(recorder.maps, queries, prefix, num_prompts)[0]
    cam = grad_cam(score, encoder.vit.blocks[-1], lambda t: patch_map(t, grid), size,
                   at_input=True)[0]
    return RunPanels(attention[list(layers)], cam)

"""A tiny timm ViT pretrained on the generated source task of ``tiny_vit_scenes``, cached by recipe.

The ViT learns dense targets: a linear head on every *patch token* (after the
final norm) predicts the patch's shape and texture-family histograms, so the
patch tokens, which segmentation heads and the VAPT prompt generator read,
are what gets trained. Written files (in the cache folder):

* ``vit.safetensors``: timm ``VisionTransformer`` keys (``num_classes=0``, no head);
* ``geometry.json``: ViT arguments, input normalisation and training log.

mmseg's own ``VisionTransformer`` wants mmseg keys:
``vapt_mm.weights.mmseg_keys.timm_to_mmseg_vit`` converts them.
"""
from __future__ import annotations

import json
import sys
import math
import time
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from . import tiny_vit_scenes as scenes
from ..weights.cache import cached_artifact

#: ImageNet mean/std in RGB, as mmseg's ADE20K data preprocessor normalises.
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)

RECIPES: Dict[str, dict] = {
    # About 6 minutes on one CPU thread of this (shared, 2-core) machine.
    'default': dict(img_size=64, patch_size=8, embed_dim=96, depth=4, num_heads=3, mlp_ratio=4,
                    steps=800, batch_size=32, lr=1e-3, weight_decay=0.05, warmup=40, seed=0),
    # Twice the depth, 1.5x the steps (about 7 minutes): the study's deeper backbone (#10).
    'deep': dict(img_size=64, patch_size=8, embed_dim=96, depth=8, num_heads=3, mlp_ratio=4,
                 steps=1200, batch_size=32, lr=1e-3, weight_decay=0.05, warmup=60, seed=0),
    # A few seconds: for tests.
    'tiny': dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2,
                 steps=3, batch_size=4, lr=1e-3, weight_decay=0.05, warmup=1, seed=0),
}


def geometry(recipe: dict) -> dict:
    """timm ``VisionTransformer`` keyword arguments of a recipe."""
    return {k: recipe[k] for k in ('img_size', 'patch_size', 'embed_dim', 'depth', 'num_heads',
                                   'mlp_ratio')}


def build_vit(recipe: dict) -> VisionTransformer:
    """The recipe's timm ViT without classifier (patch tokens stay available)."""
    return VisionTransformer(num_classes=0, **geometry(recipe))


class DenseSourceModel(nn.Module):
    """ViT + one linear head on every patch token for the shape and family targets."""

    def __init__(self, recipe: dict) -> None:
        super().__init__()
        self.vit = build_vit(recipe)
        self.head = nn.Linear(recipe['embed_dim'], len(scenes.SHAPES) + len(scenes.FAMILIES))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        tokens = self.vit.forward_features(images)[:, self.vit.num_prefix_tokens:]
        return self.head(tokens)


def _soft_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -(target * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def pretrain(recipe: dict, out_dir: Path, log_every: int = 100) -> dict:
    """Train on the source task and write the files; returns the training log."""
    torch.manual_seed(recipe['seed'])
    rng = np.random.default_rng(recipe['seed'])
    model = DenseSourceModel(recipe)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and 'pos_embed' not in n]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1 or 'pos_embed' in n]
    optimizer = torch.optim.AdamW([dict(params=decay, weight_decay=recipe['weight_decay']),
                                   dict(params=no_decay, weight_decay=0.0)], lr=recipe['lr'])
    steps, warmup = recipe['steps'], recipe['warmup']
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(
        (s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))))
    num_shapes = len(scenes.SHAPES)
    log, start = [], time.time()
    model.train()
    for step in range(steps):
        images, shapes, families = scenes.make_batch(recipe['batch_size'], recipe['img_size'],
                                                     recipe['patch_size'], rng)
        logits = model(_to_tensor(images))
        loss_shape = _soft_ce(logits[..., :num_shapes], torch.from_numpy(shapes))
        loss_family = _soft_ce(logits[..., num_shapes:], torch.from_numpy(families))
        loss = loss_shape + loss_family
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if (step + 1) % log_every == 0 or step + 1 == steps:
            log.append(dict(step=step + 1, loss_shape=round(loss_shape.item(), 4),
                            loss_family=round(loss_family.item(), 4),
                            seconds=round(time.time() - start, 1)))
            print(json.dumps(log[-1]), flush=True)
    state = {k: v.contiguous() for k, v in model.vit.state_dict().items()}
    save_file(state, str(out_dir / 'vit.safetensors'))
    info = dict(timm=geometry(recipe), mean=MEAN, std=STD, bgr_to_rgb=True,
                source_task='vapt_mm.demo.tiny_vit_scenes: dense shape + texture-family histograms',
                log=log, train_seconds=round(time.time() - start, 1), torch=torch.__version__,
                timm_version=timm.__version__)
    (out_dir / 'geometry.json').write_text(json.dumps(info, indent=2))
    return info


def pretrained_vit(name: str = 'default', overrides: Optional[dict] = None,
                   root: Optional[Path] = None) -> Path:
    """The cache folder of recipe ``name`` (with ``overrides``), pretraining it on a miss."""
    recipe = {**RECIPES[name], **(overrides or {})}
    return cached_artifact(f'tiny-vit-{name}', recipe, lambda out: pretrain(recipe, out),
                           modules=[sys.modules[__name__], scenes], root=root)

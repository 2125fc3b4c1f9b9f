"""Pretrain a tiny open_clip CLIP contrastively on generated source pairs, cached by recipe.

The checkpoint is an ordinary open_clip state dict (``.safetensors``) that
``open_clip.create_model_and_transforms(name, pretrained=PATH)`` loads once the
model config written next to it is registered with ``open_clip.add_model_config``.
"""
from __future__ import annotations

import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional

import open_clip
import torch
from open_clip.loss import ClipLoss
from open_clip_train.scheduler import cosine_lr
from safetensors.torch import save_file

from . import tiny_clip_captions as captions
from ..weights.cache import cached_artifact, preset_recipe

MODEL_NAME = 'vapt-tiny-clip-pt'
CONFIG_FILE = Path(__file__).resolve().parents[2] / 'configs' / 'retrieval' / f'{MODEL_NAME}.json'
RECIPES: Dict[str, Dict[str, Any]] = {
    # About 10 minutes with one thread (0.45 s a step, generating included).
    'default': {'steps': 1200, 'batch_size': 128, 'lr': 2e-3, 'wd': 0.1, 'warmup': 30,
                'draw_size': 64, 'seed': 0},
    # A few seconds: for tests.
    'tiny': {'steps': 3, 'batch_size': 16, 'lr': 2e-3, 'wd': 0.1, 'warmup': 1,
             'draw_size': 64, 'seed': 0},
}
log = logging.getLogger(__name__)


def make_recipe(preset: str = 'default', model_config: Optional[str] = None,
                **overrides: Any) -> Dict[str, Any]:
    """A full recipe: a preset with ``overrides``, the model name and its config's content."""
    path = Path(model_config) if model_config else CONFIG_FILE
    return {**preset_recipe(RECIPES, preset, overrides), 'model': path.stem,
            'model_config': json.loads(path.read_text())}


def _batch(rng: random.Random, size: int, draw_size: int, preprocess: Any,
           tokenizer: Any) -> tuple:
    pairs = [captions.sample_pair(rng, draw_size) for _ in range(size)]
    images = torch.stack([preprocess(image) for image, _ in pairs])
    return images, tokenizer([caption for _, caption in pairs])


@torch.no_grad()
def _source_recall(model: torch.nn.Module, batch: tuple) -> float:
    """Image -> text R@1 within one held-out batch of source pairs (a sanity check)."""
    model.eval()
    image_features, text_features, _ = model(*batch)
    hits = (image_features @ text_features.T).argmax(1) == torch.arange(len(image_features))
    return hits.float().mean().item()


def train_clip(recipe: Dict[str, Any], folder: Path) -> None:
    """Train the recipe's model from scratch and write ``<model>.safetensors``,
    ``<model>.json`` (its open_clip config) and ``train_log.jsonl`` to ``folder``."""
    name = recipe['model']
    config_path = folder / f'{name}.json'
    config_path.write_text(json.dumps(recipe['model_config'], indent=2))
    open_clip.add_model_config(config_path)
    torch.manual_seed(recipe['seed'])
    model, _, preprocess = open_clip.create_model_and_transforms(name)
    tokenizer = open_clip.get_tokenizer(name)
    rng = random.Random(recipe['seed'])
    held_out = _batch(random.Random(recipe['seed'] + 10_000), 256, recipe['draw_size'],
                      preprocess, tokenizer)
    optimizer = torch.optim.AdamW(
        [{'params': [p for p in model.parameters() if p.ndim >= 2],
          'weight_decay': recipe['wd']},
         {'params': [p for p in model.parameters() if p.ndim < 2], 'weight_decay': 0.0}],
        lr=recipe['lr'])
    scheduler = cosine_lr(optimizer, recipe['lr'], recipe['warmup'], recipe['steps'])
    loss_fn = ClipLoss()
    tic = time.time()
    with open(folder / 'train_log.jsonl', 'w') as log_file:
        for step in range(recipe['steps']):
            scheduler(step)
            model.train()
            images, texts = _batch(rng, recipe['batch_size'], recipe['draw_size'], preprocess,
                                   tokenizer)
            loss = loss_fn(*model(images, texts))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, 4.6052)  # ln(100), as open_clip
            last = step + 1 == recipe['steps']
            if (step + 1) % 25 == 0 or last:
                entry = {'step': step + 1, 'loss': loss.item(), 'seconds': time.time() - tic,
                         'held_out_i2t_r1': _source_recall(model, held_out)}
                log_file.write(json.dumps(entry) + '\n')
                log_file.flush()
                log.info('step %(step)d loss %(loss).4f held-out R@1 %(held_out_i2t_r1).3f '
                         '%(seconds).0f s', entry)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              folder / f'{name}.safetensors', metadata={'recipe': json.dumps(recipe)})


def pretrained_tiny_clip(recipe: Dict[str, Any], root: Optional[Path] = None) -> Path:
    """The checkpoint file of ``recipe`` (see ``make_recipe``), trained on first use only.

    Its model config is ``<same folder>/<model>.json``.
    """
    folder = cached_artifact(recipe['model'], recipe, lambda f: train_clip(recipe, f),
                             modules=[captions, sys.modules[__name__]], root=root)
    return folder / f'{recipe["model"]}.safetensors'

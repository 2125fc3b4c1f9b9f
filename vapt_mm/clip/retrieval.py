"""Batched image/text embedding and zero-shot retrieval evaluation of a CLIP model."""
from __future__ import annotations

import hashlib
import json
import os
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from .data import CaptionSet, ImageDataset
from .metrics import recall_at_k
from .shards import eval_samples


@torch.no_grad()
def embed_images(model: nn.Module, paths: Sequence[str], transform: Callable, device: torch.device,
                 batch_size: int = 64, workers: int = 0, progress: bool = True) -> torch.Tensor:
    """L2-normalised image embeddings (N, D) on ``device`` (a progress bar if ``progress``)."""
    loader = DataLoader(ImageDataset(paths, transform), batch_size=batch_size, num_workers=workers)
    chunks = [model.encode_image(images.to(device), normalize=True).float()
              for images in tqdm(loader, desc='images', unit='batch', disable=not progress)]
    return torch.cat(chunks)


@torch.no_grad()
def embed_texts(model: nn.Module, captions: Sequence[str], tokenizer: Callable,
                device: torch.device, batch_size: int = 256, progress: bool = True) -> torch.Tensor:
    """L2-normalised caption embeddings (N, D) on ``device`` (a progress bar if ``progress``)."""
    chunks = []
    for start in tqdm(range(0, len(captions), batch_size), desc='texts', unit='batch',
                      disable=not progress):
        tokens = tokenizer(list(captions[start:start + batch_size])).to(device)
        chunks.append(model.encode_text(tokens, normalize=True).float())
    return torch.cat(chunks)


def cached_text_embeddings(path: str, key: str,
                           compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Embeddings stored in ``path`` under ``key``, computed (and stored) when absent or stale."""
    if os.path.isfile(path):
        with safe_open(path, framework='pt') as f:
            if (f.metadata() or {}).get('key') == key:
                return f.get_tensor('text_emb')
    emb = compute()
    tmp = f'{path}.tmp'
    save_file({'text_emb': emb.cpu().contiguous()}, tmp, metadata={'key': key})
    os.replace(tmp, path)
    return emb


def text_cache_key(model_id: str, captions: Sequence[str]) -> str:
    """Fingerprint of a text tower identity and the captions it embeds."""
    return hashlib.sha256(json.dumps([model_id, list(captions)]).encode()).hexdigest()


def embed_caption_set(model: nn.Module, data: CaptionSet, transform: Callable,
                      tokenizer: Callable, device: torch.device, batch_size: int = 64,
                      workers: int = 0, text_cache: Optional[str] = None, model_id: str = '',
                      progress: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """Normalised embeddings of ``data``'s images and captions.

    With ``text_cache`` the caption embeddings are kept in that file, keyed by
    ``model_id`` and the captions: VAPT leaves the text tower untouched, so one
    cache serves the zero-shot model and every prompt file of the same base.
    """
    model.eval()
    image_emb = embed_images(model, data.images, transform, device, batch_size, workers, progress)

    def texts() -> torch.Tensor:
        return embed_texts(model, data.captions, tokenizer, device, batch_size, progress)
    if text_cache:
        text_emb = cached_text_embeddings(text_cache, text_cache_key(model_id, data.captions),
                                          texts).to(device)
    else:
        text_emb = texts()
    return image_emb, text_emb


def evaluate_retrieval(model: nn.Module, data: CaptionSet, transform: Callable, tokenizer: Callable,
                       device: torch.device, batch_size: int = 64, workers: int = 0,
                       ks: Sequence[int] = (1, 5, 10), chunk_size: int = 1024,
                       text_cache: Optional[str] = None, model_id: str = '',
                       progress: bool = True) -> Dict[str, float]:
    """Recall@K of ``model`` on ``data`` (see ``metrics.recall_at_k``)."""
    image_emb, text_emb = embed_caption_set(model, data, transform, tokenizer, device,
                                            batch_size, workers, text_cache, model_id, progress)
    return recall_at_k(image_emb, text_emb, torch.tensor(data.text_to_image), ks, chunk_size)


@torch.no_grad()
def evaluate_shards(model: nn.Module, urls: Sequence[str], transform: Callable,
                    tokenizer: Callable, device: torch.device, batch_size: int = 64,
                    workers: int = 0, ks: Sequence[int] = (1, 5, 10), chunk_size: int = 1024,
                    skip_corrupt: bool = False) -> Dict[str, float]:
    """Recall@K of ``model`` on webdataset shards, each sample an image with its captions
    (``tools/make_shards.py --group-captions``), read once (``shards.eval_samples``)."""
    model.eval()
    chunks, pending, captions, text_to_image = [], [], [], []

    def embed() -> None:
        chunks.append(model.encode_image(torch.stack(pending).to(device), normalize=True).float())
        pending.clear()
    for index, (image, texts) in enumerate(eval_samples(urls, transform, workers, skip_corrupt)):
        text_to_image += [index] * len(texts)
        captions += texts
        pending.append(image)
        if len(pending) == batch_size:
            embed()
    if pending:
        embed()
    if not captions:
        raise ValueError(f'the validation shards {list(urls)[:3]}... hold no sample.')
    text_emb = embed_texts(model, captions, tokenizer, device, batch_size, progress=False)
    return recall_at_k(torch.cat(chunks), text_emb, torch.tensor(text_to_image), ks, chunk_size)

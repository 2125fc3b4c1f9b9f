"""Shared helpers of the mmseg tests: tiny ViT configs and pretrained files."""
import contextlib
import logging
from pathlib import Path
from typing import Dict, Iterator, List

import timm
from mmengine.logging import MMLogger
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / '.venv' / 'bin' / 'python')


def tiny_mmseg_vit(**overrides) -> dict:
    """mmseg VisionTransformer arguments of a 4-block, 32-wide ViT with 8x8 patches."""
    return dict(type='VisionTransformer', patch_size=8, embed_dims=32, num_layers=4,
                num_heads=2, mlp_ratio=2, norm_cfg=dict(type='LN', eps=1e-6), **overrides)


def timm_state(depth: int = 4, dim: int = 32, img_size: int = 32, patch: int = 8,
               seed: int = 0, mlp_ratio: float = 2) -> Dict[str, torch.Tensor]:
    """A random timm ViT's weights (the layout of timm/ImageNet checkpoints)."""
    torch.manual_seed(seed)
    model = timm.create_model('vit_tiny_patch16_224', pretrained=False, img_size=img_size,
                              patch_size=patch, embed_dim=dim, depth=depth, num_heads=2,
                              mlp_ratio=mlp_ratio, num_classes=0)
    return {k: v.clone() for k, v in model.state_dict().items()}


def write_timm_file(path: Path, **kwargs) -> Path:
    """Save ``timm_state(**kwargs)`` as .safetensors (or .pth for other suffixes)."""
    state = timm_state(**kwargs)
    if path.suffix == '.safetensors':
        save_file(state, str(path))
    else:
        torch.save({'state_dict': state}, path)
    return path


@contextlib.contextmanager
def mmlogger_records() -> Iterator[List[logging.LogRecord]]:
    """The records mmengine's current logger emits inside the block."""
    records: List[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)

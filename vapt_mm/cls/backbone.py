"""``VAPTClsBackbone``: a ViT with adaptive prompts as an mmpretrain backbone."""
from __future__ import annotations

import copy
import warnings
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmpretrain.models import VisionTransformer
from mmpretrain.registry import MODELS
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..core import PromptConfig, PromptedViT, PromptableViT
from ..models.timm_factory import create_timm_vit
from ..weights import load_checked, read_vit_weights, timm_vit_state
from .mmpretrain_vit import MMPretrainViT
from .weights import mmpretrain_vit_state


def build_vit(cfg: dict, img_size: Tuple[int, int]) -> nn.Module:
    """A ``PromptableViT`` adapter from a ``vit`` config dict (mmpretrain or timm)."""
    cfg = copy.deepcopy(dict(cfg))
    vit_type = cfg.pop('type', None)
    if vit_type == 'timm':
        return create_timm_vit(cfg, img_size)
    vit_cls = MODELS.get(vit_type) if isinstance(vit_type, str) else vit_type
    if not isinstance(vit_cls, type) or not issubclass(vit_cls, VisionTransformer):
        raise TypeError(f'VAPTClsBackbone needs vit=dict(type="VisionTransformer", arch=...) '
                        f'or dict(type="timm", model_name=...), got type {vit_type!r}.')
    if cfg.get('init_cfg'):
        raise ValueError('put the pretrained weights in VAPTClsBackbone(init_cfg=dict('
                         "type='Pretrained', checkpoint=...)), not in the vit config.")
    if cfg.get('frozen_stages', -1) > 0:
        raise ValueError('VAPTClsBackbone freezes the ViT itself (train_vit=False); drop '
                         'frozen_stages from the vit config.')
    cfg.update(img_size=img_size, out_indices=-1)
    return MMPretrainViT(vit_cls(**cfg))


class PlainViT(nn.Module):
    """A ``PromptableViT`` run as it is (head-only and full fine-tuning).

    Args:
        vit (PromptableViT): The ViT adapter.
        backbone_eval (bool): Keep the ViT in eval mode while training.
        with_cp (bool): Gradient checkpointing of the blocks while training.
    """

    def __init__(self, vit: PromptableViT, backbone_eval: bool, with_cp: bool) -> None:
        super().__init__()
        self.vit = vit
        self.backbone_eval = backbone_eval
        self.with_cp = with_cp

    def train(self, mode: bool = True) -> 'PlainViT':
        super().train(mode)
        if mode and self.backbone_eval:
            self.vit.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Final tokens (B, prefix + h*w, C) after the ViT's final norm."""
        tokens, _ = self.vit.embed(images)
        for block in self.vit.blocks:
            if self.with_cp and self.training and torch.is_grad_enabled():
                tokens = checkpoint(block, tokens, use_reentrant=False)
            else:
                tokens = block(tokens)
        return self.vit.norm(tokens)


@MODELS.register_module()
class VAPTClsBackbone(BaseModule):
    """A ViT with VAPT (or VPT) prompts, or without prompts, returning the class
    token after the final norm (the paper's pooling) for ``LinearClsHead``.

    Every method runs this one network: VAPT / VPT with ``prompt_cfg``, the
    linear probe (head-only) with ``prompt_cfg=None``, and full fine-tuning
    with ``prompt_cfg=None, train_vit=True``.

    Args:
        vit (dict): The ViT: ``dict(type='VisionTransformer', arch=...,
            patch_size=..., ...)`` with mmpretrain ViT arguments (a class
            token, ``out_type='cls_token'``), or ``dict(type='timm',
            model_name=..., **timm_kwargs)``.
        prompt_cfg (dict, optional): ``vapt_mm.core.PromptConfig`` options;
            unknown keys raise. ``None``: no prompts. Default: None.
        img_size (int | tuple): Training image (H, W); sets the prompts'
            reference grid and the ViT's position-embedding grid. Must be
            divisible by the patch size. Default: 224.
        train_vit (bool): Train the ViT's own weights (full fine-tuning);
            False freezes them. Default: False.
        backbone_eval (bool, optional): Keep the ViT in eval mode (no dropout,
            drop-path) while training. Default: ``not train_vit``.
        with_cp (bool): Gradient checkpointing of the blocks while training.
            Default: False.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=path)``
            with ViT weights in any format of ``vapt_mm.weights.FORMATS``
            (Google ``.npz``, timm, mmseg/mmpretrain, DeiT, DINOv2, MAE, MoCo v3).
    """

    def __init__(self, vit: dict, prompt_cfg: Optional[dict] = None,
                 img_size: Union[int, Tuple[int, int]] = 224, train_vit: bool = False,
                 backbone_eval: Optional[bool] = None, with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if init_cfg is not None and init_cfg.get('type') != 'Pretrained':
            raise ValueError(f"init_cfg must be dict(type='Pretrained', checkpoint=...), "
                             f'got {init_cfg}.')
        if prompt_cfg is not None and train_vit:
            raise ValueError('train_vit=True is full fine-tuning, which has no prompts: set '
                             'prompt_cfg=None, or train_vit=False to tune prompts.')
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        adapter = build_vit(vit, img_size)
        backbone_eval = not train_vit if backbone_eval is None else backbone_eval
        if prompt_cfg is None:
            self.encoder = PlainViT(adapter, backbone_eval, with_cp)
        else:
            self.encoder = PromptedViT(adapter, PromptConfig.from_dict(prompt_cfg),
                                       image_size=img_size, backbone_eval=backbone_eval,
                                       with_cp=with_cp)
        self.encoder.vit.requires_grad_(train_vit)

    @property
    def vit(self) -> nn.Module:
        """The ViT module whose weights come from the pretrained file."""
        return self.encoder.vit.model

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor]:
        """Images (B, 3, H, W) -> ((B, C) class token after the final norm,)."""
        return (self.encoder(images)[:, 0],)

    def init_weights(self) -> None:
        """Load the pretrained ViT, or leave the random one (with a warning).

        Prompt parameters keep their construction-time initialisation.
        """
        if self.init_cfg is None:
            warnings.warn('VAPTClsBackbone has no pretrained weights: the ViT stays random.')
        else:
            self.load_pretrained(self.init_cfg['checkpoint'])
        self._is_init = True

    def load_pretrained(self, path: str) -> Dict[str, List[str]]:
        """Load ViT weights from ``path`` (any format of ``vapt_mm.weights.FORMATS``),
        position embeddings resized to ``img_size``.

        Returns the missing and unexpected keys (the file's keys that are not
        the ViT included); raises, with nothing loaded, if the file does not fit.
        """
        weights = read_vit_weights(path)
        if isinstance(self.vit, VisionTransformer):
            keys = load_checked(self.vit, mmpretrain_vit_state(weights, self.vit, path), weights,
                                path, 'layers.')
        else:
            keys = load_checked(self.vit, timm_vit_state(weights, self.vit, path), weights, path,
                                'blocks.')
        print_log(f'VAPTClsBackbone loaded {path}, read as {weights.description}; '
                  + '; '.join(f'{k}: {v}' for k, v in keys.items()), logger='current')
        return dict(missing_keys=keys['missing_keys'], unexpected_keys=keys['unexpected_keys'])

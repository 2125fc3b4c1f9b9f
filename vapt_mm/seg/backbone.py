"""``VAPTBackbone``: a frozen ViT with adaptive prompts, as an mmseg backbone."""
from __future__ import annotations

import copy
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.models.backbones import VisionTransformer
from mmseg.registry import MODELS
from torch import nn

from ..core import PromptConfig, PromptedViT
from ..models.timm_factory import create_timm_vit
from ..weights import load_checked, read_vit_weights, timm_vit_state
from .mmseg_vit import MMSegViT
from .weights import mmseg_vit_weights


def build_vit(cfg: dict, img_size: Tuple[int, int], final_norm: bool) -> nn.Module:
    """An adapter implementing ``PromptableViT`` from a ``vit`` config dict."""
    cfg = copy.deepcopy(dict(cfg))
    vit_type = cfg.pop('type', None)
    if vit_type == 'timm':
        return create_timm_vit(cfg, img_size)
    vit_cls = MODELS.get(vit_type) if isinstance(vit_type, str) else vit_type
    if vit_cls is None or not issubclass(vit_cls, VisionTransformer):
        raise TypeError(f'VAPTBackbone needs vit=dict(type="VisionTransformer", ...) or '
                        f'dict(type="timm", model_name=...), got type {vit_type!r}.')
    if cfg.get('init_cfg') or cfg.get('pretrained'):
        raise ValueError('put the pretrained weights in VAPTBackbone(init_cfg=dict('
                         "type='Pretrained', checkpoint=...)), not in the vit config.")
    cfg.update(img_size=img_size, final_norm=final_norm, out_indices=-1)
    return MMSegViT(vit_cls(**cfg))


@MODELS.register_module()
class VAPTBackbone(BaseModule):
    """Frozen ViT + VAPT prompts, returning the plain ViT's multi-level maps.

    Args:
        vit (dict): The ViT: ``dict(type='VisionTransformer', ...)`` with
            mmseg ViT arguments, or ``dict(type='timm', model_name=...,
            checkpoint_path=None, **timm_kwargs)``.
        prompt_cfg (dict): ``vapt_mm.core.PromptConfig`` options; unknown keys raise.
        out_indices (int | Sequence[int]): Blocks whose outputs become feature
            maps; negative values count from the end. Default: -1.
        final_norm (bool): Apply the ViT's final norm to the last block's
            output, as mmseg's ``final_norm``. Default: False.
        img_size (int | tuple): Training crop (H, W); sets the prompts'
            reference grid. Must be divisible by the patch size. Default: 512.
        backbone_eval (bool): Keep the frozen ViT in eval mode while training.
            Default: True.
        with_cp (bool): Gradient checkpointing of the ViT blocks while
            training (less memory, more time). Default: False.
        pretrained (str, optional): Deprecated alias of ``init_cfg``'s checkpoint.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=path)``
            with ViT weights in any format of ``vapt_mm.weights.FORMATS`` (timm,
            mmseg, Google ``.npz``, MoCo v3, MAE, DeiT, DINOv2 incl. Hugging Face).
    """

    def __init__(self, vit: dict, prompt_cfg: Optional[dict] = None,
                 out_indices: Union[int, Sequence[int]] = -1, final_norm: bool = False,
                 img_size: Union[int, Tuple[int, int]] = 512, backbone_eval: bool = True,
                 with_cp: bool = False, pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError('set either pretrained or init_cfg, not both.')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        if vit.get('type') == 'timm' and vit.get('checkpoint_path'):
            if init_cfg is not None:
                raise ValueError('set either vit.checkpoint_path or init_cfg, not both.')
            init_cfg = dict(type='Pretrained', checkpoint=vit['checkpoint_path'])
        super().__init__(init_cfg=init_cfg)
        if init_cfg is not None and init_cfg.get('type') != 'Pretrained':
            raise ValueError(f"init_cfg must be dict(type='Pretrained', checkpoint=...), "
                             f'got {init_cfg}.')
        prompt = PromptConfig.from_dict(prompt_cfg)
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.final_norm = final_norm
        self.encoder = PromptedViT(build_vit(vit, img_size, final_norm), prompt,
                                   image_size=img_size, backbone_eval=backbone_eval,
                                   with_cp=with_cp)
        depth = len(self.encoder.vit.blocks)
        indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        if not indices or any(not -depth <= i < depth for i in indices):
            raise ValueError(f'out_indices {out_indices} out of range for {depth} blocks.')
        self.out_indices: List[int] = [i % depth for i in indices]
        self.encoder.vit.requires_grad_(False)

    @property
    def vit(self) -> nn.Module:
        """The ViT module whose weights come from the pretrained file."""
        return self.encoder.vit.model

    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        tokens, (h, w) = self.encoder.forward_features(inputs, self.out_indices)
        last = len(self.encoder.vit.blocks) - 1
        prefix = self.encoder.vit.num_prefix_tokens
        outs = []
        for index, x in zip(self.out_indices, tokens):
            if self.final_norm and index == last:
                x = self.encoder.vit.norm(x)
            x = x[:, prefix:]
            outs.append(x.reshape(x.shape[0], h, w, -1).permute(0, 3, 1, 2).contiguous())
        return tuple(outs)

    def init_weights(self) -> None:
        """Load the pretrained ViT, or leave the random one (with a warning).

        Prompt parameters keep their construction-time initialisation; nothing
        here re-initialises weights that a pretrained file provided.
        """
        if self.init_cfg is None:
            warnings.warn('VAPTBackbone has no pretrained weights: the frozen ViT stays random.')
        else:
            self.load_pretrained(self.init_cfg['checkpoint'])
        self._is_init = True

    def load_pretrained(self, path: str) -> Dict[str, List[str]]:
        """Load ViT weights from ``path`` (any format of ``vapt_mm.weights.FORMATS``),
        resizing position embeddings to ``img_size``.

        Returns the missing and unexpected keys (the file's keys that are not
        the ViT included); raises, with nothing loaded, if the file does not fit.
        """
        weights = read_vit_weights(path)
        if isinstance(self.vit, VisionTransformer):
            weights = mmseg_vit_weights(weights, path)
            keys = load_checked(self.vit, self._resize_pos_embed(weights.state), weights, path,
                                'layers.')
        else:
            keys = load_checked(self.vit, timm_vit_state(weights, self.vit, path), weights, path,
                                'blocks.')
        print_log(f'VAPTBackbone loaded {path}, read as {weights.description}; '
                  + '; '.join(f'{k}: {v}' for k, v in keys.items()), logger='current')
        return dict(missing_keys=keys['missing_keys'], unexpected_keys=keys['unexpected_keys'])

    def _resize_pos_embed(self, state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The class token's and a square grid's position embeddings -> the crop's grid."""
        vit = self.vit
        pos = state.get('pos_embed')
        if pos is not None and pos.shape != vit.pos_embed.shape:
            side = int((pos.shape[1] - 1) ** 0.5)
            grid = (vit.img_size[0] // vit.patch_size, vit.img_size[1] // vit.patch_size)
            state = {**state, 'pos_embed': vit.resize_pos_embed(pos, grid, (side, side),
                                                                vit.interpolate_mode)}
        return state

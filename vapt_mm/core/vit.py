"""What the core needs from a ViT, and the prompted forward pass that drives it."""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Protocol, Sequence, Tuple, runtime_checkable

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .config import PromptConfig
from .gate import PromptGate
from .generator import Grid
from .prompts import LayerPrompts


@runtime_checkable
class PromptableViT(Protocol):
    """A ViT the core can drive. Integrations implement it; the core never
    looks for attribute names of a particular library.

    Attributes:
        embed_dim: Token width C.
        num_prefix_tokens: Class/register tokens in front of the patch tokens.
        patch_size: Patch (height, width) in pixels.
        blocks: The transformer blocks, each mapping batch-first tokens
            (B, T, C) to (B, T, C) for any sequence length T.
        norm: Final norm applied to the last block's tokens (``nn.Identity``
            if the ViT has none).

    Optional, for ``PromptConfig.prompt_gate``: ``gate_prompts(gate: PromptGate)
    -> int`` routes every block's attention through ``gate`` (the family's
    gated attention, ``vapt_mm.core.gate``) and returns the heads per block.
    """

    embed_dim: int
    num_prefix_tokens: int
    patch_size: Tuple[int, int]
    blocks: Sequence[nn.Module]
    norm: nn.Module

    def embed(self, images: torch.Tensor) -> Tuple[torch.Tensor, Grid]:
        """Images (B, 3, H, W) -> tokens (B, prefix + h*w, C) with position
        embeddings, ready for block 0, and the patch grid (h, w)."""


class PromptedViT(nn.Module):
    """Runs a ``PromptableViT`` with prompts inserted before every block.

    Prompts sit right after the prefix tokens; every output leaves them out,
    so callers see the token layout of the plain ViT.

    Args:
        vit: The ViT to drive; its parameters are left as they are (use
            ``vapt_mm.core.freeze_except_prompts`` to freeze them).
        cfg: Prompt options. An unset ``ref_grid`` is taken from ``image_size``.
        image_size: Training image (H, W), used for the reference grid.
        backbone_eval: Keep the ViT in eval mode (no dropout/drop-path) while
            the prompts train, as the paper's code does.
        with_cp: Gradient checkpointing of the blocks while training: their
            activations are recomputed in the backward pass instead of stored
            (less memory, about one more forward of time).
    """

    def __init__(self, vit: PromptableViT, cfg: PromptConfig,
                 image_size: Optional[Tuple[int, int]] = None, backbone_eval: bool = True,
                 with_cp: bool = False) -> None:
        super().__init__()
        if not isinstance(vit, PromptableViT):
            raise TypeError(f'{type(vit).__name__} does not implement PromptableViT '
                            '(embed_dim, num_prefix_tokens, patch_size, blocks, norm, embed).')
        if cfg.ref_grid is None and image_size is not None:
            h, w = image_size
            ph, pw = vit.patch_size
            if h % ph or w % pw:
                raise ValueError(f'image size {tuple(image_size)} is not divisible by the patch '
                                 f'size {tuple(vit.patch_size)}; use a multiple of it.')
            cfg = cfg.with_ref_grid((h // ph, w // pw))
        self.vit = vit
        self.backbone_eval = backbone_eval
        self.with_cp = with_cp
        num_heads = None
        self.prompt_gate = PromptGate() if cfg.prompt_gate != 'none' else None
        if self.prompt_gate is not None:
            if not callable(getattr(vit, 'gate_prompts', None)):
                raise TypeError(f'{type(vit).__name__} cannot gate prompts (it has no '
                                f"gate_prompts method); use prompt_gate='none' with it.")
            num_heads = vit.gate_prompts(self.prompt_gate)
        self.prompts = LayerPrompts(cfg, vit.embed_dim, len(vit.blocks), vit.patch_size,
                                    num_heads)

    @property
    def cfg(self) -> PromptConfig:
        return self.prompts.cfg

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Turn ``with_cp`` on or off (the name timm and open_clip use)."""
        self.with_cp = enable

    def train(self, mode: bool = True) -> 'PromptedViT':
        super().train(mode)
        if mode and self.backbone_eval:
            self.vit.eval()
        return self

    def forward_tokens(self, tokens: torch.Tensor, grid: Grid,
                       out_indices: Iterable[int] = (),
                       ) -> Tuple[torch.Tensor, Dict[int, torch.Tensor]]:
        """Run the blocks on embedded tokens.

        Returns the last block's tokens and those of the blocks in
        ``out_indices``, all without prompts and before the final norm.
        """
        prefix, wanted = self.vit.num_prefix_tokens, set(out_indices)
        num_prompts = 0
        outputs: Dict[int, torch.Tensor] = {}
        for index in range(len(self.vit.blocks)):
            patches = tokens[:, prefix + num_prompts:]
            prompts = self.prompts(index, patches, grid)
            if prompts is not None:
                tokens = torch.cat([tokens[:, :prefix], prompts.to(tokens.dtype), patches], dim=1)
                num_prompts = prompts.shape[1]
            if self.with_cp and self.training and torch.is_grad_enabled():
                tokens = checkpoint(self._run_block, index, tokens, num_prompts,
                                    use_reentrant=False)
            else:
                tokens = self._run_block(index, tokens, num_prompts)
            if index in wanted:
                outputs[index] = _without_prompts(tokens, prefix, num_prompts)
        return _without_prompts(tokens, prefix, num_prompts), outputs

    def _run_block(self, index: int, tokens: torch.Tensor, num_prompts: int) -> torch.Tensor:
        # The gate is set inside the (checkpointed) call, so a recomputation sees it too.
        block = self.vit.blocks[index]
        if self.prompt_gate is None or num_prompts == 0:
            return block(tokens)
        prefix = self.vit.num_prefix_tokens
        with self.prompt_gate.running(slice(prefix, prefix + num_prompts),
                                      self.prompts.gate[index]):
            return block(tokens)

    def forward_features(self, images: torch.Tensor,
                         out_indices: Iterable[int]) -> Tuple[List[torch.Tensor], Grid]:
        """Tokens (B, prefix + h*w, C) after each block in ``out_indices``."""
        out_indices = list(out_indices)
        tokens, grid = self.vit.embed(images)
        _, outputs = self.forward_tokens(tokens, grid, out_indices)
        return [outputs[i] for i in out_indices], grid

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Final tokens (B, prefix + h*w, C) after the ViT's final norm."""
        tokens, grid = self.vit.embed(images)
        tokens, _ = self.forward_tokens(tokens, grid)
        return self.vit.norm(tokens)


def _without_prompts(tokens: torch.Tensor, prefix: int, num_prompts: int) -> torch.Tensor:
    if num_prompts == 0:
        return tokens
    return torch.cat([tokens[:, :prefix], tokens[:, prefix + num_prompts:]], dim=1)

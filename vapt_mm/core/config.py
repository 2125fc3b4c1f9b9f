"""Prompt configuration: one validated dataclass shared by every integration."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

METHODS = ('vapt', 'vpt-deep', 'vpt-shallow')
PROMPT_GATES = ('none', 'layer', 'head')
OFFSET_INITS = ('zeros', 'vpt')
ACTIVATIONS = ('relu', 'gelu', 'sigmoid', 'identity')


@dataclass(frozen=True)
class PromptConfig:
    """Options of VAPT and of the VPT baselines.

    Args:
        method: ``'vapt'`` (adaptive prompts), ``'vpt-deep'`` (free prompts at
            every layer) or ``'vpt-shallow'`` (free prompts at layer 0 only).
        num_tokens: Prompt tokens N inserted after the prefix tokens.
        static_layers: VAPT only: layers that keep free prompts before the
            generated ones start (the paper's reference setting is 1).
        kernel_size: Side k of the channel-wise convolution kernel.
        padding: Zero padding of that convolution.
        shared_kernel: One k x k kernel for all channels (the paper) instead of
            one kernel per channel.
        hidden_dim: Hidden width h of the feature projector (C -> h -> C).
        activation: Activation of the feature projector.
        shared_projector: One feature projector for all layers (the paper)
            instead of one per generated layer.
        prompt_dropout: Dropout on the free prompts.
        conv_dropout: Dropout2d after the channel-wise convolution.
        projector_dropout: Dropout on the projector's hidden activation.
        ref_grid: Patch grid (H, W) on which the token-wise map is defined;
            other grids are resampled to it (see ``PromptGenerator``). ``None``
            lets the integration set it from its image size.
        generated_offset: VAPT only, not in the paper (off by default): add a
            free, zero-initialised (N, C) prompt to the generated prompts of each
            layer, so that they can hold a constant direction as VPT-deep's do.
        offset_init: How ``generated_offset`` starts: ``'zeros'`` (outputs start
            as without it) or ``'vpt'`` (the static prompts' uniform init).
        prompt_gate: Not in the paper (``'none'`` by default): ``'layer'`` (one
            learnable scalar per block) or ``'head'`` (one per block and head),
            zero-initialised, scaling the attention the class and patch tokens
            pay to the prompts (``vapt_mm.core.gate``): the prompted ViT starts
            exactly as the frozen one. The ViT adapter must offer ``gate_prompts``.
        token_map_init_std: VAPT only, not in the paper (0, the paper's zero
            initialisation, by default): initialise the token-wise maps' weights
            from N(0, std^2). From zeros the N generated prompts of a layer start
            equal, get equal gradients and stay equal but for dropout.
    """

    method: str = 'vapt'
    num_tokens: int = 10
    static_layers: int = 1
    kernel_size: int = 2
    padding: int = 0
    shared_kernel: bool = True
    hidden_dim: int = 8
    activation: str = 'relu'
    shared_projector: bool = True
    prompt_dropout: float = 0.1
    conv_dropout: float = 0.1
    projector_dropout: float = 0.1
    ref_grid: Optional[Tuple[int, int]] = None
    generated_offset: bool = False
    token_map_init_std: float = 0.0
    offset_init: str = 'zeros'
    prompt_gate: str = 'none'

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f'prompt method {self.method!r} is unknown; use one of {METHODS}.')
        if not isinstance(self.num_tokens, int) or self.num_tokens <= 0:
            raise ValueError(f'num_tokens must be a positive integer, got {self.num_tokens!r}.')
        if self.static_layers < 1:
            raise ValueError(f'static_layers must be >= 1 (layer 0 always has free prompts), '
                             f'got {self.static_layers}.')
        if self.kernel_size < 1 or self.padding < 0 or self.hidden_dim < 1:
            raise ValueError('kernel_size and hidden_dim must be >= 1 and padding >= 0, got '
                             f'{self.kernel_size}, {self.hidden_dim}, {self.padding}.')
        if self.generated_offset and self.method != 'vapt':
            raise ValueError(f'generated_offset adds to generated prompts, which only method '
                             f'"vapt" has (got method={self.method!r}).')
        if self.offset_init not in OFFSET_INITS:
            raise ValueError(f'offset_init {self.offset_init!r} is unknown; '
                             f'use one of {OFFSET_INITS}.')
        if self.offset_init != 'zeros' and not self.generated_offset:
            raise ValueError(f'offset_init={self.offset_init!r} initialises the generated_offset '
                             'prompts; set generated_offset=True (method "vapt") as well.')
        if self.prompt_gate not in PROMPT_GATES:
            raise ValueError(f'prompt_gate {self.prompt_gate!r} is unknown; '
                             f'use one of {PROMPT_GATES}.')
        if self.token_map_init_std < 0:
            raise ValueError(f'token_map_init_std must be >= 0 (0: the paper\'s zero '
                             f'initialisation), got {self.token_map_init_std}.')
        if self.token_map_init_std and self.method != 'vapt':
            raise ValueError(f'token_map_init_std initialises the token maps, which only method '
                             f'"vapt" has (got method={self.method!r}).')
        if self.activation not in ACTIVATIONS:
            raise ValueError(f'activation {self.activation!r} is unknown; '
                             f'use one of {ACTIVATIONS}.')
        for name in ('prompt_dropout', 'conv_dropout', 'projector_dropout'):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f'{name} must be in [0, 1), got {getattr(self, name)}.')
        if self.ref_grid is not None:
            grid = tuple(int(s) for s in self.ref_grid)
            if len(grid) != 2 or min(grid) < 1:
                raise ValueError(f'ref_grid must be (H, W) with H, W >= 1, got {self.ref_grid!r}.')
            object.__setattr__(self, 'ref_grid', grid)

    @classmethod
    def from_dict(cls, options: Optional[Mapping[str, Any]] = None,
                  **overrides: Any) -> 'PromptConfig':
        """Build from a (config-file) mapping, naming any unknown key."""
        merged = {**(options or {}), **overrides}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise KeyError(f'unknown prompt option(s) {unknown}; '
                           f'valid options are {sorted(known)}.')
        return cls(**merged)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def with_ref_grid(self, grid: Tuple[int, int]) -> 'PromptConfig':
        """This config with ``ref_grid`` filled in if it was left unset."""
        if self.ref_grid is not None:
            return self
        return dataclasses.replace(self, ref_grid=tuple(grid))

"""PEFT helpers: freezing, parameter counts, trainable-only weight files."""
from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass
from typing import Dict, Iterable, List, Tuple

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from .config import PromptConfig
from .prompts import LayerPrompts

FORMAT = 'vapt_mm.trainable/1'


def prompt_modules(model: nn.Module) -> List[Tuple[str, LayerPrompts]]:
    """The ``LayerPrompts`` modules inside ``model`` with their names."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, LayerPrompts)]


def freeze_except_prompts(model: nn.Module, extra: Iterable[str] = ()) -> List[str]:
    """Freeze every parameter but the prompts and those matching ``extra``.

    ``extra`` holds fnmatch patterns of parameter names (e.g. ``'decode_head.*'``).
    A pattern that matches nothing raises, so a typo cannot silently freeze a
    head. Returns the names of the trainable parameters.
    """
    prefixes = [name + '.' if name else '' for name, _ in prompt_modules(model)]
    if not prefixes:
        raise ValueError(f'{type(model).__name__} holds no LayerPrompts module to train.')
    patterns = list(extra)
    used = set()
    trainable = []
    for name, param in model.named_parameters():
        matched = [p for p in patterns if fnmatch.fnmatchcase(name, p)]
        used.update(matched)
        param.requires_grad_(bool(matched) or any(name.startswith(p) for p in prefixes))
        if param.requires_grad:
            trainable.append(name)
    unused = [p for p in patterns if p not in used]
    if unused:
        raise ValueError(f'trainable pattern(s) {unused} match no parameter of '
                         f'{type(model).__name__}; check the names with model.named_parameters().')
    return trainable


@dataclass(frozen=True)
class ParameterCount:
    trainable: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / max(self.total, 1)

    def __str__(self) -> str:
        return (f'trainable params: {self.trainable:,} || all params: {self.total:,} '
                f'|| trainable%: {self.percent:.4f}')


def count_parameters(model: nn.Module) -> ParameterCount:
    """Trainable and total parameter counts, like PEFT's ``print_trainable_parameters``."""
    params = list(model.parameters())
    return ParameterCount(sum(p.numel() for p in params if p.requires_grad),
                          sum(p.numel() for p in params))


def trainable_state_dict(model: nn.Module) -> Dict[str, torch.Tensor]:
    """Only the tensors that train (``requires_grad``), detached."""
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


def _prompt_config(model: nn.Module) -> dict:
    modules = prompt_modules(model)
    return modules[0][1].cfg.to_dict() if modules else {}


def save_trainable(model: nn.Module, path: str, metadata: Dict[str, str] = None) -> None:
    """Write the trainable tensors to ``path`` (.safetensors) with the prompt
    config in the file's metadata. Written to a temporary file, then renamed."""
    tensors = {n: t.contiguous().cpu() for n, t in trainable_state_dict(model).items()}
    if not tensors:
        raise ValueError('the model has no trainable parameter to save; '
                         'call freeze_except_prompts first.')
    meta = {'format': FORMAT, 'prompt_config': json.dumps(_prompt_config(model), sort_keys=True),
            **(metadata or {})}
    tmp = f'{path}.tmp'
    save_file(tensors, tmp, metadata=meta)
    os.replace(tmp, path)


def load_trainable(model: nn.Module, path: str) -> Dict[str, str]:
    """Load a file of ``save_trainable`` into ``model`` bit-exactly.

    Refuses, naming every difference, a file written for another prompt
    config or whose tensor names or shapes do not fit. Returns its metadata.
    """
    try:
        with safe_open(path, framework='pt') as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError as error:
        raise ValueError(f'{path} is not a complete .safetensors file ({error}); prompt weights '
                         'are read only from files of save_trainable, never unpickled: use '
                         'such a file.') from error
    if meta.get('format') != FORMAT:
        raise ValueError(f'{path} is not a vapt_mm trainable-weights file '
                         f'(format {meta.get("format")!r}, expected {FORMAT!r}).')
    problems = _config_differences(json.loads(meta['prompt_config']), _prompt_config(model))
    params = dict(model.named_parameters())
    missing = sorted(set(trainable_state_dict(model)) - set(tensors))
    unexpected = sorted(set(tensors) - set(params))
    if missing:
        problems.append(f'missing tensors {missing}')
    if unexpected:
        problems.append(f'unexpected tensors {unexpected}')
    problems += [f'{k}: file {tuple(t.shape)} vs model {tuple(params[k].shape)}'
                 for k, t in tensors.items() if k in params and t.shape != params[k].shape]
    if problems:
        raise ValueError(f'{path} does not fit this model: ' + '; '.join(problems)
                         + '. Build the model as the file was saved (the same ViT and prompt '
                         'options), or train prompts for this one.')
    with torch.no_grad():
        for name, tensor in tensors.items():
            params[name].copy_(tensor)
    return meta


def _config_differences(saved: dict, current: dict) -> List[str]:
    # An option newer than the file has its default there (files before generated_offset).
    saved = {**PromptConfig().to_dict(), **saved} if saved else {}
    saved = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}
    current = PromptConfig(**current).to_dict() if current else {}
    return [f'prompt option {k}: file {saved.get(k)!r} vs model {current.get(k)!r}'
            for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]

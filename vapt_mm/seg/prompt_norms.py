"""Log the size of the prompts during training, beside the patch tokens they join."""
from __future__ import annotations

import json
import os.path as osp
from typing import Dict, Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS
from torch.utils.hooks import RemovableHandle

from ..core.prompts import LayerPrompts
from .checkpoint import runner_model

#: File, in the work dir, of one JSON line per logged iteration.
PROMPT_NORMS_FILE = 'prompt_norms.jsonl'


@HOOKS.register_module()
class PromptNormHook(Hook):
    """Every ``interval`` training iterations, the mean L2 norm of the prompt tokens and of
    the patch tokens of each layer (over the batch and the tokens), from the last forward.

    Writes ``train/prompt_norm`` and ``train/patch_norm`` (means over the layers) to the
    message hub, so mmengine's logger prints them, and one line per logged iteration to
    ``<work_dir>/prompt_norms.jsonl`` with the per-layer values. Free prompts (VPT's, and
    VAPT's static layers) and generated prompts are reported alike; a model without
    ``LayerPrompts`` (a linear probe, full fine-tuning) is refused.

    Args:
        interval: Training iterations between two records.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 10) -> None:
        if interval < 1:
            raise ValueError(f'PromptNormHook interval={interval}; use an interval >= 1.')
        self.interval = interval
        self._prompts: Dict[int, float] = {}
        self._patches: Dict[int, float] = {}
        self._handle: Optional[RemovableHandle] = None

    def before_train(self, runner) -> None:
        modules = [m for m in runner_model(runner).modules() if isinstance(m, LayerPrompts)]
        if len(modules) != 1:
            raise ValueError('PromptNormHook needs a model with prompts (VAPTBackbone with '
                             f'VPT or VAPT); this one has {len(modules)} LayerPrompts modules. '
                             'Remove the hook from custom_hooks for other models.')
        self._handle = modules[0].register_forward_hook(self._record)

    def _record(self, module: LayerPrompts, args: Sequence, prompts: Optional[torch.Tensor]
                ) -> None:
        if not module.training or prompts is None:
            return
        layer, patches = args[0], args[1]
        self._prompts[layer] = prompts.detach().norm(dim=-1).mean().item()
        self._patches[layer] = patches.detach().norm(dim=-1).mean().item()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self.every_n_train_iters(runner, self.interval) or not self._prompts:
            return
        layers = sorted(self._prompts)
        record = {'iter': runner.iter + 1, 'layers': layers,
                  'prompt_norm': [round(self._prompts[i], 5) for i in layers],
                  'patch_norm': [round(self._patches[i], 5) for i in layers]}
        hub = runner.message_hub
        hub.update_scalar('train/prompt_norm', sum(record['prompt_norm']) / len(layers))
        hub.update_scalar('train/patch_norm', sum(record['patch_norm']) / len(layers))
        with open(osp.join(runner.work_dir, PROMPT_NORMS_FILE), 'a') as file:
            file.write(json.dumps(record) + '\n')

    def after_train(self, runner) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

"""Does a trained VAPT model use its input-dependent prompts? An ablation on study runs.

    python studies/prompt_adaptivity.py work_dirs/sample_efficiency_seg_full/runs/vapt_*

For each run folder (``<method>.py`` config and ``iter_*.pth`` written by
``sample_efficiency_seg.py``) it tests the checkpoint twice through the
mmengine ``Runner``: as trained, averaging every generated layer's prompts over
the validation images on the way; then with each image's generated prompts
replaced by that average, which turns the model into a VPT-deep model with
fixed prompts. If the mIoU barely changes, the adaptivity is not what the
model relies on. It also reports the share of the generated prompts' variance
that is between images (after a LayerNorm, as the blocks see them; 0: the
same prompts for every image). Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.runner import Runner
from torch import nn
from torch.utils.hooks import RemovableHandle

from vapt_mm.core.prompts import LayerPrompts
from vapt_mm.seg.runtime import load_config, prepare_runtime


class GeneratedPromptStats:
    """Forward hook of ``LayerPrompts``: per generated layer, the sum of the prompts and of
    their LayerNorm'ed values and squares over images; with ``replace_by_mean`` it
    substitutes the collected mean for the generated prompts instead."""

    def __init__(self) -> None:
        self.count: Dict[int, int] = {}
        self.total: Dict[int, torch.Tensor] = {}
        self.normed_total: Dict[int, torch.Tensor] = {}
        self.normed_square: Dict[int, float] = {}
        self.replace_by_mean = False

    @classmethod
    def attach(cls, model: nn.Module,
               source: Path) -> Tuple['GeneratedPromptStats', RemovableHandle]:
        """A new hook on the VAPT prompts of ``model`` (loaded from ``source``)."""
        prompts = [m for m in model.modules() if isinstance(m, LayerPrompts)]
        if len(prompts) != 1 or not prompts[0].generators:
            raise ValueError(f'{source} is not a VAPT run: its model has no prompt generators.')
        stats = cls()
        return stats, prompts[0].register_forward_hook(stats)

    def __call__(self, module: LayerPrompts, args: tuple,
                 prompts: torch.Tensor) -> torch.Tensor:
        layer = args[0]
        if layer < module.static.shape[0]:
            return prompts
        if self.replace_by_mean:
            return self.mean(layer).to(prompts).expand_as(prompts)
        batch = prompts.detach().double()
        normed = F.layer_norm(batch, batch.shape[-1:])
        self.count[layer] = self.count.get(layer, 0) + batch.shape[0]
        self.total[layer] = self.total.get(layer, 0) + batch.sum(0)
        self.normed_total[layer] = self.normed_total.get(layer, 0) + normed.sum(0)
        self.normed_square[layer] = self.normed_square.get(layer, 0.0) + \
            normed.pow(2).sum().item()
        return prompts

    def mean(self, layer: int) -> torch.Tensor:
        """The mean generated prompts (N, C) of ``layer`` over the images seen."""
        return self.total[layer] / self.count[layer]

    def between_image_share(self, layer: int) -> float:
        """sum_i ||z_i - mean z||^2 / sum_i ||z_i||^2 of the LayerNorm'ed prompts z_i."""
        count, normed_mean = self.count[layer], self.normed_total[layer] / self.count[layer]
        square = self.normed_square[layer]
        return (square - count * normed_mean.pow(2).sum().item()) / square


def ablate(run_dir: Path) -> dict:
    """mIoU as trained and with mean generated prompts, and the between-image shares."""
    config = next(p for p in run_dir.glob('*.py'))
    checkpoint = max(run_dir.glob('iter_*.pth'), key=lambda p: int(p.stem.split('_')[1]))
    with tempfile.TemporaryDirectory() as work_dir:
        # A visualizer of its own: mmengine reuses an instance of the same name, which
        # would still write to the previous run's (deleted) work dir.
        cfg = load_config(str(config), 'none', {
            'load_from': str(checkpoint), 'visualizer.name': f'adaptivity_{work_dir}'}, work_dir)
        # The study reports the val mIoU: test on the val split it trained with.
        cfg.test_dataloader, cfg.test_evaluator = cfg.val_dataloader, cfg.val_evaluator
        prepare_runtime(cfg, 'none')
        runner = Runner.from_cfg(cfg)
        stats, handle = GeneratedPromptStats.attach(runner.model, run_dir)
        adaptive = float(runner.test()['mIoU'])
        stats.replace_by_mean = True
        fixed = float(runner.test()['mIoU'])
        handle.remove()
    result = json.loads((run_dir / 'result.json').read_text()) \
        if (run_dir / 'result.json').is_file() else {}
    shares = [stats.between_image_share(layer) for layer in sorted(stats.count)]
    return dict(run=run_dir.name, fraction=result.get('fraction'), seed=result.get('seed'),
                adaptive=adaptive, mean_prompts=fixed, shares=shares)


def table(rows: List[dict], metric: str = 'mIoU') -> str:
    """Markdown table of ``ablate`` rows."""
    lines = [f'| run | {metric} as trained | {metric}, mean prompts | change | '
             'between-image share (per generated layer) |', '|---|---:|---:|---:|---|']
    for row in rows:
        shares = ' '.join(f'{s:.2f}' for s in row['shares'])
        lines.append(f"| {row['run']} | {row['adaptive']:.2f} | {row['mean_prompts']:.2f} | "
                     f"{row['mean_prompts'] - row['adaptive']:+.2f} | {shares} |")
    return '\n'.join(lines)


def report(rows: Iterable[dict], out: Optional[Path], metric: str = 'mIoU') -> None:
    """Print each row as it comes (JSON), then the table; also write the rows to ``out``."""
    done = []
    for row in rows:
        done.append(row)
        print(json.dumps(row), flush=True)
    if out:
        out.write_text(json.dumps(done, indent=2))
    print(table(done, metric))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('runs', nargs='+', type=Path, help='VAPT run folders of the study')
    parser.add_argument('--out', type=Path, help='also write the rows as JSON here')
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report((ablate(run) for run in args.runs), args.out)


if __name__ == '__main__':
    main()

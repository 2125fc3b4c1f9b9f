"""Sample-efficiency study, segmentation: head-only vs VPT-deep vs VAPT vs full fine-tuning.

    python benchmarks/sample_efficiency_seg.py --quick   # 24 runs, ~10 min on this 2-core machine
    python benchmarks/sample_efficiency_seg.py           # full: 48 runs of 300 iters, ~30 min
    python benchmarks/sample_efficiency_seg.py --recipe deep --out-dir work_dirs/study_deep \
        --lr head-only=0.5 vpt-deep=0.5 vapt=0.5 full-ft=0.005   # 8-block ViT, ~30 min

Every run is an mmengine ``Runner`` built from ``configs/study/<method>.py``
(the same path as ``tools/train.py``, ``--data-fraction`` included) on the
tiny ViT pretrained on the generated source task (``tools/pretrain_tiny_vit.py``,
cached) and the generated ADE20K-layout target set (``tools/make_demo_ade20k.py``,
seed 0 unless ``--data-seed``; the first call pretrains the ViT, ~6 min). ``--lr`` sets a
method's base lr (chosen with ``select_lr_seg.py`` on another draw of the target set),
else the config's 2.5e-2 is used. The val mIoU after the last
iteration is reported; finished
runs are kept in ``OUT/runs/*/result.json`` and not trained again.
Writes ``OUT/table.md``, ``OUT/plot.png`` and ``OUT/rows.json``
(``benchmarks/study_report.py``).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import DictAction
from mmengine.runner import Runner
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study_report import save_row, saved_row, write_report  # noqa: E402

from vapt_mm.pretrain.vit import pretrained_vit  # noqa: E402
from vapt_mm.seg.runtime import load_config, prepare_runtime  # noqa: E402
from vapt_mm.seg.weights import timm_to_mmseg_vit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METHODS = ('head-only', 'vpt-deep', 'vapt', 'full-ft')
#: Per preset: fractions, seeds, iterations, training and validation images.
PRESETS = {
    'quick': dict(fractions=(0.01, 0.1, 1.0), seeds=(0, 1), iters=150, train=400, val=40),
    'full': dict(fractions=(0.01, 0.05, 0.2, 1.0), seeds=(0, 1, 2), iters=300, train=400,
                 val=80),
}


def make_target_data(root: Path, train: int, val: int, seed: int = 0,
                     context_swap: bool = False) -> None:
    """The generated target set (generator seed ``seed``; ``--context-swap`` labels with
    ``context_swap``), made once per size and seed."""
    if len(list((root / 'annotations' / 'validation').glob('*.png'))) == val and \
            len(list((root / 'annotations' / 'training').glob('*.png'))) == train:
        return
    subprocess.run([sys.executable, str(ROOT / 'tools' / 'make_demo_ade20k.py'), str(root),
                    '--train', str(train), '--val', str(val), '--seed', str(seed),
                    *(['--context-swap'] if context_swap else [])], check=True)


def mmseg_weights(timm_file: Path, folder: Path) -> Path:
    """``timm_file`` converted to mmseg ``VisionTransformer`` keys, in ``folder``."""
    target = folder / f'{timm_file.parent.name}_mmseg.pth'  # the cache entry's name-hash
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(timm_to_mmseg_vit(load_file(str(timm_file))), target)
    return target


def geometry_options(weights: Path, method: str) -> dict:
    """``--cfg-options`` giving the configs the pretrained ViT's geometry (geometry.json)."""
    timm_args = json.loads((weights / 'geometry.json').read_text())['timm']
    vit = 'model.backbone.vit.' if method in ('vpt-deep', 'vapt') else 'model.backbone.'
    dim = timm_args['embed_dim']
    return {f'{vit}embed_dims': dim, f'{vit}num_layers': timm_args['depth'],
            f'{vit}num_heads': timm_args['num_heads'], f'{vit}mlp_ratio': timm_args['mlp_ratio'],
            f'{vit}patch_size': timm_args['patch_size'],
            'model.backbone.out_indices': (timm_args['depth'] - 1, ),
            'model.decode_head.in_channels': dim, 'model.decode_head.channels': dim}


def run_one(method: str, fraction: float, seed: int, iters: int, data_root: Path,
            weights: Path, work_dir: Path, extra: Optional[dict] = None) -> dict:
    """Train one configuration (or reuse its result) and return its study row.

    A finished run is reused only if it had the same weights, data and options;
    otherwise this stops with an error rather than mix settings in one table.
    """
    result_file = work_dir / 'result.json'
    settings = dict(weights=weights.name, data=data_root.name, options=extra or {})
    row = saved_row(result_file, settings, '--out-dir')
    if row is not None:
        return row
    checkpoint = weights / 'vit.safetensors'
    if method not in ('vpt-deep', 'vapt'):  # mmseg's own ViT reads mmseg keys
        checkpoint = mmseg_weights(checkpoint, work_dir.parent)
    options = {**geometry_options(weights, method),
               'model.backbone.init_cfg.checkpoint': str(checkpoint),
               'train_dataloader.dataset.data_root': str(data_root),
               'val_dataloader.dataset.data_root': str(data_root),
               'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters,
               # Warm-up over the first 10% of the iterations, as the config's 30 of 300.
               'param_scheduler.0.end': max(1, iters // 10),
               'param_scheduler.1.begin': max(1, iters // 10), 'param_scheduler.1.end': iters,
               'default_hooks.checkpoint.interval': iters,
               'randomness.seed': seed,
               # mmengine reuses a visualizer of the same name, with its first run's folder.
               'visualizer.name': f'study_{work_dir}', **(extra or {})}
    cfg = load_config(str(ROOT / 'configs' / 'study' / f'{method}.py'), 'none', options,
                      str(work_dir))
    # As tools/train.py --data-fraction FRACTION --data-seed SEED.
    cfg.train_dataloader.dataset = dict(type='RandomSubsetDataset', fraction=fraction,
                                        seed=seed, dataset=cfg.train_dataloader.dataset)
    prepare_runtime(cfg, 'none')
    start = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    seconds = time.time() - start
    trainable = sum(p.numel() for p in runner.model.parameters() if p.requires_grad)
    row = dict(method=method, fraction=fraction, seed=seed,
               metric=float(runner.message_hub.get_scalar('val/mIoU').current()),
               trainable=trainable, seconds=round(seconds, 1))
    save_row(result_file, row, settings)
    return row


def run_study(methods: Sequence[str], fractions: Sequence[float], seeds: Sequence[int],
              iters: int, train: int, val: int, out_dir: Path,
              recipe: str = 'default', extra: Optional[dict] = None,
              data_seed: int = 0, lrs: Optional[Dict[str, float]] = None,
              target: str = 'default') -> List[dict]:
    """Run every method x fraction x seed (config options ``extra`` added to each, base
    lr ``lrs[method]`` where given) on the ``target`` set drawn with ``data_seed``; write the
    report to ``out_dir``."""
    weights = pretrained_vit(recipe)
    suffix = '' if target == 'default' else f'_{target}'
    data_root = out_dir / f'data_{train}_{val}_seed{data_seed}{suffix}'
    make_target_data(data_root, train, val, data_seed, target == 'context-swap')
    rows = []
    for seed in seeds:  # every method at each (seed, fraction) first: partial runs compare
        for fraction in fractions:
            for method in methods:
                work_dir = out_dir / 'runs' / f'{method}_f{fraction:g}_s{seed}_it{iters}'
                options = {**(extra or {}), **({'optim_wrapper.optimizer.lr': lrs[method]}
                                               if method in (lrs or {}) else {})}
                rows.append(run_one(method, fraction, seed, iters, data_root, weights, work_dir,
                                    options))
                print(json.dumps(rows[-1]), flush=True)
    write_report(rows, str(out_dir), 'val mIoU (%)',
                 f'Segmentation, {recipe} ViT, generated {target} target set ({train} train)')
    return rows


def parse_lrs(parser: argparse.ArgumentParser, items: Sequence[str]) -> Dict[str, float]:
    """``['vapt=0.1', ...]`` as ``{'vapt': 0.1}``; a bad item stops with a usage error."""
    lrs = {}
    for item in items:
        method, _, value = item.partition('=')
        try:
            lrs[method] = float(value)
        except ValueError:
            parser.error(f'--lr {item!r}: write METHOD=LR with a number, e.g. vapt=0.1')
        if method not in METHODS:
            parser.error(f'--lr {item!r}: unknown method {method!r}; choose from {METHODS}')
    return lrs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='the ~10 minute preset')
    parser.add_argument('--methods', nargs='+', choices=METHODS, default=list(METHODS))
    parser.add_argument('--fractions', type=float, nargs='+', help='override the preset')
    parser.add_argument('--seeds', type=int, nargs='+', help='override the preset')
    parser.add_argument('--iters', type=int, help='training iterations per run (preset)')
    parser.add_argument('--train', type=int, help='generated training images (preset)')
    parser.add_argument('--val', type=int, help='generated validation images (preset)')
    parser.add_argument('--recipe', default='default', help='pretraining recipe of the ViT')
    parser.add_argument('--target', choices=('default', 'context-swap'), default='default',
                        help='context-swap: the control target whose labels need image context '
                        '(tools/make_demo_ade20k.py --context-swap)')
    parser.add_argument('--data-seed', type=int, default=0,
                        help='seed of the generated target set; choose hyper-parameters on '
                        'another draw (e.g. 1) than the one reported (0)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads (1 is fastest on a shared 2-core machine)')
    parser.add_argument('--lr', nargs='+', default=[], metavar='METHOD=LR',
                        help="a method's base lr (benchmarks/select_lr_seg.py chooses them), "
                        'e.g. --lr head-only=0.1 full-ft=0.005')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='config overrides for every run (use another --out-dir: finished '
                        'runs there are reused)')
    parser.add_argument('--out-dir', help='default: work_dirs/sample_efficiency_seg_<preset>')
    args = parser.parse_args()
    lrs = parse_lrs(parser, args.lr)
    torch.set_num_threads(args.threads)
    name = 'quick' if args.quick else 'full'
    preset = PRESETS[name]
    out_dir = Path(args.out_dir or f'work_dirs/sample_efficiency_seg_{name}')
    run_study(args.methods, args.fractions or preset['fractions'], args.seeds or preset['seeds'],
              args.iters or preset['iters'], args.train or preset['train'],
              args.val or preset['val'], out_dir, args.recipe, args.cfg_options,
              args.data_seed, lrs, args.target)


if __name__ == '__main__':
    main()

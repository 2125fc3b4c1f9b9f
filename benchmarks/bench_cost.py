"""Cost of VAPT against VPT-deep, a frozen backbone (head-only) and full fine-tuning.

ViT-B/16 (``--arch``) with random weights (timm), batch 2 by default. Prints Markdown
tables: training-step time (ratios to VPT-deep: the median over rounds of the ratio
within a round, methods interleaved in one process and their order reversed every
other round so machine noise and drift hit every method alike; the same ratios of process
CPU time, which with one CPU thread measure the work whatever the load), inference time
against VPT-deep and the plain backbone (the backbone alone, and at 512 the shipped
UPerNet segmentors in ``whole`` and ``slide`` mode on 512x688 images), FLOPs (torch's
FlopCounterMode), trainable parameters, stored per-task size, and the peak memory of a
training step (CPU: peak RSS growth of a subprocess per method; GPU:
``max_memory_allocated`` with that model alone on it). ``vapt-by-operator`` is VAPT
with its generators computed operator by operator (``PromptGenerator.forward_by_operator``,
the path before the fused generator), for before/after comparisons in one process.

    python benchmarks/bench_cost.py [--device cuda] [--steps 5] [--sizes 224 512]
        [--threads 2] [--batch 2] [--methods vpt-deep vapt] [--seg-modes whole slide]
        [--json-out FILE] [--profile]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Sequence, Tuple

import timm
import torch
from safetensors.torch import save
from torch.utils.flop_counter import FlopCounterMode

from vapt_mm.core import (PromptConfig, PromptedViT, PromptGenerator, freeze_except_prompts,
                          trainable_state_dict)
from vapt_mm.models.timm_vit import TimmViT

from rss import RssSampler  # benchmarks/rss.py, next to this script

METHODS = ('head-only', 'vpt-deep', 'vapt', 'full', 'vapt-by-operator')
PROMPTED = ('vpt-deep', 'vapt', 'vapt-by-operator')
#: Segmentors timed in inference, all ViT-B/16 + UPerNet (random weights).
#: Keyed by method ('head-only': the plain frozen ViT); those of ``--methods`` are timed.
SEG_CONFIGS = {'head-only': 'configs/head-only_vit-b16_upernet_8xb2-160k_ade20k-512x512.py',
               'vpt-deep': 'configs/vpt-deep_vit-b16_upernet_8xb2-160k_ade20k-512x512.py',
               'vapt': 'configs/vapt_vit-b16_upernet_8xb2-160k_ade20k-512x512.py',
               'vapt-by-operator': 'configs/vapt_vit-b16_upernet_8xb2-160k_ade20k-512x512.py'}
#: ADE20K-like test image (short side 512): ``whole`` runs the 32x43 patch grid (the
#: generators resample it), ``slide`` two 512x512 windows at the reference grid.
SEG_SHAPE = (512, 688)
SLIDE_CFG = dict(mode='slide', crop_size=(512, 512), stride=(341, 341))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def by_operator(model: torch.nn.Module) -> torch.nn.Module:
    """Make every ``PromptGenerator`` of ``model`` run ``forward_by_operator``."""
    for module in model.modules():
        if isinstance(module, PromptGenerator):
            module.forward = module.forward_by_operator
    return model


class Classifier(torch.nn.Module):
    """A timm ViT (prompted or plain) with a linear head on the class token."""

    def __init__(self, method: str, size: int, arch: str = 'vit_base_patch16_224') -> None:
        super().__init__()
        self.method = method
        vit = timm.create_model(arch, pretrained=False, num_classes=0, img_size=size)
        if method in PROMPTED:
            cfg = PromptConfig(method=method.replace('-by-operator', ''), num_tokens=10)
            self.backbone = PromptedViT(TimmViT(vit), cfg, image_size=(size, size))
        else:
            self.backbone = vit
        self.head = torch.nn.Linear(vit.num_features, 100)
        if method in PROMPTED:
            freeze_except_prompts(self, extra=['head.*'])
        elif method == 'head-only':
            self.backbone.requires_grad_(False)
        if method == 'vapt-by-operator':
            by_operator(self)

    def vit(self) -> torch.nn.Module:
        """The plain timm ViT inside the backbone."""
        return self.backbone.vit.model if isinstance(self.backbone, PromptedViT) else self.backbone

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if isinstance(self.backbone, PromptedViT):
            tokens = self.backbone(images)
        else:
            tokens = self.backbone.forward_features(images)
        return self.head(tokens[:, 0])


def make_step(model: Classifier, size: int, batch: int, device: str) -> Callable[[], None]:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    images = torch.randn(batch, 3, size, size, device=device)
    labels = torch.arange(batch, device=device) % 100

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


Times = Dict[str, List[Tuple[float, float]]]


def timed(fn: Callable[[], None], device: str) -> Tuple[float, float]:
    """Wall and process CPU seconds of one call. On the CPU with one thread the CPU time
    is the work, whatever else runs on the machine (with more threads it also counts
    OpenMP's spinning)."""
    if device == 'cuda':
        torch.cuda.synchronize()
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    if device == 'cuda':
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu


def interleaved(fns: Dict[str, Callable[[], None]], steps: int, device: str) -> Times:
    """Times of each call after one warm-up, round-robin, order reversed every other round."""
    for fn in fns.values():
        fn()
    names = list(fns)
    times: Times = {name: [] for name in fns}
    for round_ in range(steps):
        for name in (names if round_ % 2 == 0 else names[::-1]):
            times[name].append(timed(fns[name], device))
    return times


def summary(times: Times, baselines: Sequence[str]) -> Dict[str, dict]:
    """Median seconds and, for each baseline, the median and quartiles of the per-round
    ratios (``'s'``, ``'/base'``, ``'/base iqr'``; with the prefix ``'cpu '`` for CPU time)."""
    out: Dict[str, dict] = {name: {} for name in times}
    for clock, index in (('', 0), ('cpu ', 1)):
        series = {name: [t[index] for t in ts] for name, ts in times.items()}
        for name, values in series.items():
            out[name][f'{clock}s'] = statistics.median(values)
            for base in (b for b in baselines if b in series):
                ratios = [a / b for a, b in zip(values, series[base]) if b > 0]
                if not ratios:
                    continue
                out[name][f'{clock}/{base}'] = statistics.median(ratios)
                if len(ratios) > 1:
                    q1, _, q3 = statistics.quantiles(ratios, n=4, method='inclusive')
                    out[name][f'{clock}/{base} iqr'] = [q1, q3]
    return out


def build_segmentor(config: str, device: str, slide: bool) -> torch.nn.Module:
    """The model of a shipped segmentation config, random weights, eval mode, BN for SyncBN.

    mmseg is imported here, so the classifier benchmarks run where it is not installed.
    """
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import vapt_mm.seg  # noqa: F401  (registers VAPTBackbone)
    from vapt_mm.seg.runtime import load_config, sync_bn_to_bn
    cfg = load_config(os.path.join(ROOT, config), 'none')
    sync_bn_to_bn(cfg.model)
    if slide:
        cfg.model.test_cfg = SLIDE_CFG
    init_default_scope('mmseg')
    return MODELS.build(cfg.model).to(device).eval()


def segmentor_inference(mode: str, methods: Sequence[str], steps: int, batch: int,
                        device: str) -> Dict[str, dict]:
    """``EncoderDecoder.inference`` in ``mode`` on SEG_SHAPE images, interleaved."""
    models = {name: build_segmentor(config, device, mode == 'slide')
              for name, config in SEG_CONFIGS.items() if name in methods}
    if 'vapt-by-operator' in models:
        by_operator(models['vapt-by-operator'])
    images = torch.randn(batch, 3, *SEG_SHAPE, device=device)
    metas = [dict(img_shape=SEG_SHAPE, ori_shape=SEG_SHAPE, pad_shape=SEG_SHAPE)] * batch
    for model in models.values():
        assert model.test_cfg.mode == mode
    with torch.no_grad():
        times = interleaved({name: (lambda m=m: m.inference(images, metas))
                             for name, m in models.items()}, steps, device)
    return summary(times, ('vpt-deep', 'head-only'))


def flops(model: torch.nn.Module, size: int, device: str) -> int:
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, size, size, device=device))
    return counter.get_total_flops()


def stored_bytes(model: Classifier) -> int:
    """Bytes of the backbone a user stores per task (safetensors)."""
    state = (trainable_state_dict(model.backbone) if model.method != 'full'
             else model.backbone.state_dict())
    return len(save({k: v.contiguous() for k, v in state.items()})) if state else 0


def peak_memory(method: str, size: int, args: argparse.Namespace) -> int:
    """Peak bytes of building ``method`` and two training steps: on CUDA
    ``max_memory_allocated`` in this process (call it with nothing else on the GPU),
    on the CPU the peak RSS growth of a fresh process."""
    if args.device == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        model = Classifier(method, size, args.arch).to(args.device).train()
        step = make_step(model, size, args.batch, args.device)
        step(), step()
        return torch.cuda.max_memory_allocated()
    out = subprocess.run([sys.executable, __file__, '--memory-worker', method, '--sizes', str(size),
                          '--batch', str(args.batch), '--threads', str(args.threads),
                          '--arch', args.arch], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])['peak']


def memory_worker(method: str, size: int, args: argparse.Namespace) -> None:
    """Print the peak RSS growth (bytes) of building ``method`` and two CPU training steps."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sampler = RssSampler()
    model = Classifier(method, size, args.arch).train()
    step = make_step(model, size, args.batch, 'cpu')
    step(), step()
    print(json.dumps({'peak': sampler.stop()}))


def measure_size(size: int, methods: Sequence[str], args: argparse.Namespace) -> List[dict]:
    """Rows of one crop size: training steps, inference, FLOPs, parameters, memory."""
    models = {m: Classifier(m, size, args.arch).to(args.device).train() for m in methods}
    steps = interleaved({m: make_step(models[m], size, args.batch, args.device) for m in methods},
                        args.steps, args.device)
    step = summary(steps, ('vpt-deep',))
    for model in models.values():
        model.eval()
    images = torch.randn(args.batch, 3, size, size, device=args.device)
    with torch.no_grad():
        infer = summary(interleaved({m: (lambda model=models[m], x=images: model(x))
                                     for m in methods}, args.steps, args.device),
                        ('vpt-deep', 'head-only'))
    counted = {m: flops(models[m], size, args.device) for m in methods}
    plain_flops = counted.get('head-only', counted.get('full'))
    vit = models[methods[0]].vit()
    backbone_params = sum(p.numel() for p in vit.parameters())
    full_bytes = len(save({k: v.contiguous() for k, v in vit.state_dict().items()}))
    trainable = {m: sum(p.numel() for p in models[m].backbone.parameters() if p.requires_grad)
                 for m in methods}
    stored = {m: stored_bytes(models[m]) for m in methods}
    del models, images, vit
    rows = []
    for m in methods:
        rows.append({
            'size': size, 'batch': args.batch, 'method': m,
            'step_s': step[m]['s'], 'step_ratio': step[m].get('/vpt-deep'),
            'step_ratio_iqr': step[m].get('/vpt-deep iqr'),
            'step_cpu_ratio': step[m].get('cpu /vpt-deep'),
            'step_cpu_ratio_iqr': step[m].get('cpu /vpt-deep iqr'),
            'infer_s': infer[m]['s'], 'infer_ratio': infer[m].get('/vpt-deep'),
            'infer_ratio_iqr': infer[m].get('/vpt-deep iqr'),
            'infer_cpu_ratio': infer[m].get('cpu /vpt-deep'),
            'infer_over_plain': infer[m].get('/head-only'),
            'gflops': counted[m] / 1e9,
            'flops_over_plain_%': 100 * (counted[m] / plain_flops - 1) if plain_flops else None,
            'flops_over_vpt_%': (100 * (counted[m] / counted['vpt-deep'] - 1)
                                 if 'vpt-deep' in counted else None),
            'trainable': trainable[m], 'trainable_%': 100 * trainable[m] / backbone_params,
            'stored_%': 100 * stored[m] / full_bytes,
            'peak_mem_MiB': peak_memory(m, size, args) / 2**20,
        })
    return rows


def profile_steps(size: int, methods: Sequence[str], args: argparse.Namespace) -> None:
    """torch.profiler's operator table of two training steps of each method (after a warm-up)."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device == 'cuda'
                                           else [])
    for m in methods:
        step = make_step(Classifier(m, size, args.arch).to(args.device).train(), size,
                         args.batch, args.device)
        step()
        with profile(activities=activities) as prof:
            step(), step()
        events = prof.key_averages()
        calls = sum(e.count for e in events if e.key.startswith('aten::'))
        print(f'\nprofile: {m}, {size}, {torch.get_num_threads()} thread(s), 2 steps, '
              f'{calls} aten operator calls\n')
        print(events.table(sort_by='self_cpu_time_total', row_limit=args.profile_rows))


def fmt(value, spec: str) -> str:
    return '-' if value is None else format(value, spec)


def print_tables(rows: List[dict], seg: List[dict]) -> None:
    print('| size | batch | method | step s | step / VPT-deep | step / VPT-deep, CPU time | '
          'inference s | inference / VPT-deep | inference / VPT-deep, CPU time | '
          'inference / plain | GFLOPs (fwd, 1 image) | over plain % | over VPT-deep % | '
          'trainable backbone params | % of backbone | stored per task % | peak memory MiB | '
          'memory / full |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    full_mem = {r['size']: r['peak_mem_MiB'] for r in rows if r['method'] == 'full'}
    for r in rows:
        mem_full = r['peak_mem_MiB'] / full_mem[r['size']] if r['size'] in full_mem else None
        print(f"| {r['size']} | {r['batch']} | {r['method']} | {r['step_s']:.3f} | "
              f"{fmt(r['step_ratio'], '.3f')} | {fmt(r['step_cpu_ratio'], '.3f')} | "
              f"{r['infer_s']:.3f} | {fmt(r['infer_ratio'], '.3f')} | "
              f"{fmt(r['infer_cpu_ratio'], '.3f')} | {fmt(r['infer_over_plain'], '.3f')} | "
              f"{r['gflops']:.2f} | {fmt(r['flops_over_plain_%'], '.2f')} | "
              f"{fmt(r['flops_over_vpt_%'], '.2f')} | {r['trainable']:,} | "
              f"{r['trainable_%']:.3f} | {fmt(r['stored_%'], '.3f')} | "
              f"{r['peak_mem_MiB']:.0f} | {fmt(mem_full, '.2f')} |")
    if seg:
        print(f'\n| UPerNet segmentor {SEG_SHAPE[0]}x{SEG_SHAPE[1]} | model | s | '
              '/ VPT-deep | / VPT-deep, CPU time | / plain |\n|---|---|---|---|---|---|')
        for r in seg:
            print(f"| {r['mode']} | {r['model']} | {r['s']:.3f} | "
                  f"{fmt(r.get('/vpt-deep'), '.3f')} | {fmt(r.get('cpu /vpt-deep'), '.3f')} | "
                  f"{fmt(r.get('/head-only'), '.3f')} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--sizes', type=int, nargs='+', default=[224, 512])
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--arch', default='vit_base_patch16_224', help='timm ViT (random weights)')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads(),
                        help='torch intra-op threads (default: torch\'s own choice)')
    parser.add_argument('--methods', nargs='+', choices=METHODS, default=list(METHODS[:4]))
    parser.add_argument('--seg-modes', nargs='*', choices=('whole', 'slide'),
                        default=['whole', 'slide'], help='segmentor inference at size 512')
    parser.add_argument('--seg-only', action='store_true',
                        help='time only the segmentors (no classifier rows)')
    parser.add_argument('--json-out', help='also write the rows to this JSON file')
    parser.add_argument('--profile', action='store_true',
                        help="print torch.profiler's operator table of each method's step")
    parser.add_argument('--profile-rows', type=int, default=15)
    parser.add_argument('--memory-worker', choices=METHODS)
    args = parser.parse_args()
    if args.memory_worker:
        return memory_worker(args.memory_worker, args.sizes[0], args)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    started = time.perf_counter()
    print(f'torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, '
          f'{args.arch}, batch {args.batch}, N=10, 1 warm-up + {args.steps} timed steps (median), '
          f'load average before {os.getloadavg()[0]:.2f}\n')
    rows: List[dict] = []
    seg: List[dict] = []
    for size in args.sizes:
        if not args.seg_only:
            rows += measure_size(size, args.methods, args)
        if args.profile:
            profile_steps(size, args.methods, args)
        if size == 512:
            for mode in args.seg_modes:
                result = segmentor_inference(mode, args.methods, args.steps, args.batch,
                                             args.device)
                seg += [{'mode': mode, 'model': name, **r} for name, r in result.items()]
    print_tables(rows, seg)
    wall = time.perf_counter() - started
    print(f'\nwall time {wall:.0f} s, load average after {os.getloadavg()[0]:.2f}')
    print('\nJSON:', json.dumps({'rows': rows, 'segmentor': seg}))
    if args.json_out:
        with open(args.json_out, 'w') as f:
            json.dump({'device': args.device, 'threads': args.threads, 'batch': args.batch,
                       'wall_s': wall, 'rows': rows, 'segmentor': seg}, f, indent=1)


if __name__ == '__main__':
    main()

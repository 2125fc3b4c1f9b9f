"""Cost of one VAPT prompt generator (with the projector) against one ViT-B/16 block.

Forward + backward, batch 2, at the 224 and 512 patch grids, timed round-robin in one
process (median after two warm-up calls): the generator as ``forward`` computes it (one
matmul per layer, ``fused``) and operator by operator (``forward_by_operator``, the
method's definition), against a block. Shows how much of VAPT's step-time overhead is
work and how much is the per-operator cost of many small operators. Prints a Markdown
table; ``--profile`` adds torch.profiler's operator table of each generator path.

    python benchmarks/bench_generator_share.py [--threads 1 2] [--repeats 12] [--profile]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable, Dict

import timm
import torch
from torch.profiler import ProfilerActivity, profile

from vapt_mm.core import FeatureProjector, PromptGenerator


def medians(fns: Dict[str, Callable[[], None]], repeats: int) -> Dict[str, float]:
    times: Dict[str, list] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t[2:]) for name, t in times.items()}


def print_profile(name: str, fn: Callable[[], None], threads: int, size: int) -> None:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            fn()
    print(f'\n{name} generator + projector, {threads} thread(s), {size}, 5 calls:\n')
    print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=15))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--sizes', type=int, nargs='+', default=[224, 512])
    parser.add_argument('--repeats', type=int, default=12)
    parser.add_argument('--profile', action='store_true')
    args = parser.parse_args()
    torch.manual_seed(0)
    block = timm.create_model('vit_base_patch16_224', pretrained=False).blocks[0]
    block.eval().requires_grad_(False)
    print(f'load average before {os.getloadavg()[0]:.2f}\n')
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for size in args.sizes:
            grid = (size // 16, size // 16)
            generator = PromptGenerator(768, 10, grid).train()
            projector = FeatureProjector(768, 8).train()
            torch.nn.init.normal_(generator.token_map.weight)
            patches = torch.randn(2, grid[0] * grid[1], 768, requires_grad=True)
            tokens = torch.randn(2, grid[0] * grid[1] + 11, 768, requires_grad=True)
            paths = {'fused': generator.forward, 'by operator': generator.forward_by_operator}
            fns = {name: (lambda f=f: projector(f(patches, grid)).sum().backward())
                   for name, f in paths.items()}
            t = medians({**fns, 'block': lambda: block(tokens).sum().backward()}, args.repeats)
            for name in paths:
                share = t[name] / t['block']
                rows.append(f"| {threads} | {size} | {name} | {1e3 * t[name]:.2f} | "
                            f"{1e3 * t['block']:.1f} | {share:.4f} | {11 * share / 12:.4f} |")
            if args.profile:
                for name, fn in fns.items():
                    print_profile(name, fn, threads, size)
    print('| threads | image | generator | generator ms | block ms | generator / block | '
          '11 generators / 12 blocks |\n|---|---|---|---|---|---|---|')
    print('\n'.join(rows))
    print(f'\nload average after {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
    main()

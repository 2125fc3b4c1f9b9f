"""Throughput of retrieval training data: webdataset shards against the CSV path.

Draws the demo set (tools/make_demo_retrieval.py: PNG images, 5 captions each), writes its
pairs as an open_clip CSV and as shards (tools/make_shards.py), then times, in one process
and alternating the two paths each repeat: reading an epoch (data only: decode, transform,
tokenise, collate) and training an epoch (the same plus VAPT steps of the tiny test model),
both through the loaders tools/train_retrieval.py uses. Prints a Markdown table of samples/s
(median over the repeats, and the range).

    python benchmarks/bench_shards.py [--images 400] [--size 128] [--workers 2] [--repeats 3]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import tempfile
import time
from typing import Callable, Dict, Iterable, List

import torch
from open_clip.loss import ClipLoss

from vapt_mm.clip import apply_vapt, load_captions
from vapt_mm.clip.accumulate import contrastive_backward
from vapt_mm.clip.factory import create_clip
from vapt_mm.clip.shards import expand_shards
from vapt_mm.clip.train_data import PairBatches, ShardBatches
from vapt_mm.data.caption_files import write_caption_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_CONFIG = os.path.join(ROOT, 'tests', 'data', 'vapt-tiny-clip.json')


def tool(name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(batches: Iterable, step: Callable[[tuple], None]) -> float:
    """Samples per second of one pass over ``batches``, each given to ``step``."""
    tic, samples = time.perf_counter(), 0
    for batch in batches:
        step(batch)
        samples += batch[0].shape[0]
    return samples / (time.perf_counter() - tic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=400, help='5 pairs per image')
    parser.add_argument('--size', type=int, default=128, help='image side in pixels')
    parser.add_argument('--batch-size', type=int, default=50)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--shards', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = tempfile.mkdtemp(prefix='bench_shards_')
    splits = tool('make_demo_retrieval').make(work, args.images, args.size, 0, (1.0, 0.0))
    write_caption_files(work, splits, 'bench')
    csv_path = os.path.join(work, 'train.csv')
    tool('make_shards').main([csv_path, os.path.join(work, 'shards'),
                              '--num-shards', str(args.shards)])
    urls = expand_shards(os.path.join(work, 'shards', f'shard-{{0000..{args.shards - 1:04d}}}.tar'))
    model, _, transform, tokenizer = create_clip('vapt-tiny-clip', None, MODEL_CONFIG)
    apply_vapt(model, method='vapt', num_tokens=4)
    pairs = load_captions(csv_path).pairs()
    common = dict(transform=transform, tokenizer=tokenizer, batch_size=args.batch_size,
                  accum_freq=1, rank=0, world_size=1, seed=0, workers=args.workers)
    paths = {'CSV (map-style)': PairBatches(pairs, **common),
             'webdataset shards': ShardBatches(urls, len(pairs), **common)}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    loss_fn = ClipLoss()
    model.eval()
    model.visual.train()

    def train_step(batch: tuple) -> None:
        contrastive_backward(model, loss_fn, [batch], backward=lambda loss: loss.backward())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    speeds: Dict[str, Dict[str, List[float]]] = {p: {'data': [], 'train': []} for p in paths}
    for repeat in range(args.repeats):
        for name, data in paths.items():
            speeds[name]['data'].append(timed(data.epoch(repeat, 0), lambda batch: None))
            speeds[name]['train'].append(timed(data.epoch(repeat, 0), train_step))
    print(f'{len(pairs)} pairs of {args.images} PNG images ({args.size} px) in {len(urls)} shards, '
          f'batch {args.batch_size}, {args.workers} DataLoader workers, {args.repeats} repeats, '
          f'{os.cpu_count()} CPU(s); samples/s, median (min-max)\n')
    print('| path | data only | data + VAPT train step |')
    print('|---|---:|---:|')
    for name, results in speeds.items():
        cells = [f'{statistics.median(v):.0f} ({min(v):.0f}-{max(v):.0f})'
                 for v in (results['data'], results['train'])]
        print(f'| {name} | {cells[0]} | {cells[1]} |')


if __name__ == '__main__':
    main()

"""Do the N generated prompts of a layer differ? The token maps of trained VAPT runs.

    python studies/token_map_similarity.py work_dirs/study_dinov2_seg_full \
        --methods vapt vapt-random-token-maps --fraction 0.05

Reads the final checkpoint of each finished run (``runs/*/result.json`` beside
``iter_*.pth``) and prints a Markdown table: per run, the mean cosine similarity
between the N rows (one per prompt) of each generated layer's token-wise map. 1.00
means that the layer generates one prompt N times (its N prompts differ only by the
token map's scalar biases).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F

from vapt_mm.seg.weights import read_checkpoint


def mean_row_similarity(weight: torch.Tensor) -> float:
    """Mean cosine similarity over the pairs of distinct rows of ``weight`` (N, P)."""
    rows = F.normalize(weight.float(), dim=1)
    n = rows.shape[0]
    return float(((rows @ rows.T).sum() - n) / (n * (n - 1)))


def token_map_similarities(checkpoint: Path) -> List[float]:
    """One similarity per generated layer, in layer order."""
    state = read_checkpoint(str(checkpoint))['state_dict']
    names = [k for k in state if k.endswith('.token_map.weight')]
    names.sort(key=lambda k: int(k.split('.generators.')[1].split('.')[0]))
    if not names:
        raise ValueError(f'{checkpoint} has no token maps (not a VAPT run).')
    return [mean_row_similarity(state[k]) for k in names]


def similarity_rows(out_dir: Path, methods: Sequence[str], fraction: float) -> List[Dict]:
    rows = []
    for result_file in sorted(out_dir.glob('runs/*/result.json')):
        result = json.loads(result_file.read_text())
        if result['method'] not in methods or result['fraction'] != fraction:
            continue
        checkpoint = max(result_file.parent.glob('iter_*.pth'),
                         key=lambda p: int(p.stem.split('_')[1]))
        rows.append(dict(result, similarities=token_map_similarities(checkpoint)))
    if not rows:
        raise ValueError(f'no finished runs of {list(methods)} at fraction {fraction} in '
                         f'{out_dir}/runs.')
    return sorted(rows, key=lambda r: (list(methods).index(r['method']), r['seed']))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', type=Path)
    parser.add_argument('--methods', nargs='+', default=['vapt', 'vapt-random-token-maps'])
    parser.add_argument('--fraction', type=float, default=0.05)
    args = parser.parse_args()
    rows = similarity_rows(args.out_dir, args.methods, args.fraction)
    layers = len(rows[0]['similarities'])
    print('| method | seed | val mIoU | ' + ' | '.join(f'layer {i + 1}' for i in range(layers))
          + ' |')
    print('|---|---:|---:|' + '---:|' * layers)
    for row in rows:
        print(f"| {row['method']} | {row['seed']} | {row['metric']:.2f} | "
              + ' | '.join(f'{s:.3f}' for s in row['similarities']) + ' |')


if __name__ == '__main__':
    main()

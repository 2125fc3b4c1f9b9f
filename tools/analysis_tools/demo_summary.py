"""Print the demo's results side by side: method, trainable parameters, metric.

    python tools/analysis_tools/demo_summary.py work_dirs/demo [--threads STEP=N ...]

Reads what ``tools/demo.sh`` writes: ``seg/<method>/iter_*.pth`` (trainable
weights only) and ``seg/<method>/test/<time>/<time>.json`` (mmseg's test
metrics), ``retrieval/<method>/vapt.safetensors`` and
``retrieval/recall_<method>.json`` (no weights file: nothing trained). Writes
the table to ``summary.md`` too, and under it the run's environment: the threads
each step ran with (``--threads``, from ``tools/demo.sh``), torch, its BLAS and
parallel backend, the CPU. Thread counts and BLAS change the order of float sums,
and so the numbers: two machines' summaries tell apart what ran where.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
from pathlib import Path
from typing import Dict, List, Tuple

import torch
from safetensors.torch import load_file

from vapt_mm.seg.weights import read_checkpoint

SEG_METHODS = ('head-only', 'vapt')
#: ``vapt-untrained``: the LiT CLIP with VAPT's prompts at their initialisation.
RETRIEVAL_METHODS = ('zero-shot', 'vapt-untrained', 'head-only', 'vapt')


def test_metrics(test_dir: Path) -> Dict[str, float]:
    """The last metrics line of the newest mmengine run under ``test_dir``: ``<time>/<time>.json``
    of a test, ``<time>/vis_data/<time>.json`` of a training run's validation."""
    logs = sorted((p for p in test_dir.glob('*/**/*.json') if p.stem == p.parents[0].name
                   or p.stem == p.parents[1].name), key=lambda p: p.stem)
    if not logs:
        raise FileNotFoundError(f'no test metrics under {test_dir}; run tools/test.py with '
                                f'--work-dir {test_dir} first.')
    rows = [json.loads(line) for line in logs[-1].read_text().splitlines() if line.strip()]
    return next(row for row in reversed(rows) if 'mIoU' in row)


def seg_parameters(run_dir: Path) -> Dict[str, int]:
    """Trainable parameters of a run, from its trainable-only checkpoint: backbone and head."""
    checkpoints = sorted(run_dir.glob('iter_*.pth'), key=lambda p: int(p.stem.split('_')[1]))
    if not checkpoints:
        raise FileNotFoundError(f'no iter_*.pth checkpoint in {run_dir}.')
    state = read_checkpoint(str(checkpoints[-1]))['state_dict']
    backbone = sum(v.numel() for k, v in state.items() if k.startswith('backbone.'))
    return {'prompts': backbone, 'head': sum(v.numel() for v in state.values()) - backbone}


def tensor_count(path: Path) -> int:
    """Elements of all tensors in a ``.safetensors`` file (the trainable weights of a run)."""
    return sum(v.numel() for v in load_file(str(path)).values())


def seg_rows(demo: Path) -> List[Dict[str, object]]:
    rows = []
    for method in SEG_METHODS:
        run = demo / 'seg' / method
        metrics = test_metrics(run / 'test')
        rows.append({'task': 'segmentation (val mIoU)', 'method': method,
                     **seg_parameters(run), 'metric': metrics['mIoU'], 'aAcc': metrics['aAcc']})
    return rows


def retrieval_rows(demo: Path) -> List[Dict[str, object]]:
    rows = []
    for method in RETRIEVAL_METHODS:
        recall = json.loads((demo / 'retrieval' / f'recall_{method}.json').read_text())
        weights = demo / 'retrieval' / method / 'vapt.safetensors'
        trainable = tensor_count(weights) if weights.is_file() else 0
        rows.append({'task': 'retrieval (test mean recall)', 'method': method,
                     'trainable': trainable, 'metric': 100 * recall['metrics']['mean_recall']})
    return rows


def table(rows: List[Dict[str, object]]) -> str:
    lines = ['| task | method | trainable parameters | metric |', '|---|---|---:|---:|']
    for row in rows:
        trainable = row.get('trainable', None)
        if trainable is None and row['prompts']:
            trainable = f"{row['prompts'] + row['head']:,} ({row['prompts']:,} prompts)"
        elif trainable is None:
            trainable = f"{row['head']:,}"
        else:
            trainable = f'{trainable:,}'
        lines.append(f"| {row['task']} | {row['method']} | {trainable} | {row['metric']:.2f} |")
    return '\n'.join(lines)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else ``platform.processor()``."""
    try:
        match = re.search(r'^model name\s*:\s*(.+)$', Path('/proc/cpuinfo').read_text(), re.M)
    except OSError:
        match = None
    return match.group(1).strip() if match else platform.processor() or 'unknown'


def environment(step_threads: Dict[str, int]) -> Dict[str, object]:
    """What changes the float sums between machines: each step's thread count, and this
    process's torch (version, intra-op threads, ATen parallel backend, BLAS) and CPU."""
    backend = re.search(r'ATen parallel backend: (.+)', torch.__config__.parallel_info())
    blas = re.search(r'BLAS_INFO=(\w+)', torch.__config__.show())
    return {'step_threads': dict(step_threads), 'torch': torch.__version__,
            'torch_threads': torch.get_num_threads(),
            'parallel_backend': backend.group(1).strip() if backend else 'unknown',
            'blas': blas.group(1) if blas else 'unknown', 'cpu': cpu_model(),
            'cpu_count': os.cpu_count()}


def environment_text(env: Dict[str, object]) -> str:
    steps = ', '.join(f'{step} {n}' for step, n in env['step_threads'].items()) or 'not given'
    return (f"Run environment (float sums depend on it): threads per step: {steps}; "
            f"torch {env['torch']} ({env['torch_threads']} intra-op threads here, "
            f"{env['parallel_backend']} backend, BLAS {env['blas']}); "
            f"CPU {env['cpu']}, {env['cpu_count']} cores.")


def step_thread_count(text: str) -> Tuple[str, int]:
    """``STEP=N`` of ``--threads`` as ``(STEP, N)``."""
    step, _, count = text.partition('=')
    if not step or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f'{text!r}: give STEP=N, N a positive thread count, '
                                         'e.g. seg/vapt=2.')
    return step, int(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('demo_dir', type=Path, help='the demo output folder (work_dirs/demo)')
    parser.add_argument('--threads', nargs='+', type=step_thread_count, default=[],
                        metavar='STEP=N', help='the threads (OMP_NUM_THREADS) each step ran with')
    args = parser.parse_args()
    rows = seg_rows(args.demo_dir) + retrieval_rows(args.demo_dir)
    env = environment(dict(args.threads))
    text = table(rows) + '\n\n' + environment_text(env)
    (args.demo_dir / 'summary.md').write_text(text + '\n')
    (args.demo_dir / 'summary.json').write_text(json.dumps(
        {'rows': rows, 'environment': env}, indent=1) + '\n')
    print(text)


if __name__ == '__main__':
    main()

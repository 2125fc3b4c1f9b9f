"""Summarise a sample-efficiency study: a Markdown table, a plot and the raw rows.

Shared by the segmentation and retrieval studies. Each row is one training run::

    {'method': 'vapt', 'fraction': 0.05, 'seed': 0, 'metric': 41.2,
     'trainable': 3456, 'seconds': 12.3}
"""
from __future__ import annotations

import json
import os
import statistics
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the Agg backend)

KEYS = ('method', 'fraction', 'seed', 'metric', 'trainable', 'seconds')


def saved_row(path: Path, settings: dict, out_option: str) -> Optional[dict]:
    """The row saved at ``path`` (``save_row``), ``None`` if there is none; stops with an
    error if it was made with other ``settings`` rather than mix them in one table."""
    if not path.is_file():
        return None
    row = json.loads(path.read_text())
    settings = json.loads(json.dumps(settings))  # as saved: tuples as lists
    saved = row.pop('settings', settings)  # rows of older versions carry none
    if saved != settings:
        raise ValueError(f'{path} was made with {saved}, not {settings}; use another '
                         f'{out_option} for other settings.')
    return row


def save_row(path: Path, row: dict, settings: dict) -> None:
    """Keep one run's row with the settings it was made with."""
    path.write_text(json.dumps({**row, 'settings': settings}))


def _groups(rows: Sequence[dict]) -> Dict[Tuple[str, float], List[dict]]:
    """Rows grouped by (method, fraction), methods in order of first appearance."""
    groups: Dict[Tuple[str, float], List[dict]] = defaultdict(list)
    for row in rows:
        missing = [k for k in KEYS if k not in row]
        if missing:
            raise ValueError(f'study row {row!r} lacks {missing}; rows need keys {list(KEYS)}.')
        groups[(row['method'], float(row['fraction']))].append(row)
    return groups


def _mean_std(values: Sequence[float]) -> Tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def _fraction(value: float) -> str:
    return f'{value * 100:g}%'


def summarise(rows: Sequence[dict]) -> List[dict]:
    """One entry per method x fraction: mean and std of the metric over seeds, and so on."""
    methods = list(dict.fromkeys(row['method'] for row in rows))
    groups = _groups(rows)
    summary = []
    for (method, fraction), group in sorted(groups.items(),
                                            key=lambda kv: (methods.index(kv[0][0]), kv[0][1])):
        mean, std = _mean_std([float(r['metric']) for r in group])
        summary.append({'method': method, 'fraction': fraction, 'mean': mean, 'std': std,
                        'n': len(group), 'trainable': max(int(r['trainable']) for r in group),
                        'seconds': statistics.fmean(float(r['seconds']) for r in group)})
    return summary


def format_table(summary: Sequence[dict], metric: str) -> str:
    """The summary as a Markdown table."""
    lines = [f'| method | data fraction | {metric} (mean ± std) | seeds | trainable params '
             '| seconds (mean) |', '|---|---:|---:|---:|---:|---:|']
    for s in summary:
        lines.append(f"| {s['method']} | {_fraction(s['fraction'])} | {s['mean']:.2f} ± "
                     f"{s['std']:.2f} | {s['n']} | {s['trainable']:,} | {s['seconds']:.1f} |")
    return '\n'.join(lines)


def plot(summary: Sequence[dict], path: str, metric: str, title: str) -> None:
    """Metric vs data fraction (log x axis), one line with error bars per method."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for method in dict.fromkeys(s['method'] for s in summary):
        points = [s for s in summary if s['method'] == method]
        ax.errorbar([s['fraction'] * 100 for s in points], [s['mean'] for s in points],
                    yerr=[s['std'] for s in points], marker='o', capsize=3, label=method)
    ax.set_xscale('log')
    fractions = sorted({s['fraction'] for s in summary})
    ax.set_xticks([f * 100 for f in fractions], [_fraction(f) for f in fractions])
    ax.minorticks_off()
    ax.set_xlabel('training data (log scale)')
    ax.set_ylabel(metric)
    ax.set_title(textwrap.fill(title, 60), fontsize=10)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(rows: List[dict], out_dir: str, metric: str, title: str) -> None:
    """Write ``table.md``, ``plot.png`` and ``rows.json`` to ``out_dir``; print the table."""
    os.makedirs(out_dir, exist_ok=True)
    summary = summarise(rows)
    table = format_table(summary, metric)
    with open(os.path.join(out_dir, 'table.md'), 'w', encoding='utf-8') as f:
        f.write(f'## {title}\n\n{table}\n')
    with open(os.path.join(out_dir, 'rows.json'), 'w', encoding='utf-8') as f:
        json.dump(list(rows), f, indent=1)
    plot(summary, os.path.join(out_dir, 'plot.png'), metric, title)
    print(table)

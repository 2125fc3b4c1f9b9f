"""Summarise a sample-efficiency study: a Markdown table, a plot and the raw rows, and the
paired differences of VAPT against every other method (same fraction and seed).

    python studies/study_report.py OUT --metric 'val mIoU (%)' --title '...'

re-writes the report of every finished run under ``OUT/runs`` (``*/result.json``, or
``*-test.row.json`` of the retrieval study), e.g. after several processes shared ``OUT``.

Shared by the segmentation and retrieval studies. Each row is one training run::

    {'method': 'vapt', 'fraction': 0.05, 'seed': 0, 'metric': 41.2,
     'trainable': 3456, 'seconds': 12.3}
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib
from scipy import stats

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


def paired_differences(rows: Sequence[dict], method: str = 'vapt') -> List[dict]:
    """Per other method and fraction: ``method`` minus it, seed by seed (the same data
    subset and seed), with the mean and a 95% Student-t confidence interval."""
    by_key = {(r['method'], float(r['fraction']), r['seed']): float(r['metric']) for r in rows}
    others = [m for m in dict.fromkeys(r['method'] for r in rows) if m != method]
    fractions = sorted({float(r['fraction']) for r in rows})
    result = []
    for other in others:
        for fraction in fractions:
            seeds = sorted(seed for (m, f, seed) in by_key if m == method and f == fraction
                           and (other, fraction, seed) in by_key)
            if not seeds:
                continue
            diffs = [by_key[(method, fraction, s)] - by_key[(other, fraction, s)]
                     for s in seeds]
            mean = statistics.fmean(diffs)
            half = (stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs)
                    / len(diffs) ** 0.5) if len(diffs) > 1 else float('nan')
            result.append({'comparison': f'{method} - {other}', 'fraction': fraction,
                           'seeds': seeds, 'differences': diffs, 'mean': mean,
                           'ci95': (mean - half, mean + half)})
    return result


def format_paired_table(pairs: Sequence[dict], metric: str) -> str:
    """The paired differences as a Markdown table."""
    lines = [f'| comparison | data fraction | {metric} difference per seed | mean | 95% CI |',
             '|---|---:|---|---:|---:|']
    for p in pairs:
        per_seed = ', '.join(f'{d:+.2f}' for d in p['differences'])
        low, high = p['ci95']
        interval = 'n/a (1 seed)' if len(p['differences']) < 2 else f'[{low:+.2f}, {high:+.2f}]'
        lines.append(f"| {p['comparison']} | {_fraction(p['fraction'])} | {per_seed} | "
                     f"{p['mean']:+.2f} | {interval} |")
    return '\n'.join(lines)


def plot_paired(pairs: Sequence[dict], path: str, metric: str, title: str) -> None:
    """Paired differences vs data fraction: each seed as a dot, the mean with its 95% CI."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    comparisons = list(dict.fromkeys(p['comparison'] for p in pairs))
    fractions = sorted({p['fraction'] for p in pairs})
    width = 0.8 / max(1, len(comparisons))
    for index, comparison in enumerate(comparisons):
        mine = [p for p in pairs if p['comparison'] == comparison]
        x = [fractions.index(p['fraction']) + (index - (len(comparisons) - 1) / 2) * width
             for p in mine]
        low = [p['mean'] - p['ci95'][0] if len(p['differences']) > 1 else 0 for p in mine]
        high = [p['ci95'][1] - p['mean'] if len(p['differences']) > 1 else 0 for p in mine]
        line = ax.errorbar(x, [p['mean'] for p in mine], yerr=[low, high], fmt='o', capsize=4,
                           label=comparison)
        for xi, p in zip(x, mine):
            ax.scatter([xi] * len(p['differences']), p['differences'], s=10, alpha=0.5,
                       color=line[0].get_color())
    ax.axhline(0.0, color='black', linewidth=0.8)
    ax.set_xticks(range(len(fractions)), [_fraction(f) for f in fractions])
    ax.set_xlabel('training data')
    ax.set_ylabel(f'{metric} difference')
    ax.set_title(textwrap.fill(title, 60), fontsize=10)
    ax.grid(True, axis='y', alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_paired_report(rows: Sequence[dict], out_dir: str, metric: str,
                        method: str = 'vapt') -> None:
    """Write ``paired.md`` and ``paired.png`` (``method`` minus every other method) to
    ``out_dir`` when the rows hold ``method`` and another method at a common seed."""
    pairs = paired_differences(rows, method)
    if not pairs:
        return
    table = format_paired_table(pairs, metric)
    with open(os.path.join(out_dir, 'paired.md'), 'w', encoding='utf-8') as f:
        f.write(f'## Paired differences ({metric}, same data subset and seed)\n\n{table}\n')
    plot_paired(pairs, os.path.join(out_dir, 'paired.png'), metric,
                f'{method} minus each method, per seed (dots), mean and 95% CI')
    print(table)


def selection_table(results: Dict[float, List[dict]], methods: Sequence[str]) -> str:
    """Markdown: mean metric per method (rows) and lr (columns), the best lr per method
    ('—' where a method did not run at an lr, 'diverged' where its loss did)."""
    lrs = sorted(results)
    lines = ['| method | ' + ' | '.join(f'lr {lr:g}' for lr in lrs) + ' | best lr |',
             '|---|' + '---:|' * (len(lrs) + 1)]
    for method in methods:
        means = {lr: statistics.fmean(r['metric'] for r in results[lr] if r['method'] == method)
                 for lr in lrs if any(r['method'] == method for r in results[lr])}
        # A diverged run (NaN) is never the best.
        best = max(means, key=lambda lr: -math.inf if math.isnan(means[lr]) else means[lr])
        cells = ['—' if lr not in means else 'diverged' if math.isnan(means[lr])
                 else f'{means[lr]:.2f}' for lr in lrs]
        lines.append(f'| {method} | ' + ' | '.join(cells) + f' | {best:g} |')
    return '\n'.join(lines)


def collect_rows(out_dir: str) -> List[dict]:
    """The rows of every finished run under ``out_dir/runs``, without their settings."""
    runs = Path(out_dir) / 'runs'
    files = sorted(runs.glob('*/result.json')) + sorted(runs.glob('*-test.row.json'))
    rows = [json.loads(path.read_text()) for path in files]
    for row in rows:
        row.pop('settings', None)
    if not rows:
        raise FileNotFoundError(f'no finished runs under {runs}; run the study first.')
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help="a study's output folder")
    parser.add_argument('--metric', default='val mIoU (%)')
    parser.add_argument('--title', default='Sample-efficiency study')
    parser.add_argument('--methods', nargs='+', help='only these methods, in this order')
    args = parser.parse_args()
    rows = collect_rows(args.out_dir)
    if args.methods:
        rows = sorted((r for r in rows if r['method'] in args.methods),
                      key=lambda r: args.methods.index(r['method']))
    write_report(rows, args.out_dir, args.metric, args.title)
    write_paired_report(rows, args.out_dir, args.metric.replace(' (%)', ''))


if __name__ == '__main__':
    main()

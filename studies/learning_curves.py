"""Learning curves of study runs and the two gates a regime must pass to carry a verdict.

A study row may hold ``curve``: ``[[step, metric], ...]``, the validation metric recorded at
10 or more points of the run's schedule (mmengine's ``vis_data/scalars.json``). A regime
(one data fraction of one study) carries a verdict only if

* **converged**: for every method, the mean curve over seeds moves by less than the spread
  between seeds (max - min of the final metric) over the last 20% of the steps, and
* **reference**: at the largest data fraction, full fine-tuning reaches at least the linear
  probe (head-only).

A regime that fails a gate is reported as such, never as a verdict.
"""
from __future__ import annotations

import json
import statistics
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the Agg backend)

Curve = List[Tuple[int, float]]
#: Share of the schedule whose movement the convergence gate measures.
TAIL = 0.2


def read_curve(work_dir: Path, key: str) -> Curve:
    """``[(step, value)]`` of scalar ``key`` in the mmengine logs under ``work_dir``
    (``<timestamp>/vis_data/scalars.json``), oldest first: a resumed run's log continues its
    earlier ones, and a log replaces the earlier points from its own first step on (a run
    started anew replaces them all). Empty if the run logged none."""
    logs = sorted(Path(work_dir).glob('*/vis_data/scalars.json'))
    if not logs:
        raise FileNotFoundError(f'no mmengine scalars log under {work_dir}; was the run trained '
                                'with a LocalVisBackend?')
    curve: Dict[int, float] = {}
    for log in logs:
        records = [json.loads(line) for line in log.read_text().splitlines()]
        points = [(int(r['step']), float(r[key])) for r in records if key in r]
        if points:
            curve = {step: value for step, value in curve.items() if step < points[0][0]}
            curve.update(points)
    return sorted(curve.items())


def value_at(curve: Curve, step: float) -> float:
    """The metric of the first recorded point at or after ``step`` (the last if none)."""
    for at, value in curve:
        if at >= step:
            return value
    return curve[-1][1]


def convergence(rows: Sequence[dict]) -> List[dict]:
    """Per method and fraction: the mean curve's movement over the last ``TAIL`` of the
    steps, the seeds' spread of the final metric, and whether movement < spread. A group
    with a row that recorded no curve (``points`` 0) fails."""
    groups: Dict[Tuple[str, float], List[dict]] = defaultdict(list)
    for row in rows:
        groups[(row['method'], float(row['fraction']))].append(row)
    result = []
    for (method, fraction), group in groups.items():
        entry = {'method': method, 'fraction': fraction, 'seeds': len(group),
                 'points': min(len(row.get('curve') or []) for row in group),
                 'movement': float('nan'), 'spread': float('nan'), 'passed': False}
        result.append(entry)
        if not entry['points']:
            continue
        last = max(row['curve'][-1][0] for row in group)
        start = (1.0 - TAIL) * last
        moves = [row['curve'][-1][1] - value_at(row['curve'], start) for row in group]
        finals = [row['curve'][-1][1] for row in group]
        entry.update(movement=abs(statistics.fmean(moves)), spread=max(finals) - min(finals))
        entry['passed'] = len(group) > 1 and entry['movement'] < entry['spread']
    return result


def reference_gate(rows: Sequence[dict], full: str = 'full-ft',
                   probe: str = 'head-only') -> dict:
    """Whether ``full`` reaches ``probe`` (mean over seeds) at the largest data fraction."""
    fractions = [float(r['fraction']) for r in rows if r['method'] in (full, probe)]
    if not fractions:
        return {'fraction': None, 'full': None, 'probe': None, 'passed': False,
                'why': f'no {full} or {probe} runs'}
    largest = max(fractions)

    def mean(method: str) -> Optional[float]:
        values = [float(r['metric']) for r in rows
                  if r['method'] == method and float(r['fraction']) == largest]
        return statistics.fmean(values) if values else None

    full_mean, probe_mean = mean(full), mean(probe)
    if full_mean is None or probe_mean is None:
        missing = full if full_mean is None else probe
        return {'fraction': largest, 'full': full_mean, 'probe': probe_mean, 'passed': False,
                'why': f'no {missing} run at the largest fraction'}
    passed = full_mean >= probe_mean
    return {'fraction': largest, 'full': full_mean, 'probe': probe_mean, 'passed': passed,
            'why': '' if passed else f'{full} {full_mean:.2f} < {probe} {probe_mean:.2f}'}


def format_gates(rows: Sequence[dict], metric: str, full: str = 'full-ft') -> str:
    """Markdown: the convergence gate per method and fraction, the reference gate (``full``
    names full fine-tuning), and the regimes (fractions) that may carry a verdict."""
    conv = convergence(rows)
    ref = reference_gate(rows, full)
    lines = [f'| method | data fraction | seeds | curve points | {metric} moved in the last '
             f'{TAIL:.0%} | seed spread | flattened |', '|---|---:|---:|---:|---:|---:|---|']
    for c in conv:
        measured = (f"{c['movement']:.2f} | {c['spread']:.2f}" if c['points']
                    else 'no curve recorded | —')
        lines.append(f"| {c['method']} | {c['fraction']:g} | {c['seeds']} | {c['points']} | "
                     f"{measured} | {'yes' if c['passed'] else 'NO'} |")
    if ref['fraction'] is None:
        lines.append(f"\nReference gate: not measured ({ref['why']}).")
    else:
        verdict = 'passed' if ref['passed'] else f"FAILED ({ref['why']})"
        full_value = '—' if ref['full'] is None else f"{ref['full']:.2f}"
        probe = '—' if ref['probe'] is None else f"{ref['probe']:.2f}"
        lines.append(f"\nReference gate at fraction {ref['fraction']:g}: {full} {full_value} "
                     f"vs head-only {probe}: {verdict}.")
    for fraction in sorted({c['fraction'] for c in conv}):
        mine = [c for c in conv if c['fraction'] == fraction]
        unrecorded = [c['method'] for c in mine if not c['points']]
        failed = [c['method'] for c in mine if c['points'] and not c['passed']]
        ok = not failed and not unrecorded and ref['passed']
        why = []
        if unrecorded:
            why.append('no curve: ' + ', '.join(unrecorded))
        if failed:
            why.append('not flattened: ' + ', '.join(failed))
        if not ref['passed']:
            why.append('reference gate failed')
        lines.append(f"- fraction {fraction:g}: "
                     + ('carries a verdict' if ok else 'NO verdict (' + '; '.join(why) + ')'))
    return '\n'.join(lines)


def plot_curves(rows: Sequence[dict], path: str, metric: str, title: str) -> None:
    """Metric against step, one panel per fraction, a line per method (mean over seeds)
    with the seeds' min-max band."""
    fractions = sorted({float(r['fraction']) for r in rows if r.get('curve')})
    if not fractions:
        return
    fig, axes = plt.subplots(1, len(fractions), figsize=(5 * len(fractions), 4), dpi=110,
                             squeeze=False)
    methods = list(dict.fromkeys(r['method'] for r in rows))
    for ax, fraction in zip(axes[0], fractions):
        for index, method in enumerate(methods):  # a method keeps its colour in every panel
            curves = [r['curve'] for r in rows if r['method'] == method
                      and float(r['fraction']) == fraction and r.get('curve')]
            if not curves:
                continue
            steps = [s for s, _ in curves[0]]
            values = [[value_at(c, s) for s in steps] for c in curves]
            mean = [statistics.fmean(v) for v in zip(*values)]
            color = f'C{index % 10}'
            ax.plot(steps, mean, marker='.', label=method, color=color,
                    linestyle='-' if index < 10 else '--')
            ax.fill_between(steps, [min(v) for v in zip(*values)],
                            [max(v) for v in zip(*values)], color=color, alpha=0.15)
        ax.set_title(f'fraction {fraction:g}', fontsize=9)
        ax.set_xlabel('training step')
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle(textwrap.fill(title, 90), fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_curves(rows: Sequence[dict], out_dir: Path, metric: str, title: str,
                 full: str = 'full-ft') -> str:
    """``curves.png`` and ``gates.md`` of ``rows`` in ``out_dir``; returns the gates."""
    plot_curves(rows, str(Path(out_dir) / 'curves.png'), metric, f'Learning curves, {title}')
    gates = format_gates(rows, metric, full)
    (Path(out_dir) / 'gates.md').write_text(f'## Gates ({title})\n\n{gates}\n')
    print(gates)
    return gates

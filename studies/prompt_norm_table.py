"""How large the prompts grow while they train, beside the patch tokens they join.

    python studies/prompt_norm_table.py work_dirs/study_dinov2_seg_full

Reads ``runs/*/prompt_norms.jsonl`` (``PromptNormHook``, which
``sample_efficiency_seg.py --backbone dinov2`` adds to every prompted run) and
prints a Markdown table per method and data fraction: the mean L2 norm of a
prompt token and of a patch token over the generated layers (1 .. L-1; layer 0
holds static prompts for every method) at the first and the last logged
iteration, as the median over seeds, and the largest prompt norm of any layer.
"""
from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple


def run_norms(run: Path) -> Tuple[dict, dict]:
    """The first and the last record of a run's ``prompt_norms.jsonl``."""
    lines = (run / 'prompt_norms.jsonl').read_text().splitlines()
    if not lines:
        raise ValueError(f'{run}/prompt_norms.jsonl is empty; the run logged no norms.')
    return json.loads(lines[0]), json.loads(lines[-1])


def later_layers(record: dict, key: str) -> float:
    """The mean of ``record[key]`` over the layers after the first."""
    values = [v for layer, v in zip(record['layers'], record[key]) if layer > 0]
    return statistics.fmean(values)


def norm_rows(out_dir: Path) -> List[dict]:
    """One row per method and fraction: medians over the runs (seeds) of the norms."""
    groups: Dict[Tuple[str, float], List[dict]] = defaultdict(list)
    for norms in sorted(out_dir.glob('runs/*/prompt_norms.jsonl')):
        result = json.loads((norms.parent / 'result.json').read_text())
        first, last = run_norms(norms.parent)
        groups[(result['method'], float(result['fraction']))].append(dict(
            first_iter=first['iter'], last_iter=last['iter'],
            prompt_first=later_layers(first, 'prompt_norm'),
            prompt_last=later_layers(last, 'prompt_norm'),
            patch_last=later_layers(last, 'patch_norm'), largest=max(last['prompt_norm'])))
    rows = []
    for (method, fraction), runs in sorted(groups.items()):
        rows.append(dict(method=method, fraction=fraction, runs=len(runs),
                         **{key: statistics.median(r[key] for r in runs) for key in runs[0]}))
    return rows


def table(rows: List[dict]) -> str:
    """The rows as Markdown."""
    lines = ['| method | data fraction | runs | prompt norm, first log (iter) | prompt norm, '
             'last log (iter) | patch norm, last log | largest prompt norm of a layer |',
             '|---|---:|---:|---:|---:|---:|---:|']
    for r in rows:
        lines.append(f"| {r['method']} | {r['fraction'] * 100:g}% | {r['runs']} | "
                     f"{r['prompt_first']:.2f} ({r['first_iter']:.0f}) | {r['prompt_last']:.2f} "
                     f"({r['last_iter']:.0f}) | {r['patch_last']:.2f} | {r['largest']:.1f} |")
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', type=Path, help="the study's output folder")
    parser.add_argument('--out', type=Path, help='also write the table here')
    args = parser.parse_args()
    rows = norm_rows(args.out_dir)
    if not rows:
        raise SystemExit(f'no prompt_norms.jsonl under {args.out_dir}/runs; run the study with '
                         '--backbone dinov2 first.')
    text = table(rows)
    if args.out:
        args.out.write_text(text + '\n')
    print(text)


if __name__ == '__main__':
    main()

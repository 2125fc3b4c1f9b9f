"""The studies' learning curves and gates (studies/learning_curves.py): a regime carries a
verdict only when every curve has flattened and full fine-tuning reaches the probe."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'studies'))
from learning_curves import (convergence, format_gates, plot_curves, read_curve,  # noqa: E402
                             reference_gate, value_at)


def rows_of(method, fraction, finals, tail_start, metric=None):
    """Three seeds whose curves go 0 .. ``tail_start`` at step 80 and ``finals`` at 100."""
    return [dict(method=method, fraction=fraction, seed=seed,
                 metric=final if metric is None else metric, trainable=1, seconds=1.0,
                 curve=[[step, tail_start * step / 80] for step in range(10, 90, 10)]
                 + [[90, (tail_start + final) / 2], [100, final]])
            for seed, final in enumerate(finals)]


def test_a_curve_that_still_climbs_fails_and_a_flat_one_passes():
    flat = rows_of('vapt', 1.0, [50.0, 52.0, 54.0], tail_start=52.0)  # moves 0, spread 4
    climbing = rows_of('vpt-deep', 1.0, [60.0, 61.0, 62.0], tail_start=50.0)  # 11 vs 2
    result = {c['method']: c for c in convergence(flat + climbing)}
    assert result['vapt']['movement'] == pytest.approx(0.0)
    assert result['vapt']['spread'] == pytest.approx(4.0)
    assert result['vapt']['passed']
    assert result['vpt-deep']['movement'] == pytest.approx(11.0)
    assert not result['vpt-deep']['passed']
    assert result['vapt']['points'] == 10


def test_one_seed_never_passes_the_convergence_gate():
    (only,) = convergence(rows_of('vapt', 1.0, [50.0], tail_start=50.0))
    assert only['spread'] == 0.0 and not only['passed']


def test_the_reference_gate_reads_the_largest_fraction():
    rows = (rows_of('head-only', 0.1, [30.0] * 3, 30.0) + rows_of('full-ft', 0.1, [10.0] * 3, 10.0)
            + rows_of('head-only', 1.0, [40.0] * 3, 40.0)
            + rows_of('full-ft', 1.0, [41.0, 42.0, 43.0], 42.0))
    gate = reference_gate(rows)
    assert gate['fraction'] == 1.0 and gate['passed']
    assert gate['full'] == pytest.approx(42.0) and gate['probe'] == pytest.approx(40.0)
    below = [r for r in rows if r['method'] != 'full-ft' or r['fraction'] != 1.0]
    below += rows_of('full-ft', 1.0, [35.0] * 3, 35.0)
    assert not reference_gate(below)['passed']
    assert 'no full-ft' in reference_gate(rows_of('head-only', 1.0, [1.0], 1.0))['why']


def test_the_gates_table_names_each_regime_verdict():
    rows = (rows_of('head-only', 1.0, [40.0, 41.0, 42.0], 41.0)
            + rows_of('full-ft', 1.0, [50.0, 51.0, 52.0], 51.0)
            + rows_of('vapt', 0.5, [30.0, 31.0, 32.0], 20.0))
    text = format_gates(rows, 'val top-1')
    assert '- fraction 1: carries a verdict' in text
    assert '- fraction 0.5: NO verdict (not flattened: vapt)' in text
    assert 'full-ft 51.00 vs head-only 41.00: passed' in text


def test_read_curve_joins_a_resumed_runs_logs_and_value_at_steps(tmp_path):
    def log(stamp, points):
        path = tmp_path / stamp / 'vis_data' / 'scalars.json'
        path.parent.mkdir(parents=True)
        lines = [{'loss': 1.0, 'step': 5}] + [{'accuracy/top1': v, 'step': s} for s, v in points]
        path.write_text('\n'.join(json.dumps(line) for line in lines))

    log('20260101_000000', [(10, 10.0), (20, 20.0), (30, 30.0)])
    log('20260102_000000', [(10, 20.0), (20, 40.0), (30, 60.0)])  # started anew: replaces all
    curve = read_curve(tmp_path, 'accuracy/top1')
    assert curve == [(10, 20.0), (20, 40.0), (30, 60.0)]
    assert value_at(curve, 15) == 40.0 and value_at(curve, 99) == 60.0
    log('20260103_000000', [(30, 61.0), (40, 70.0)])  # resumed after step 20 (or 25)
    log('20260104_000000', [])  # stopped again before its first validation
    assert read_curve(tmp_path, 'accuracy/top1') == [(10, 20.0), (20, 40.0), (30, 61.0),
                                                     (40, 70.0)]
    with pytest.raises(FileNotFoundError, match='no mmengine scalars log'):
        read_curve(tmp_path / 'nothing', 'accuracy/top1')


def test_plot_curves_writes_a_png(tmp_path):
    rows = rows_of('vapt', 0.5, [30.0, 31.0], 30.0) + rows_of('head-only', 1.0, [40.0], 40.0)
    plot_curves(rows, str(tmp_path / 'curves.png'), 'val top-1', 'title')
    assert (tmp_path / 'curves.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_a_run_without_a_curve_fails_its_regime_and_the_reference_name_is_a_choice():
    rows = (rows_of('head-only', 1.0, [40.0, 41.0, 42.0], 41.0)
            + rows_of('full', 1.0, [50.0, 51.0, 52.0], 51.0)
            + [dict(method='vapt', fraction=1.0, seed=0, metric=30.0, trainable=1, seconds=1.0)])
    (vapt,) = [c for c in convergence(rows) if c['method'] == 'vapt']
    assert vapt['points'] == 0 and not vapt['passed']
    text = format_gates(rows, 'mean recall', full='full')
    assert '| vapt | 1 | 1 | 0 | no curve recorded | — | NO |' in text
    assert 'full 51.00 vs head-only 41.00: passed' in text
    assert '- fraction 1: NO verdict (no curve: vapt)' in text
    assert 'no full-ft' in reference_gate(rows)['why']

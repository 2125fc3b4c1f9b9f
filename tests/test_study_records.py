"""studies/records: the finished study runs kept in git, and the preset that reads them."""
import subprocess
import sys

from seg_helpers import ROOT

sys.path.insert(0, str(ROOT / 'studies'))
from sample_efficiency_seg import PRESETS  # noqa: E402
from select_lr_seg import finished_results  # noqa: E402

SELECTION = ROOT / 'studies' / 'records' / 'select_lr_dinov2_seg_1000it'


def ignored(path: str) -> bool:
    return subprocess.run(['git', 'check-ignore', '-q', path], cwd=ROOT).returncode == 0


def test_records_keep_each_finished_runs_row_and_nothing_else():
    run = 'studies/records/a_study/lr0.01/runs/vapt_f1_s0_it1000'
    assert not ignored(f'{run}/result.json')
    for name in ('iter_100.pth', 'last_checkpoint', 'started.json', 'vapt.py',
                 '20261207_233216/vis_data/scalars.json', 'prompt_norms.jsonl'):
        assert ignored(f'{run}/{name}'), name
    assert ignored('studies/records/a_study/data_400_100_112px_selection_seed1/img_dir/0.jpg')


def test_the_powered_presets_lrs_are_what_the_recorded_selection_chose():
    preset = PRESETS['dinov2']['powered']
    results = finished_results(SELECTION)
    for method, lr in preset['lrs'].items():
        rows = [row for rows in results.values() for row in rows if row['method'] == method]
        scores = {row['lr']: row['metric'] for row in rows}
        assert max(scores, key=scores.get) == lr, (method, scores)
        assert min(scores) < lr < max(scores), (method, 'the best lr is at an edge')
        # Each searched at the preset's own schedule, with its learning curve.
        assert all(row['curve'][-1][0] == preset['iters'] and len(row['curve']) == 10
                   for row in rows)
        assert {row['fraction'] for row in rows} == {max(preset['fractions'])}


def test_the_powered_preset_trains_each_method_at_its_chosen_lr_unless_told(monkeypatch):
    import sample_efficiency_seg
    calls = []
    monkeypatch.setattr(sample_efficiency_seg, 'run_study', lambda *args: calls.append(args))
    monkeypatch.setattr(sys, 'argv', ['sample_efficiency_seg.py', '--backbone', 'dinov2',
                                      '--preset', 'powered', '--lr', 'vapt=0.5'])
    sample_efficiency_seg.main()
    (methods, fractions, seeds, iters, *_, lrs, _target, _backbone, size, _opt), = calls
    chosen = PRESETS['dinov2']['powered']['lrs']
    assert lrs == {**chosen, 'vapt': 0.5} and chosen['vapt'] != 0.5
    assert (list(fractions), list(seeds), iters, size) == ([0.1, 1.0], [0, 1, 2], 1000, 112)

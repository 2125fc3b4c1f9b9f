"""The retrieval sample-efficiency study end to end on one tiny configuration, and the
head-only / full baselines it trains, saved and loaded like prompt weights."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from clip_tiny import tiny_clip
from test_pretrain_clip import shared_cache
from vapt_mm.clip import load_vapt, save_vapt
from vapt_mm.clip.adapter import apply_baseline

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'studies'))


def test_study_runs_one_tiny_configuration_and_writes_its_report(tmp_path, tmp_path_factory):
    out = tmp_path / 'study'
    env = {**os.environ, 'PYTHONPATH': str(ROOT),
           'VAPT_PRETRAIN_CACHE': str(shared_cache(tmp_path_factory))}
    result = subprocess.run(
        [sys.executable, str(ROOT / 'studies' / 'sample_efficiency_retrieval.py'),
         '--preset', 'smoke', '--pretrain-recipe', 'tiny', '--methods', 'vapt', 'vapt-gate',
         '--jobs', '1', '--out', str(out)], capture_output=True, text=True, timeout=300,
        env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / 'plot.png').stat().st_size > 1000
    table = (out / 'table.md').read_text()
    assert '| vapt | 50% |' in table and 'Zero-shot' in table
    rows = json.loads((out / 'rows.json').read_text())
    assert [r['method'] for r in rows] == ['vapt', 'vapt-gate']
    assert 0 < rows[1]['trainable'] - rows[0]['trainable'] <= 12  # a gate scalar per layer
    assert all(0 <= r['metric'] <= 100 and r['trainable'] > 0 for r in rows)
    # The learning curve (validation at each of the 2 steps) and its gates.
    assert [step for step, _ in rows[0]['curve']] == [1, 2]
    assert all(0 <= value <= 100 for _, value in rows[0]['curve'])
    assert '| vapt | 0.5 | 1 | 2 |' in (out / 'gates.md').read_text()
    # The adaptivity ablation re-scores the trained prompts to the study's own test recall.
    (checkpoint, ) = shared_cache(tmp_path_factory).glob('*/vapt-tiny-clip-pt.safetensors')
    (weights, ) = (out / 'runs').glob('vapt-f*/vapt.safetensors')
    ablation = subprocess.run(
        [sys.executable, str(ROOT / 'studies' / 'prompt_adaptivity_retrieval.py'),
         '--model', checkpoint.stem, '--pretrained', str(checkpoint), '--model-config',
         str(checkpoint.with_suffix('.json')), '--data', str(out / 'target-40' / 'captions.json'),
         '--split', 'test', str(weights), '--out', str(tmp_path / 'ablation.json')],
        capture_output=True, text=True, timeout=300, env=env)
    assert ablation.returncode == 0, ablation.stdout + ablation.stderr
    (row, ) = json.loads((tmp_path / 'ablation.json').read_text())
    assert row['adaptive'] == pytest.approx(rows[0]['metric'], abs=1e-6)
    assert row['shares'] and all(0.0 <= s <= 1.0 for s in row['shares'])
    assert f"| {weights.parent.name} | {row['adaptive']:.2f} |" in ablation.stdout
    other = subprocess.run(  # the same folder with another batch size: refused, not mixed
        [sys.executable, str(ROOT / 'studies' / 'sample_efficiency_retrieval.py'),
         '--preset', 'smoke', '--pretrain-recipe', 'tiny', '--methods', 'vapt', '--jobs', '1',
         '--batch-size', '4', '--out', str(out)], capture_output=True, text=True, timeout=300,
        env=env)
    assert other.returncode != 0 and "'batch_size': 32" in other.stderr
    assert 'use another --out for other settings' in other.stderr


@pytest.mark.parametrize('method, trainable', [('head-only', ['visual.proj']),
                                               ('full', None)])
def test_baselines_train_the_image_side_only_and_round_trip(tmp_path, method, trainable):
    model = apply_baseline(tiny_clip(), method)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    visual = [n for n, _ in model.named_parameters() if n.startswith('visual.')]
    assert names == (trainable or visual)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad:
                param.add_(0.5)
    path = str(tmp_path / 'weights.safetensors')
    save_vapt(model, path)
    fresh = load_vapt(tiny_clip(), path)
    images = torch.rand(2, 3, 32, 32)
    assert torch.equal(fresh.encode_image(images), model.encode_image(images))
    assert not torch.equal(tiny_clip().encode_image(images), model.encode_image(images))


def test_the_quick_presets_rates_are_what_the_recorded_search_chose():
    from sample_efficiency_retrieval import DINOV2_CHOSEN_LR, DINOV2_LR_GRID
    search = json.loads((ROOT / 'docs' / 'results' /
                         'dinov2_retrieval_select_lr_rows.json').read_text())['runs']
    for method, lr in DINOV2_CHOSEN_LR.items():
        mine = [r for r in search if r['method'] == method and r['lr'] in DINOV2_LR_GRID[method]]
        assert {r['lr'] for r in mine} == set(DINOV2_LR_GRID[method])  # the whole grid ran
        assert max(mine, key=lambda r: r['metric'])['lr'] == lr
        assert lr not in (min(DINOV2_LR_GRID[method]), max(DINOV2_LR_GRID[method]))  # inside


def test_report_only_tables_the_runs_several_processes_finished(tmp_path):
    from sample_efficiency_retrieval import report_finished
    runs = tmp_path / 'runs'
    runs.mkdir()
    row = dict(fraction=0.1, seed=0, trainable=1, seconds=1.0)
    for method, lr, metric in [('vapt', 1e-4, 30.0), ('vapt', 1e-3, 32.5), ('full', 1e-5, 20.0)]:
        (runs / f'{method}-f0.1-s0-lr{lr:g}-val.row.json').write_text(json.dumps(
            dict(row, method=method, lr=lr, metric=metric, settings={})))
    for method, seed, metric in [('vapt', 0, 40.0), ('vapt', 1, 42.0), ('full', 0, 35.0)]:
        (runs / f'{method}-f1-s{seed}-lr0.001-test.row.json').write_text(json.dumps(
            dict(row, method=method, fraction=1.0, seed=seed, lr=1e-3, metric=metric)))
    (runs / 'zero-shot-test.json').write_text(json.dumps({'metrics': {'mean_recall': 0.3807}}))
    report_finished(tmp_path, ['head-only', 'vapt', 'full'])
    search = (tmp_path / 'lr_search.md').read_text()
    assert '| vapt | — | 30.00 | 32.50 | 0.001 |' in search
    assert '| full | 20.00 | — | — | 1e-05 |' in search and 'head-only' not in search
    table = (tmp_path / 'table.md').read_text()
    assert '| vapt | 100% | 41.00 ± 1.41 | 2 |' in table
    assert 'Zero-shot test mean recall: 38.07' in table


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path, tmp_path_factory,
                                                        monkeypatch):
    """A run whose study process died after its training tool had stopped with a checkpoint
    (step 2 of 4) goes on from that checkpoint: the first two validations are kept and the
    last two added. (That a resumed training equals an uninterrupted one is
    test_cluster_faults_retrieval's.)"""
    import sample_efficiency_retrieval as study_module
    monkeypatch.setenv('VAPT_PRETRAIN_CACHE', str(shared_cache(tmp_path_factory)))
    checkpoint = study_module.pretrained_tiny_clip(study_module.make_recipe('tiny'))
    study = study_module.Study.tiny(tmp_path, checkpoint, 40, steps=4, batch_size=32,
                                    num_tokens=8, threads=1)
    real_run, commands = study_module.run, []

    def killed_after_two_steps(args, threads):
        if 'train_retrieval.py' in args[0]:
            commands.append(args)
            if len(commands) == 1:
                real_run([*args, '--exit-after-steps', '2'], threads)
                raise RuntimeError('the study process died')
        return real_run(args, threads)

    monkeypatch.setattr(study_module, 'run', killed_after_two_steps)
    with pytest.raises(RuntimeError, match='died'):
        study.train_eval('vapt', 0.5, 0, 0.01)
    run = tmp_path / 'runs' / 'vapt-f0.5-s0-lr0.01'
    before = study_module.validation_curve(run / 'results.jsonl')
    spent = json.loads(run.with_name(run.name + '.started.json').read_text())['seconds']
    row = study.train_eval('vapt', 0.5, 0, 0.01)
    assert '--resume' not in commands[0] and commands[1][-2:] == ['--resume', 'latest']
    assert [step for step, _ in before] == [1, 2] and row['curve'][:2] == before
    assert [step for step, _ in row['curve']] == [1, 2, 3, 4]
    assert row['seconds'] > spent > 0 and 0 <= row['metric'] <= 100

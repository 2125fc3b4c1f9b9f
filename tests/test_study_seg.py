"""benchmarks/sample_efficiency_seg.py (one tiny configuration end to end, table and plot),
select_lr_seg.py and prompt_adaptivity.py."""
import json
import os
import subprocess
import sys

import pytest
import torch

from seg_helpers import PYTHON, ROOT
from vapt_mm.core import PromptConfig
from vapt_mm.core.prompts import LayerPrompts

sys.path.insert(0, str(ROOT / 'benchmarks'))
from prompt_adaptivity import GeneratedPromptStats  # noqa: E402


def run_benchmark(tmp_path, script, *args):
    return subprocess.run(
        [PYTHON, f'benchmarks/{script}', *args], cwd=ROOT, capture_output=True, text=True,
        timeout=180, env={**os.environ, 'VAPT_PRETRAIN_CACHE': str(tmp_path / 'cache'),
                          'OMP_NUM_THREADS': '1'})


@pytest.fixture(scope='module')
def study(tmp_path_factory):
    """A finished tiny study (VAPT and VPT-deep) and the output of the command."""
    tmp_path = tmp_path_factory.mktemp('study')
    out = tmp_path / 'study'
    result = run_benchmark(
        tmp_path, 'sample_efficiency_seg.py', '--recipe', 'tiny', '--methods', 'vapt',
        'vpt-deep', '--fractions', '0.5', '--seeds', '0', '--iters', '2', '--train', '4',
        '--val', '2', '--lr', 'vapt=0.0375', 'full-ft=0.5', '--out-dir', str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result


def test_study_runs_one_configuration(study):
    out, result = study
    rows = json.loads((out / 'rows.json').read_text())
    assert [(r['method'], r['fraction']) for r in rows] == [('vapt', 0.5), ('vpt-deep', 0.5)]
    assert all(0.0 <= r['metric'] <= 100.0 and r['trainable'] > 0 for r in rows)
    assert '| vapt | 50% |' in (out / 'table.md').read_text()
    assert (out / 'plot.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert '| vapt | 50% |' in result.stdout
    config = (out / 'runs' / 'vapt_f0.5_s0_it2' / 'vapt.py').read_text()
    assert "lr=0.0375" in config and "type='AdamW'" in config  # --lr reached the optimizer
    assert "lr=0.0375" not in (out / 'runs' / 'vpt-deep_f0.5_s0_it2' / 'vpt-deep.py').read_text()


def test_study_reuses_only_runs_of_the_same_settings(study):
    out, _ = study
    args = ['--recipe', 'tiny', '--methods', 'vapt', '--fractions', '0.5', '--seeds', '0',
            '--iters', '2', '--train', '4', '--val', '2', '--out-dir', str(out)]
    again = run_benchmark(out.parent, 'sample_efficiency_seg.py', *args, '--lr', 'vapt=0.0375')
    assert again.returncode == 0, again.stderr[-3000:]
    assert 'Iter(train)' not in again.stdout + again.stderr  # reused, not trained again
    other = run_benchmark(out.parent, 'sample_efficiency_seg.py', *args, '--lr', 'vapt=0.1')
    assert other.returncode != 0
    assert "'optim_wrapper.optimizer.lr': 0.0375" in other.stderr
    assert 'use another --out-dir for other settings' in other.stderr


def test_prompt_adaptivity_retests_a_vapt_run_and_refuses_others(study, tmp_path):
    out, _ = study
    run = out / 'runs' / 'vapt_f0.5_s0_it2'
    result = run_benchmark(tmp_path, 'prompt_adaptivity.py', str(run), '--out',
                           str(tmp_path / 'rows.json'))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (row, ) = json.loads((tmp_path / 'rows.json').read_text())
    # Re-testing the checkpoint reproduces the study's own validation mIoU.
    assert row['adaptive'] == pytest.approx(json.loads((run / 'result.json').read_text())['metric'],
                                            abs=0.01)
    assert len(row['shares']) == 1 and 0.0 <= row['shares'][0] <= 1.0  # 2 blocks: 1 generated
    assert f"| vapt_f0.5_s0_it2 | {row['adaptive']:.2f} | {row['mean_prompts']:.2f} |" in \
        result.stdout
    refused = run_benchmark(tmp_path, 'prompt_adaptivity.py', str(out / 'runs' /
                                                                  'vpt-deep_f0.5_s0_it2'))
    assert refused.returncode != 0 and 'is not a VAPT run' in refused.stderr


def test_generated_prompt_stats_mean_share_and_replacement():
    torch.manual_seed(0)
    prompts = LayerPrompts(PromptConfig(method='vapt', num_tokens=3, ref_grid=(2, 2)), dim=8,
                           depth=3, patch_size=(4, 4)).eval()
    for generator in prompts.generators:
        torch.nn.init.normal_(generator.token_map.weight)
    stats = GeneratedPromptStats()
    prompts.register_forward_hook(stats)
    batches = [torch.randn(2, 4, 8), torch.randn(3, 4, 8)]
    outputs = torch.cat([prompts(2, b, (2, 2)) for b in batches]).double()
    assert torch.equal(prompts(0, batches[0], (2, 2)), prompts.static[0].expand(2, -1, -1))
    assert sorted(stats.count) == [2] and stats.count[2] == 5  # static layer 0 not collected
    torch.testing.assert_close(stats.mean(2), outputs.mean(0))
    normed = torch.nn.functional.layer_norm(outputs, (8, ))
    share = (normed - normed.mean(0)).pow(2).sum() / normed.pow(2).sum()
    assert stats.between_image_share(2) == pytest.approx(share.item(), rel=1e-6)
    assert 0.05 < share.item() < 1.0
    stats.replace_by_mean = True
    replaced = prompts(2, torch.randn(4, 4, 8), (2, 2))
    torch.testing.assert_close(replaced, outputs.mean(0).float().expand(4, -1, -1))


def test_study_refuses_a_malformed_lr(tmp_path):
    result = run_benchmark(tmp_path, 'sample_efficiency_seg.py', '--lr', 'vapt=fast')
    assert result.returncode == 2 and "--lr 'vapt=fast': write METHOD=LR" in result.stderr
    result = run_benchmark(tmp_path, 'sample_efficiency_seg.py', '--lr', 'vtp=0.1')
    assert result.returncode == 2 and "unknown method 'vtp'" in result.stderr


def test_lr_selection_uses_its_own_draw_and_reports_each_methods_best(tmp_path):
    out = tmp_path / 'select'
    result = run_benchmark(
        tmp_path, 'select_lr_seg.py', '--recipe', 'tiny', '--methods', 'vapt', '--lrs', '0.001',
        '0.1', '--fractions', '0.5', '--seeds', '0', '--iters', '2', '--train', '4', '--val', '2',
        '--out-dir', str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = {}
    for lr in ('0.001', '0.1'):
        assert sorted(p.name for p in (out / f'lr{lr}').glob('data_*')) == ['data_4_2_seed1']
        (row, ) = json.loads((out / f'lr{lr}' / 'rows.json').read_text())
        metrics[lr] = row['metric']
    best = max(metrics, key=metrics.get)
    expected = f"| vapt | {metrics['0.001']:.2f} | {metrics['0.1']:.2f} | {float(best):g} |"
    assert expected in (out / 'selection.md').read_text()
    assert expected in result.stdout

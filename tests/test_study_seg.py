"""studies/sample_efficiency_seg.py (one tiny configuration end to end, table and plot),
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

sys.path.insert(0, str(ROOT / 'studies'))
from prompt_adaptivity import GeneratedPromptStats  # noqa: E402
import sample_efficiency_seg  # noqa: E402


def run_benchmark(tmp_path, script, *args):
    return subprocess.run(
        [PYTHON, f'studies/{script}', *args], cwd=ROOT, capture_output=True, text=True,
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
    # The learning curve: validation after each of the 2 iterations (10 points, at most one
    # per iteration), its gates and plot.
    assert [step for step, _ in rows[0]['curve']] == [1, 2]
    assert rows[0]['curve'][-1][1] == pytest.approx(rows[0]['metric'], abs=0.01)
    assert '| vapt | 0.5 | 1 | 2 |' in (out / 'gates.md').read_text()
    assert (out / 'curves.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
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


def test_an_interrupted_run_resumes_where_it_stopped(study, tmp_path, monkeypatch):
    """A stop signal at iteration 3 of 20 saves a checkpoint and ends the run (exit 75); the
    next call goes on from it, and its row and learning curve equal an uninterrupted run's."""
    import signal

    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    from vapt_mm.cluster import stop
    out, _ = study
    monkeypatch.setenv('VAPT_PRETRAIN_CACHE', str(out.parent / 'cache'))  # the study's ViT
    backbone = sample_efficiency_seg.tiny_backbone('tiny', 'default')
    (data, ) = out.glob('data_*')

    class SignalAt(Hook):
        def __init__(self, iteration: int) -> None:
            self.iteration = iteration

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
            if runner.iter + 1 == self.iteration:
                signal.raise_signal(signal.SIGTERM)

    class StoppedRunner(Runner):
        @classmethod
        def from_cfg(cls, cfg):
            runner = Runner.from_cfg(cfg)
            runner.register_hook(SignalAt(3))
            return runner

    def run(work_dir):
        return sample_efficiency_seg.run_one('vapt', 0.5, 0, 20, data, backbone, work_dir)

    handlers = {s: signal.getsignal(s) for s in stop.STOP_SIGNALS}
    received = stop._received['signum']
    try:
        monkeypatch.setattr(sample_efficiency_seg, 'Runner', StoppedRunner)
        with pytest.raises(SystemExit) as stopped:
            run(tmp_path / 'stopped')
        assert stopped.value.code == 75
        assert sorted(p.name for p in (tmp_path / 'stopped').glob('*.pth')) == ['iter_3.pth']
        assert not (tmp_path / 'stopped' / 'result.json').exists()
        spent = json.loads((tmp_path / 'stopped' / 'started.json').read_text())['seconds']
        stop._received['signum'] = received  # the signal is handled: the next run goes on
        monkeypatch.setattr(sample_efficiency_seg, 'Runner', Runner)
        resumed = run(tmp_path / 'stopped')
        whole = run(tmp_path / 'whole')
    finally:  # the process's stop state as before, for the tests that follow
        stop._received['signum'] = received
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert [step for step, _ in resumed['curve']] == list(range(2, 21, 2))
    assert resumed['curve'] == whole['curve'] and resumed['metric'] == whole['metric']
    assert resumed['seconds'] > spent > 0


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


def test_study_refuses_a_malformed_lr(monkeypatch, capsys):
    for lr, message in (('vapt=fast', "--lr 'vapt=fast': write METHOD=LR"),
                        ('vtp=0.1', "unknown method 'vtp'")):
        monkeypatch.setattr(sys, 'argv', ['sample_efficiency_seg.py', '--lr', lr])
        with pytest.raises(SystemExit) as stopped:
            sample_efficiency_seg.main()
        assert stopped.value.code == 2 and message in capsys.readouterr().err


def test_lr_selection_uses_its_own_draw_and_reports_each_methods_best(tmp_path):
    out = tmp_path / 'select'
    result = run_benchmark(
        tmp_path, 'select_lr_seg.py', '--recipe', 'tiny', '--methods', 'vapt', '--lrs', '0.001',
        '0.1', '--fractions', '0.5', '--seeds', '0', '--iters', '2', '--train', '4', '--val', '2',
        '--out-dir', str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics, curves = {}, {}
    for lr in ('0.001', '0.1'):
        assert sorted(p.name for p in (out / f'lr{lr}').glob('data_*')) == ['data_4_2_seed1']
        (row, ) = json.loads((out / f'lr{lr}' / 'rows.json').read_text())
        metrics[lr] = row['metric']
        curves[lr] = ' | '.join(f'{value:.2f}' for _, value in row['curve'])
    best = max(metrics, key=metrics.get)
    expected = f"| vapt | {metrics['0.001']:.2f} | {metrics['0.1']:.2f} | {float(best):g} |"
    assert expected in (out / 'selection.md').read_text()
    assert expected in result.stdout
    assert '| method | lr | 1 | 2 |' in result.stdout  # and each run's learning curve
    assert all(f'| vapt | {lr} | {curves[lr]} |' in result.stdout for lr in curves)


def test_real_backbone_configs_take_the_study_crop_and_the_papers_sgd():
    from sample_efficiency_seg import set_crop, set_sgd
    from vapt_mm.seg.runtime import load_config
    cfg = load_config(str(ROOT / 'configs' / 'dinov2' / 'vapt_dinov2-s14_linear_digits.py'),
                      'none', {'optim_wrapper.optimizer.lr': 0.03})
    set_crop(cfg, 112)
    set_sgd(cfg, 100)
    sizes = [step.get('scale', step.get('crop_size'))
             for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
             for step in cfg[loader].dataset.pipeline
             if step.type in ('RandomResize', 'RandomCrop', 'Resize')]
    assert sizes == [(112, 112)] * 4
    assert cfg.model.data_preprocessor.size == cfg.model.backbone.img_size == (112, 112)
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=0.03, momentum=0.9,
                                               weight_decay=1e-4)
    warm_up, cosine = cfg.param_scheduler
    assert (warm_up.type, warm_up.end, cosine.type, cosine.begin, cosine.end, cosine.T_max) == \
        ('LinearLR', 10, 'CosineAnnealingLR', 10, 100, 90)


def test_real_backbone_variants_offset_random_token_maps_and_frozen_generators():
    from mmengine.optim import build_optim_wrapper
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    from vapt_mm.seg.runtime import load_config
    register_all_modules()
    configs = ROOT / 'configs' / 'dinov2'
    offset = load_config(str(configs / 'vapt-offset_dinov2-s14_linear_digits.py'), 'none')
    assert offset.model.backbone.prompt_cfg.generated_offset is True
    noised = load_config(str(configs / 'vapt-random-token-maps_dinov2-s14_linear_digits.py'),
                         'none')
    assert noised.model.backbone.prompt_cfg.token_map_init_std == 0.02
    generator = MODELS.build(noised.model).backbone.encoder.prompts.generators[0]
    assert 0.01 < float(generator.token_map.weight.std()) < 0.03
    cfg = load_config(str(configs / 'vapt-frozen-generators_dinov2-s14_linear_digits.py'),
                      'none')
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lrs = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in wrapper.optimizer.param_groups:
        for param in group['params']:
            lrs[names[id(param)]] = group['lr']
    frozen = [n for n in lrs if '.generators.' in n or '.projectors.' in n]
    assert frozen and all(lrs[n] == 0.0 for n in frozen)
    assert lrs['backbone.encoder.prompts.static'] == cfg.optim_wrapper.optimizer.lr
    assert all(lrs[n] == cfg.optim_wrapper.optimizer.lr for n in lrs if 'decode_head' in n)


def test_paired_differences_match_an_independent_t_interval(tmp_path):
    from scipy import stats
    from study_report import paired_differences, write_paired_report
    metrics = {('vapt', 0): 30.0, ('vapt', 1): 34.0, ('vapt', 2): 29.0,
               ('vpt-deep', 0): 31.0, ('vpt-deep', 1): 30.0, ('vpt-deep', 2): 30.5,
               ('head-only', 0): 20.0}
    rows = [dict(method=m, fraction=0.05, seed=s, metric=v, trainable=1, seconds=1.0)
            for (m, s), v in metrics.items()]
    vpt, head = paired_differences(rows)
    assert vpt['comparison'] == 'vapt - vpt-deep' and vpt['seeds'] == [0, 1, 2]
    diffs = [-1.0, 4.0, -1.5]
    assert vpt['differences'] == diffs and vpt['mean'] == pytest.approx(0.5)
    expected = stats.t.interval(0.95, 2, loc=0.5, scale=stats.sem(diffs))
    assert vpt['ci95'] == pytest.approx(expected)
    assert head['differences'] == [10.0] and head['seeds'] == [0]  # only seed 0 is paired
    write_paired_report(rows, str(tmp_path), 'val mIoU')
    table = (tmp_path / 'paired.md').read_text()
    assert f'| vapt - vpt-deep | 5% | -1.00, +4.00, -1.50 | +0.50 | [{expected[0]:+.2f}, ' \
        f'{expected[1]:+.2f}] |' in table
    assert '| vapt - head-only | 5% | +10.00 | +10.00 | n/a (1 seed) |' in table
    assert (tmp_path / 'paired.png').read_bytes()[:4] == b'\x89PNG'


def test_real_backbone_runs_are_reused_by_weights_content_and_optimizer(tmp_path):
    from sample_efficiency_seg import Backbone, file_digest, run_one
    from study_report import save_row
    weights = tmp_path / 'vit_mmseg.pth'
    weights.write_bytes(b'weights')
    copy = tmp_path / 'copy.pth'
    copy.write_bytes(b'weights')
    assert file_digest(weights) == file_digest(copy) != file_digest(ROOT / 'setup.cfg')
    backbone = Backbone('dinov2', f'dinov2-{file_digest(weights)}', lambda m: ROOT,
                        lambda m, f: weights, lambda m: {}, lambda *a: None, 112)
    work_dir = tmp_path / 'runs' / 'vapt'
    work_dir.mkdir(parents=True)
    row = dict(method='vapt', fraction=1.0, seed=0, metric=12.5, trainable=3, seconds=1.0)
    save_row(work_dir / 'result.json', row, dict(
        weights=backbone.weights_name, data='data', options={}, optimizer='adamw', size=112))
    assert run_one('vapt', 1.0, 0, 10, tmp_path / 'data', backbone, work_dir) == row
    with pytest.raises(ValueError, match="'optimizer': 'adamw'.*use another --out-dir"):
        run_one('vapt', 1.0, 0, 10, tmp_path / 'data', backbone, work_dir, optimizer='sgd')


def test_token_map_similarity_reads_each_generated_layer_of_the_last_checkpoint(tmp_path):
    from study_report import save_row
    from token_map_similarity import mean_row_similarity, similarity_rows
    assert mean_row_similarity(torch.ones(3, 5)) == pytest.approx(1.0)
    assert mean_row_similarity(torch.eye(4)) == pytest.approx(0.0)
    assert mean_row_similarity(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(-1.0)
    run = tmp_path / 'runs' / 'vapt_s0'
    run.mkdir(parents=True)
    prefix = 'backbone.encoder.prompts.generators'
    # Layers in numeric order (10 after 2); only the newest checkpoint counts.
    maps = {0: torch.ones(2, 3), 1: torch.eye(2, 3), 10: -torch.eye(2, 3)}
    torch.save({'state_dict': {f'{prefix}.{i}.token_map.weight': w for i, w in maps.items()}},
               run / 'iter_20.pth')
    torch.save({'state_dict': {f'{prefix}.0.token_map.weight': torch.eye(2, 3)}},
               run / 'iter_3.pth')
    save_row(run / 'result.json', dict(method='vapt', fraction=0.05, seed=0, metric=1.0,
                                       trainable=1, seconds=1.0), {})
    rows = similarity_rows(tmp_path, ['vapt'], 0.05)
    assert [round(s, 6) for s in rows[0]['similarities']] == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match='no finished runs'):
        similarity_rows(tmp_path, ['vapt'], 1.0)

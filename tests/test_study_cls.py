"""studies/sample_efficiency_cls.py without training: the schedule, the data folder guard,
and every method's model and optimiser as the study builds them (the run itself:
tests/test_real_backbone_cls.py)."""
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'studies'))
import sample_efficiency_cls as study  # noqa: E402

pytestmark = pytest.mark.usefixtures('mmpretrain_scope')


def built(method, tmp_path, optimizer='adamw', lr=None):
    """The model and optimiser wrapper of one study run of ``method`` (weights not loaded)."""
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.registry import MODELS
    from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = study.build_config(method, 5, 0, 40, tmp_path / 'data', tmp_path / 'w' / 'vit.st',
                             tmp_path / method, lr, optimizer, 28)
    model = MODELS.build(cfg.model)
    return cfg, model, build_optim_wrapper(model, cfg.optim_wrapper)


def lrs_by_name(model, wrapper):
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: group['lr'] for group in wrapper.optimizer.param_groups
            for p in group['params']}


def test_schedule_is_epochs_of_ten_k_images_validating_at_ten_points():
    assert study.schedule(1, 100) == dict(batch=10, iters=100, interval=10)
    assert study.schedule(2, 100) == dict(batch=16, iters=200, interval=20)
    assert study.schedule(5, 40) == dict(batch=16, iters=160, interval=16)
    assert study.schedule(10, 40) == dict(batch=16, iters=280, interval=28)


def test_a_data_folder_of_other_settings_is_refused(tmp_path):
    settings = {'per_class': {'train': 5, **study.EVAL_PER_CLASS}, 'size': 84, 'train_seed': 0}
    (tmp_path / 'meta.json').write_text(json.dumps({'settings': settings}))
    study.make_data(tmp_path, 5, 0, 84)  # the same settings: kept as it is
    for shots, seed, size in ((10, 0, 84), (5, 1, 84), (5, 0, 112)):
        with pytest.raises(SystemExit, match='other settings.*use another --out-dir'):
            study.make_data(tmp_path, shots, seed, size)


def test_the_run_config_takes_schedule_size_seed_and_the_papers_sgd(tmp_path):
    cfg, model, wrapper = built('vapt', tmp_path, optimizer='sgd', lr=0.05)
    assert cfg.train_cfg.max_iters == 160 and cfg.train_cfg.val_interval == 16
    assert cfg.train_dataloader.batch_size == 16 and cfg.randomness.seed == 0
    assert [s.end for s in cfg.param_scheduler] == [16, 160]
    assert cfg.param_scheduler[1].T_max == 144
    assert cfg.model.backbone.img_size == 28
    assert isinstance(wrapper.optimizer, torch.optim.SGD)
    group = wrapper.optimizer.param_groups[0]
    assert group['momentum'] == 0.9 and group['lr'] == 0.05
    assert cfg.val_dataloader.dataset.data_prefix == 'val'


def test_each_variant_changes_what_it_names_and_nothing_else(tmp_path):
    _, vapt, vapt_wrapper = built('vapt', tmp_path)
    plain = lrs_by_name(vapt, vapt_wrapper)
    prompts = vapt.backbone.encoder.prompts
    assert prompts.prompt_dropout.p == 0.1

    _, gated, gated_wrapper = built('vapt-gate', tmp_path)
    gate = gated.backbone.encoder.prompts.gate
    assert gate.requires_grad and torch.count_nonzero(gate) == 0
    assert set(lrs_by_name(gated, gated_wrapper)) - set(plain) == {'backbone.encoder.prompts.gate'}

    _, vpt_gated, _ = built('vpt-deep-gate', tmp_path)
    assert torch.count_nonzero(vpt_gated.backbone.encoder.prompts.gate) == 0

    _, offset, _ = built('vapt-offset-vpt', tmp_path)
    offset_std = float(offset.backbone.encoder.prompts.offset.detach().std())
    assert 0.0 < offset_std < 1.0  # initialised like VPT-deep's prompts, not 0

    _, quiet, _ = built('vapt-no-dropout', tmp_path)
    dropouts = [m.p for n, m in quiet.backbone.encoder.prompts.named_modules()
                if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(p == 0.0 for p in dropouts)

    _, frozen, frozen_wrapper = built('vapt-frozen-generators', tmp_path)
    lrs = lrs_by_name(frozen, frozen_wrapper)
    generated = [n for n in lrs if '.generators.' in n or '.projectors.' in n]
    assert generated and all(lrs[n] == 0.0 for n in generated)
    assert all(lrs[n] == plain[n] for n in lrs if n not in generated)


def test_lr_selection_runs_stay_out_of_the_studys_table(tmp_path):
    select = study.grid_run_dir(tmp_path, 'vapt', 5, 100, 1e-3, 40, 'sgd', select=True)
    assert select == tmp_path / 'lr_selection' / 'runs' / 'vapt_k5_d100_ep40_lr0.001_sgd'
    assert (study.grid_run_dir(tmp_path, 'vapt', 5, 0, 3e-2, 40, 'adamw', select=False)
            == tmp_path / 'runs' / 'vapt_k5_s0_ep40_lr0.03_adamw')  # the lr range's own folder

"""PromptNormHook: the prompt and patch-token norms it records, the file it writes in a real
training run, and the models it refuses."""
import json
import sys
from types import SimpleNamespace

import pytest
import torch
from mmengine.runner import Runner

from seg_helpers import ROOT
from test_seg_tools import make_space
from vapt_mm.core import PromptConfig
from vapt_mm.core.prompts import LayerPrompts
from vapt_mm.seg.prompt_norms import PROMPT_NORMS_FILE, PromptNormHook
from vapt_mm.seg.runtime import load_config, prepare_runtime


def test_records_the_mean_token_norms_of_training_forwards_only():
    torch.manual_seed(0)
    prompts = LayerPrompts(PromptConfig(method='vapt', num_tokens=3, ref_grid=(2, 2)), dim=8,
                           depth=3, patch_size=(4, 4))
    for generator in prompts.generators:
        torch.nn.init.normal_(generator.token_map.weight)
    hook = PromptNormHook(interval=1)
    prompts.register_forward_hook(hook._record)
    patches = torch.randn(2, 4, 8)
    generated = prompts(2, patches, (2, 2))
    assert hook._prompts[2] == pytest.approx(generated.norm(dim=-1).mean().item(), rel=1e-6)
    assert hook._patches[2] == pytest.approx(
        torch.stack([p.norm(dim=-1) for p in patches]).mean().item(), rel=1e-6)
    prompts.eval()
    prompts(1, 10 * patches, (2, 2))  # a validation forward is not a training record
    assert sorted(hook._prompts) == [2]


def test_refuses_a_model_without_prompts_and_a_bad_interval():
    with pytest.raises(ValueError, match='interval=0'):
        PromptNormHook(interval=0)
    with pytest.raises(ValueError, match='needs a model with prompts'):
        PromptNormHook().before_train(SimpleNamespace(model=torch.nn.Linear(2, 2)))


def test_writes_one_line_per_interval_in_a_training_run(tmp_path):
    space = make_space(tmp_path)
    cfg = load_config(str(space / 'cfg.py'), 'none', {'train_cfg.max_iters': 4},
                      str(tmp_path / 'work'))
    cfg.custom_hooks = [*cfg.custom_hooks, dict(type='PromptNormHook', interval=2)]
    prepare_runtime(cfg, 'none')
    runner = Runner.from_cfg(cfg)
    runner.train()
    lines = [json.loads(line) for line in
             (tmp_path / 'work' / PROMPT_NORMS_FILE).read_text().splitlines()]
    assert [line['iter'] for line in lines] == [2, 4]
    depth = cfg.model.backbone.vit.num_layers
    for line in lines:
        assert line['layers'] == list(range(depth))
        assert all(n > 0 for n in line['prompt_norm'] + line['patch_norm'])
    mean = sum(lines[-1]['prompt_norm']) / depth
    assert runner.message_hub.get_scalar('train/prompt_norm').current() == \
        pytest.approx(mean, rel=1e-6)


def test_norm_table_takes_medians_over_seeds_of_the_later_layers(tmp_path):
    sys.path.insert(0, str(ROOT / 'studies'))
    from prompt_norm_table import norm_rows, table
    for seed, scale in enumerate((1.0, 2.0, 4.0)):
        run = tmp_path / 'runs' / f'vapt_s{seed}'
        run.mkdir(parents=True)
        (run / 'result.json').write_text(json.dumps(dict(method='vapt', fraction=0.05)))
        records = [dict(iter=it, layers=[0, 1, 2], prompt_norm=[9.0, scale * it, 3 * scale * it],
                        patch_norm=[1.0, 2.0, 4.0]) for it in (10, 20)]
        (run / PROMPT_NORMS_FILE).write_text(''.join(json.dumps(r) + '\n' for r in records))
    (row, ) = norm_rows(tmp_path)
    # Layer 0 (static prompts) is left out: the mean of layers 1, 2 is 2 * scale * iter.
    assert (row['runs'], row['prompt_first'], row['prompt_last']) == (3, 40.0, 80.0)
    assert (row['patch_last'], row['largest']) == (3.0, 120.0)
    assert '| vapt | 5% | 3 | 40.00 (10) | 80.00 (20) | 3.00 | 120.0 |' in table([row])

"""The tiny-CLIP pretraining tool: an open_clip checkpoint that open_clip loads, cached."""
import os
import subprocess
import sys
from pathlib import Path

import open_clip
import pytest
import torch
from safetensors.torch import load_file

from vapt_mm.demo import tiny_clip as pretrain_clip

ROOT = Path(__file__).resolve().parents[1]


def shared_cache(tmp_path_factory) -> Path:
    """One pretraining cache for the whole test session (the study test uses it too)."""
    return tmp_path_factory.getbasetemp() / 'vapt_pretrain_cache'


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = shared_cache(tmp_path_factory)
    recipe = pretrain_clip.make_recipe('tiny')
    return root, recipe, pretrain_clip.pretrained_tiny_clip(recipe, root)


def test_checkpoint_loads_in_open_clip_with_the_saved_tensors(tiny):
    _, recipe, path = tiny
    assert path.is_file() and path.with_suffix('.json').is_file()
    open_clip.add_model_config(path.with_suffix('.json'))
    model, _, preprocess = open_clip.create_model_and_transforms(
        recipe['model'], pretrained=str(path), weights_only=True)
    saved = load_file(path)
    state = model.state_dict()
    assert saved.keys() == state.keys()
    assert all(torch.equal(saved[k], state[k]) for k in saved)
    assert preprocess.transforms[0].size == recipe['model_config']['vision_cfg']['image_size']
    tokens = open_clip.get_tokenizer(recipe['model'])(['a red circle in the top left'])
    with torch.no_grad():
        image_features, text_features, _ = model(torch.zeros(1, 3, 48, 48), tokens)
    assert image_features.shape == text_features.shape == (1, recipe['model_config']['embed_dim'])


def test_second_call_and_the_tool_hit_the_cache(tiny, monkeypatch):
    root, recipe, path = tiny

    def no_training(*args):
        raise AssertionError('the cached checkpoint was trained again')
    monkeypatch.setattr(pretrain_clip, 'train_clip', no_training)
    assert pretrain_clip.pretrained_tiny_clip(recipe, root) == path
    result = subprocess.run([sys.executable, str(ROOT / 'tools' / 'pretrain_tiny_clip.py'),
                             '--recipe', 'tiny'], capture_output=True, text=True, timeout=120,
                            env={**os.environ, 'PYTHONPATH': str(ROOT),
                                 'VAPT_PRETRAIN_CACHE': str(root)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == str(path)
    assert 'held-out' not in result.stderr  # no training step was logged


def test_recipe_changes_change_the_entry():
    base = pretrain_clip.make_recipe('tiny')
    assert pretrain_clip.make_recipe('tiny', seed=1) != base
    with pytest.raises(ValueError, match='unknown recipe option'):
        pretrain_clip.make_recipe('tiny', step=3)

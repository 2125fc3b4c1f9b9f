"""studies/one_step_change.py's measurement on a tiny random ViT: one SGD step changes
VPT-deep's and the gated VAPT's output in proportion to the lr, VAPT's (zero-initialised
generators, each block's LayerNorm rescaling the new prompts) by as much at any small lr."""
import sys
from pathlib import Path

import pytest
import timm
import torch

from vapt_mm.core import PromptConfig, PromptedViT, freeze_except_prompts
from vapt_mm.models.timm_vit import TimmViT

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'studies'))
from one_step_change import METHODS, fitted_head, one_step_change  # noqa: E402


def changes(method):
    """The relative change of the class tokens after one SGD step at lr 1e-4 and 1e-5."""
    torch.manual_seed(0)
    vit = TimmViT(timm.create_model('vit_tiny_patch16_224', pretrained=False, img_size=32,
                                    patch_size=8, embed_dim=32, depth=3, num_heads=2,
                                    num_classes=0, dynamic_img_size=True).double().eval())
    # float64: a change of 1e-7 must not be float32's rounding.
    x, labels = torch.randn(20, 3, 32, 32, dtype=torch.float64), torch.arange(20) % 4
    with torch.no_grad():
        tokens, _ = vit.embed(x)
        for block in vit.blocks:
            tokens = block(tokens)
        features = vit.norm(tokens)[:, 0]
    head = fitted_head(features.float(), labels).double()
    net = PromptedViT(vit, PromptConfig(num_tokens=4, **METHODS[method]),
                      image_size=(32, 32)).double()
    freeze_except_prompts(net)
    return [one_step_change(net, head, x, labels, lr, 'sgd') for lr in (1e-4, 1e-5)]


@pytest.mark.parametrize('method', ['vpt-deep', 'vapt-gate'])
def test_the_change_shrinks_with_the_lr(method):
    large, small = changes(method)
    assert 0.0 < small and large / small == pytest.approx(10.0, rel=0.2)


def test_vapts_change_does_not_shrink_with_the_lr():
    large, small = changes('vapt')
    assert small > 1e-2 and large / small < 2.0

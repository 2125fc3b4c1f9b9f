"""Demo set generation, CSV/JSON readers with their errors, text cache, in-process evaluation."""
import filecmp
import importlib.util
import json
import os

import pytest
import torch
from PIL import Image, ImageOps

from clip_tiny import VIT_MODEL, tiny_clip
from vapt_mm.clip import evaluate_retrieval, load_captions
from vapt_mm.clip.factory import create_clip
from vapt_mm.clip.retrieval import cached_text_embeddings
from vapt_mm.clip.visualize import HIT, MISS, first_captions, save_topk_grid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location(
    'make_demo_retrieval', os.path.join(ROOT, 'tools', 'make_demo_retrieval.py'))
make_demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_demo)


def demo(path, seed=0, num_images=10):
    splits = make_demo.make(str(path), num_images, 32, seed, (0.6, 0.2))
    make_demo.write_caption_files(str(path), splits, 'vapt_mm-demo-shapes')
    return str(path)


def test_demo_set_is_deterministic_and_consistent(tmp_path):
    a, b, c = demo(tmp_path / 'a'), demo(tmp_path / 'b'), demo(tmp_path / 'c', seed=1)
    names = ['train.csv', 'val.csv', 'test.csv', 'captions.json'] + [
        f'images/{n}' for n in sorted(os.listdir(os.path.join(a, 'images')))]
    match, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    assert len(match) == len(names) == 14 and not mismatch and not errors
    assert not filecmp.cmp(os.path.join(a, 'captions.json'), os.path.join(c, 'captions.json'),
                           shallow=False)
    entries = json.load(open(os.path.join(a, 'captions.json')))['images']
    assert [e['split'] for e in entries] == ['train'] * 6 + ['val'] * 2 + ['test'] * 2
    sentences = entries[0]['sentences']
    assert len(sentences) == 5 and len({s['raw'] for s in sentences}) == 5
    words = sentences[0]['raw'].split()
    assert any(w in make_demo.COLOURS for w in words) and any(w in make_demo.SHAPES for w in words)


def test_csv_and_json_give_the_same_caption_set(tmp_path):
    root = demo(tmp_path)
    from_csv = load_captions(os.path.join(root, 'test.csv'))
    from_json = load_captions(os.path.join(root, 'captions.json'), split='test')
    assert from_csv == from_json
    assert len(from_csv.images) == 2 and len(from_csv.captions) == 10
    assert from_csv.text_to_image == [0] * 5 + [1] * 5
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in from_csv.images)
    assert len(load_captions(os.path.join(root, 'captions.json')).images) == 10


def test_csv_errors_name_the_problem(tmp_path):
    root = demo(tmp_path)
    comma = os.path.join(root, 'comma.csv')
    with open(comma, 'w') as f:
        f.write('filepath,title\nimages/00000.png,a red circle\n')
    message = r"no column\(s\) \['filepath', 'title'\].*--csv-separator"
    with pytest.raises(ValueError, match=message):
        load_captions(comma)
    assert load_captions(comma, separator=',').captions == ['a red circle']
    missing = os.path.join(root, 'missing.csv')
    with open(missing, 'w') as f:
        f.write('filepath\ttitle\nimages/nope.png\ta cat\nimages/00000.png\ta dog\n')
    with pytest.raises(FileNotFoundError, match=r'1 image\(s\).*nope\.png'):
        load_captions(missing)


@pytest.mark.parametrize('content', [[], {'annotations': []}, {'images': [{'file': 'a.png'}]},
                                     {'images': [{'filename': 'a.png', 'sentences': ['raw']}]}])
def test_caption_json_of_the_wrong_shape(tmp_path, content):
    path = tmp_path / 'captions.json'
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match='Karpathy style'):
        load_captions(str(path))


def test_text_cache_is_reused_and_refreshed(tmp_path):
    path, calls = str(tmp_path / 'texts.safetensors'), []

    def compute(value):
        calls.append(value)
        return torch.full((2, 3), value)
    assert torch.equal(cached_text_embeddings(path, 'k1', lambda: compute(1.0)), torch.ones(2, 3))
    assert torch.equal(cached_text_embeddings(path, 'k1', lambda: compute(2.0)), torch.ones(2, 3))
    refreshed = cached_text_embeddings(path, 'k2', lambda: compute(3.0))
    assert torch.equal(refreshed, torch.full((2, 3), 3.0))
    assert calls == [1.0, 3.0]


def test_evaluation_with_and_without_text_cache(tmp_path):
    data = load_captions(os.path.join(demo(tmp_path), 'captions.json'), split='train')
    _, _, preprocess, tokenizer = create_clip(VIT_MODEL)
    model, device = tiny_clip(), torch.device('cpu')
    plain = evaluate_retrieval(model, data, preprocess, tokenizer, device, batch_size=4)
    cache = str(tmp_path / 'texts.safetensors')
    cached = [evaluate_retrieval(model, data, preprocess, tokenizer, device, batch_size=4,
                                 text_cache=cache, model_id='tiny') for _ in range(2)]
    assert plain == cached[0] == cached[1] and os.path.isfile(cache)
    assert set(plain) == {'image_retrieval_recall@1', 'image_retrieval_recall@5',
                          'image_retrieval_recall@10', 'text_retrieval_recall@1',
                          'text_retrieval_recall@5', 'text_retrieval_recall@10', 'mean_recall'}


def test_topk_grid_shows_the_best_images_with_hits_framed(tmp_path):
    data = load_captions(os.path.join(demo(tmp_path), 'captions.json'), split='train')
    queries = first_captions(data, 3)
    assert [data.text_to_image[q] for q in queries] == [0, 1, 2]
    assert all(data.text_to_image[q - 1] != data.text_to_image[q] for q in queries if q)
    # Caption q's own image is its top match for q = queries[0]; others rank elsewhere.
    image_emb = torch.eye(len(data.images))
    text_emb = image_emb[torch.tensor(data.text_to_image)].clone()
    text_emb[queries[1]] = image_emb[5]
    path = tmp_path / 'grid.png'
    save_topk_grid(str(path), data, image_emb, text_emb, queries, k=5, tile=32)
    grid = Image.open(path).convert('RGB')
    assert grid.size == (3 * 32 + 5 * 32, 3 * 32)
    frame = [[grid.getpixel((3 * 32 + col * 32 + 1, row * 32 + 1)) for col in range(5)]
             for row in range(3)]
    assert frame[0][0] == HIT and frame[1][0] == MISS and frame[2][0] == HIT
    with Image.open(data.images[5]) as best:
        expected = ImageOps.fit(best.convert('RGB'), (24, 24))
    assert grid.crop((96 + 4, 32 + 4, 96 + 28, 32 + 28)).tobytes() == expected.tobytes()

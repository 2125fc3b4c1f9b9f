"""Write an open_clip CSV or a caption JSON as webdataset tar shards for train_retrieval.py.

    python tools/make_shards.py data/train.csv data/shards --num-shards 4
    python tools/make_shards.py captions.json data/val_shards --split val --group-captions

By default every (image, caption) pair becomes one sample (``KEY.png`` + ``KEY.txt``) in the
order of the file, as the CSV path reads it; ``--group-captions`` writes one sample per
image with all its captions in ``KEY.json`` (``{"captions": [...]}``), the form validation
needs (all captions of an image are its positives). Image files are stored as they are
(jpg, png, webp); other formats are converted to png. Prints the pattern for --train-data.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
from typing import Iterator, List, Optional, Sequence, Tuple

import webdataset as wds
from PIL import Image

from vapt_mm.clip import load_captions
from vapt_mm.clip.cli import add_caption_file_arguments
from vapt_mm.clip.shards import IMAGE_EXTENSIONS


def image_member(path: str) -> Tuple[str, bytes]:
    """(extension, bytes) of an image file, converted to png if webdataset would not
    decode its format as an image."""
    extension = os.path.splitext(path)[1].lower().lstrip('.')
    if extension in IMAGE_EXTENSIONS:
        with open(path, 'rb') as f:
            return extension, f.read()
    buffer = io.BytesIO()
    with Image.open(path) as image:
        image.convert('RGB').save(buffer, format='PNG')
    return 'png', buffer.getvalue()


def samples(images: List[str], captions: List[str], text_to_image: List[int],
            group: bool) -> Iterator[dict]:
    """webdataset samples: one per caption (txt) or, with ``group``, one per image (json)."""
    if group:
        grouped: List[List[str]] = [[] for _ in images]
        for caption, image in zip(captions, text_to_image):
            grouped[image].append(caption)
        for index, (path, texts) in enumerate(zip(images, grouped)):
            extension, data = image_member(path)
            yield {'__key__': f'{index:08d}', extension: data,
                   'json': json.dumps({'captions': texts}).encode('utf-8')}
        return
    for index, (caption, image) in enumerate(zip(captions, text_to_image)):
        extension, data = image_member(images[image])
        yield {'__key__': f'{index:08d}', extension: data, 'txt': caption.encode('utf-8')}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('data', help='.csv/.tsv (open_clip) or caption .json')
    parser.add_argument('out_dir')
    parser.add_argument('--split', default=None, help='split of a caption JSON (default: all)')
    add_caption_file_arguments(parser)
    parser.add_argument('--num-shards', type=int, default=None,
                        help='split the samples evenly into this many shards')
    parser.add_argument('--samples-per-shard', type=int, default=10000)
    parser.add_argument('--group-captions', action='store_true',
                        help='one sample per image with all its captions (json)')
    parser.add_argument('--prefix', default='shard', help='shard file names: PREFIX-0000.tar')
    args = parser.parse_args(argv)
    data = load_captions(args.data, args.split, args.csv_separator, args.csv_img_key,
                         args.csv_caption_key, args.image_root)
    count = len(data.images) if args.group_captions else len(data.captions)
    per_shard = (math.ceil(count / args.num_shards) if args.num_shards
                 else args.samples_per_shard)
    os.makedirs(args.out_dir, exist_ok=True)
    pattern = os.path.join(args.out_dir, f'{args.prefix}-%04d.tar')
    with wds.ShardWriter(pattern, maxcount=per_shard, verbose=0) as writer:
        for sample in samples(data.images, data.captions, data.text_to_image,
                              args.group_captions):
            writer.write(sample)
        shards = writer.shard
    name = os.path.join(args.out_dir, args.prefix)
    files = f'{name}-0000.tar' if shards == 1 else f'{name}-{{0000..{shards - 1:04d}}}.tar'
    print(f'wrote {count} samples ({len(data.captions)} captions of {len(data.images)} images) '
          f'in {shards} shard{"s" * (shards != 1)}: {files}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Write image-caption sets as open_clip CSVs and a Karpathy-style caption JSON."""
from __future__ import annotations

import csv
import json
import os
from typing import Dict, List


def write_caption_files(out_dir: str, splits: Dict[str, List[dict]], dataset: str) -> None:
    """One tab-separated ``<split>.csv`` (``filepath``, ``title``; a row per caption) per
    non-empty split and ``captions.json`` with every entry.

    ``splits`` maps a split to Karpathy entries ``{filepath, filename, split, imgid,
    sentences: [{raw}]}`` whose images lie in ``out_dir/<filepath>/<filename>``.
    """
    for split, entries in splits.items():
        if not entries:
            continue
        with open(os.path.join(out_dir, f'{split}.csv'), 'w', newline='', encoding='utf-8') as f:
            writer = csv.writer(f, delimiter='\t', lineterminator='\n')
            writer.writerow(['filepath', 'title'])
            for entry in entries:
                for sentence in entry['sentences']:
                    writer.writerow([f'{entry["filepath"]}/{entry["filename"]}', sentence['raw']])
    images = [entry for entries in splits.values() for entry in entries]
    with open(os.path.join(out_dir, 'captions.json'), 'w', encoding='utf-8') as f:
        json.dump({'dataset': dataset, 'images': images}, f, indent=1)

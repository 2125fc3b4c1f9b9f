"""Readers of the classification layouts people have: VTAB-1k list files and VPT's FGVC JSON.

Both are mmpretrain ``BaseDataset`` subclasses registered in mmpretrain's
``DATASETS``. Every problem of the files stops at load with the file, the
line and the fix: a missing list or JSON file, a malformed line, a missing
image, a label outside ``[0, num_classes)``.
"""
from __future__ import annotations

import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

#: The list files of a VTAB-1k task folder (``<split>.txt``).
VTAB_SPLITS = ('train800', 'val200', 'train800val200', 'test')
#: VPT's JSON splits of an FGVC data set (``<split>.json``).
FGVC_SPLITS = ('train', 'val', 'test')
#: Where VPT's ``json_dataset.py`` finds the images of each FGVC data set, under its folder.
FGVC_IMAGE_ROOTS = {'CUB-200-2011': 'images', 'NABirds': 'images', 'Stanford Dogs': 'Images',
                    'Stanford Cars': '', 'Oxford Flowers': ''}


def default_classes(num_classes: int) -> Tuple[str, ...]:
    """Class names ``'0'`` .. ``'K-1'`` for layouts that name no classes."""
    if num_classes < 1:
        raise ValueError(f'num_classes must be >= 1, got {num_classes}; set it to the number '
                         "of the data set's classes.")
    return tuple(str(index) for index in range(num_classes))


def missing_image(image: str, where: str, layout: str) -> FileNotFoundError:
    """The error for a listed ``image`` that is not there: ``where`` (file and line), the
    ``layout``."""
    return FileNotFoundError(f'{where}: image {image} not found; {layout}')


@DATASETS.register_module()
class VTAB1k(BaseDataset):
    """A VTAB-1k task as the PETL projects distribute it (NOAH; used by VPT's follow-ups).

    A folder per task with the list files ``train800.txt``, ``val200.txt``,
    ``train800val200.txt`` and ``test.txt``; each line is ``relative/path label``,
    the path relative to the task folder, the label an integer class index.

    Args:
        data_root (str): The task folder, e.g. ``data/vtab-1k/cifar``.
        split (str): One of :data:`VTAB_SPLITS`.
        num_classes (int): The task's classes; labels must lie in ``[0, num_classes)``.
        pipeline (Sequence[dict]): The data transforms.
        classes (Sequence[str], optional): Class names; default ``'0'`` .. ``'K-1'``.
        **kwargs: Further arguments of mmpretrain's ``BaseDataset`` (``test_mode``, ...).
    """

    def __init__(self, data_root: str, split: str, num_classes: int, pipeline: Sequence = (),
                 classes: Optional[Sequence[str]] = None, **kwargs) -> None:
        if split not in VTAB_SPLITS:
            raise ValueError(f'unknown VTAB-1k split {split!r}; choose from {VTAB_SPLITS}.')
        self.split, self.num_classes = split, num_classes
        super().__init__(ann_file=f'{split}.txt', data_root=data_root, data_prefix='',
                         pipeline=pipeline, classes=classes or default_classes(num_classes),
                         **kwargs)

    def load_data_list(self) -> List[dict]:
        """One ``dict(img_path, gt_label)`` per line of the split's list file."""
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'VTAB-1k list file {self.ann_file} not found. A VTAB-1k task folder holds '
                f'{", ".join(s + ".txt" for s in VTAB_SPLITS)}, each line "relative/path '
                'label" with the path relative to the task folder; set data_root to it.')
        samples = []
        with open(self.ann_file, encoding='utf-8') as lines:
            for number, line in enumerate(lines, 1):
                text = line.strip()
                if not text:
                    continue
                where = f'{self.ann_file}, line {number}'
                parts = text.rsplit(maxsplit=1)
                if len(parts) != 2 or not parts[1].lstrip('-').isdigit():
                    raise ValueError(f'{where}: {text!r} is not "relative/path label" (an image '
                                     'path relative to the task folder, a space, an integer '
                                     'class index).')
                image, label = osp.join(self.img_prefix, parts[0]), int(parts[1])
                if not 0 <= label < self.num_classes:
                    raise ValueError(f'{where}: label {label} is outside [0, {self.num_classes})'
                                     f' ({self.num_classes} classes, num_classes); fix the label '
                                     "or set num_classes to the task's number of classes.")
                if not osp.isfile(image):
                    raise missing_image(image, where,
                                        'the paths are relative to the task folder (data_root).')
                samples.append(dict(img_path=image, gt_label=label))
        if not samples:
            raise ValueError(f'{self.ann_file} lists no images; a VTAB-1k list file has one '
                             '"relative/path label" line per image.')
        return samples


def line_of(path: str, text: str, key: str) -> str:
    """``'path, line N'``: where the JSON key ``key`` appears in ``text``, the content of
    ``path`` (``line ?`` if not found). Found by a scan, so only for an error message."""
    for quoted in (json.dumps(key, ensure_ascii=False), json.dumps(key)):
        position = text.find(quoted + ':')
        if position < 0:
            position = text.find(quoted)
        if position >= 0:
            line = text.count('\n', 0, position) + 1
            return f'{path}, line {line}'
    return f'{path}, line ?'


def read_split_json(path: str) -> Tuple[Dict[str, int], str]:
    """The image -> raw label mapping of a VPT JSON split, and the file's text."""
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'FGVC split file {path} not found. VPT\'s FGVC layout: a folder per data set with '
            f'{", ".join(s + ".json" for s in FGVC_SPLITS)}, each mapping an image path '
            '(relative to the image folder, image_root) to an integer label; set data_root to '
            'that folder.')
    with open(path, encoding='utf-8') as file:
        text = file.read()
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f'{path}, line {error.lineno}: not valid JSON ({error.msg}).') from None
    if not isinstance(mapping, dict) or not mapping:
        raise ValueError(f'{path}, line 1: expected a non-empty JSON object mapping image paths '
                         'to integer labels (VPT\'s train.json / val.json / test.json).')
    for image, label in mapping.items():
        if isinstance(label, bool) or not isinstance(label, int):
            raise ValueError(f'{line_of(path, text, image)}: the label of {image!r} is '
                             f'{label!r}, not an integer.')
    return mapping, text


@DATASETS.register_module()
class FGVCJson(BaseDataset):
    """An FGVC data set with VPT's JSON splits (``train.json``, ``val.json``, ``test.json``).

    Each JSON file maps an image path, relative to ``data_root/image_root``, to
    an integer label. As VPT's ``JSONDataset`` does, the sorted set of labels is
    mapped to ``0..K-1`` (so 1-based labels such as CUB's become 0-based); the
    set is taken over all the split files present, so every split maps a label
    alike. VPT's image folders (:data:`FGVC_IMAGE_ROOTS`): ``images`` for CUB
    and NABirds, ``Images`` for Stanford Dogs, the data set folder itself for
    Stanford Cars and Oxford Flowers.

    Args:
        data_root (str): The data set folder holding the JSON files.
        split (str): One of :data:`FGVC_SPLITS`.
        num_classes (int): The data set's classes; at most this many distinct labels.
        pipeline (Sequence[dict]): The data transforms.
        image_root (str): The image folder under ``data_root``. Default ``''``.
        classes (Sequence[str], optional): Class names; default ``'0'`` .. ``'K-1'``.
        **kwargs: Further arguments of mmpretrain's ``BaseDataset``.
    """

    def __init__(self, data_root: str, split: str, num_classes: int, pipeline: Sequence = (),
                 image_root: str = '', classes: Optional[Sequence[str]] = None,
                 **kwargs) -> None:
        if split not in FGVC_SPLITS:
            raise ValueError(f'unknown FGVC split {split!r}; choose from {FGVC_SPLITS}.')
        self.split, self.num_classes, self.image_root = split, num_classes, image_root
        super().__init__(ann_file=f'{split}.json', data_root=data_root, data_prefix=image_root,
                         pipeline=pipeline, classes=classes or default_classes(num_classes),
                         **kwargs)

    def load_data_list(self) -> List[dict]:
        """One ``dict(img_path, gt_label)`` per entry of the split's JSON file."""
        entries, text = read_split_json(self.ann_file)
        labels = set(entries.values())
        folder = osp.dirname(self.ann_file)
        for other in FGVC_SPLITS:
            path = osp.join(folder, f'{other}.json')
            if path != self.ann_file and osp.isfile(path):
                labels.update(read_split_json(path)[0].values())
        index = {label: rank for rank, label in enumerate(sorted(labels))}
        samples = []
        for image, label in entries.items():
            if index[label] >= self.num_classes:
                raise ValueError(
                    f'{line_of(self.ann_file, text, image)}: label {label} is outside the '
                    f'{self.num_classes} classes of num_classes: the split files hold '
                    f'{len(labels)} distinct labels (mapped in sorted order to '
                    f'0..{len(labels) - 1}, as VPT does); set num_classes to {len(labels)} or '
                    'fix the labels.')
            path = osp.join(self.img_prefix, image)
            if not osp.isfile(path):
                raise missing_image(
                    path, line_of(self.ann_file, text, image), 'the paths are relative to '
                    f'data_root/image_root (image_root={self.image_root!r}); VPT keeps the '
                    f'images of each data set in {FGVC_IMAGE_ROOTS}.')
            samples.append(dict(img_path=path, gt_label=index[label]))
        return samples

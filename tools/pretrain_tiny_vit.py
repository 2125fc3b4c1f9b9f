"""Pretrain the tiny timm ViT on the generated source task (cached); print its checkpoint path.

    python tools/pretrain_tiny_vit.py                 # default recipe, ~6 CPU minutes once
    python tools/pretrain_tiny_vit.py --recipe deep   # 8 blocks, 1200 steps, ~7 CPU minutes
    python tools/pretrain_tiny_vit.py --recipe tiny   # a few steps, for tests

The last stdout line is the timm-format ``vit.safetensors``; the same folder holds
``geometry.json`` (its timm arguments and training log). The cache
root is ``$VAPT_PRETRAIN_CACHE`` or ``~/.cache/vapt_mm/pretrained``.
"""
import argparse
import json

import torch

from vapt_mm.demo.tiny_vit import RECIPES, pretrained_vit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--recipe', choices=sorted(RECIPES), default='default',
                        help='training recipe (tiny: a few steps, for tests)')
    parser.add_argument('--seed', type=int, default=None, help="override the recipe's seed")
    parser.add_argument('--steps', type=int, default=None, help="override the recipe's steps")
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads (1 is fastest on a shared 2-core machine)')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {k: v for k, v in (('seed', args.seed), ('steps', args.steps)) if v is not None}
    folder = pretrained_vit(args.recipe, overrides)
    info = json.loads((folder / 'geometry.json').read_text())
    print(f"timm geometry {info['timm']}; pretrained in {info['train_seconds']} s")
    print(folder / 'vit.safetensors')


if __name__ == '__main__':
    main()

"""Zero-shot image-text retrieval (Recall@1/5/10 both ways) of an open_clip model,
plain or with VAPT prompts.

    python tools/eval_retrieval.py --model ViT-B-32 --pretrained /ckpt/vit_b32.bin \
        --data data/demo_retrieval/captions.json --split test \
        [--vapt-weights work_dirs/run/vapt.safetensors] --output results.json

``--init-prompts vapt`` (or ``vpt-deep``) scores the model with freshly initialised,
untrained prompts: the model prompt tuning starts from (``train_retrieval.py`` with the
same ``--seed`` and ``--prompt`` options builds the same one).
"""
from __future__ import annotations

import argparse
import json
import os

import torch

from vapt_mm.clip import apply_vapt, load_captions, load_vapt
from vapt_mm.clip.cli import add_caption_file_arguments, add_model_arguments, parse_key_values
from vapt_mm.clip.factory import create_clip
from vapt_mm.clip.metrics import format_table, recall_at_k
from vapt_mm.clip.retrieval import embed_caption_set
from vapt_mm.core.config import METHODS
from vapt_mm.clip.visualize import first_captions, save_topk_grid


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Image-text retrieval Recall@K (CLIP_benchmark).')
    add_model_arguments(parser)
    parser.add_argument('--vapt-weights', default=None, help='.safetensors file of save_vapt')
    parser.add_argument('--init-prompts', default=None, choices=METHODS,
                        help='add untrained prompts of this method (what tuning starts from)')
    parser.add_argument('--prompt', nargs='*', default=[], metavar='KEY=VALUE',
                        help='PromptConfig options of --init-prompts, e.g. num_tokens=10')
    parser.add_argument('--seed', type=int, default=0, help='seed of --init-prompts')
    parser.add_argument('--data', required=True, help='.csv/.tsv (open_clip) or caption .json')
    parser.add_argument('--split', default=None, help='split of a caption JSON (default: all)')
    add_caption_file_arguments(parser)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--workers', type=int, default=0)
    parser.add_argument('--chunk-size', type=int, default=1024, help='rows of scores at a time')
    parser.add_argument('--recall-k', type=int, nargs='+', default=[1, 5, 10])
    parser.add_argument('--text-cache', default=None, help='file to keep caption embeddings in')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--output', default=None, help='write the metrics to this JSON file')
    parser.add_argument('--grid', default=None,
                        help='write a PNG of the top-5 images of a few captions to this file')
    parser.add_argument('--grid-queries', type=int, default=4,
                        help='captions in the grid: the first caption of this many images')
    return parser.parse_args()


def describe(args: argparse.Namespace) -> str:
    if args.vapt_weights:
        return f'VAPT {args.vapt_weights}'
    return f'untrained {args.init_prompts} prompts' if args.init_prompts else 'zero-shot'


def main() -> None:
    args = parse_args()
    data = load_captions(args.data, args.split, args.csv_separator, args.csv_img_key,
                         args.csv_caption_key, args.image_root)
    if args.vapt_weights and args.init_prompts:
        raise SystemExit('--vapt-weights and --init-prompts exclude each other: trained prompts '
                         'or untrained ones.')
    torch.manual_seed(args.seed)
    model, _, preprocess, tokenizer = create_clip(
        args.model, args.pretrained, args.model_config, trunk_weights=args.trunk_weights)
    if args.vapt_weights:
        load_vapt(model, args.vapt_weights)
    if args.init_prompts:
        apply_vapt(model, method=args.init_prompts, **parse_key_values(args.prompt))
    model.to(args.device)
    image_emb, text_emb = embed_caption_set(
        model, data, preprocess, tokenizer, torch.device(args.device), args.batch_size,
        args.workers, args.text_cache,
        model_id=f'{args.model}|{args.pretrained}|{args.model_config}')
    metrics = recall_at_k(image_emb, text_emb, torch.tensor(data.text_to_image), args.recall_k,
                          args.chunk_size)
    print(f'{len(data.images)} images, {len(data.captions)} captions; '
          f'{describe(args)}')
    print(format_table(metrics, args.recall_k))
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, 'w') as f:
            json.dump({'model': args.model, 'pretrained': args.pretrained,
                       'vapt_weights': args.vapt_weights, 'init_prompts': args.init_prompts,
                       'data': args.data, 'split': args.split,
                       'num_images': len(data.images), 'num_captions': len(data.captions),
                       'metrics': metrics}, f, indent=2)
    if args.grid:
        queries = first_captions(data, args.grid_queries)
        save_topk_grid(args.grid, data, image_emb, text_emb, queries)
        print(f'top-5 images of {len(queries)} captions: {args.grid}')


if __name__ == '__main__':
    main()

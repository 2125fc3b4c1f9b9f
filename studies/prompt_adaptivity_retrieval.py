"""The retrieval twin of ``prompt_adaptivity.py``: does a VAPT-tuned CLIP use its
input-dependent prompts?

    python studies/prompt_adaptivity_retrieval.py --model vapt-tiny-clip-pt \
        --pretrained CKPT --model-config JSON --data captions.json --split test \
        RUN/vapt.safetensors [RUN2/vapt.safetensors ...]

For each prompt file it scores retrieval (mean of R@1/5/10 both ways, as
``tools/eval_retrieval.py``) as trained, then with every image's generated
prompts replaced by their mean over the split's images (VPT-deep with fixed
prompts), and reports the between-image share of the generated prompts'
variance per generated layer. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prompt_adaptivity import GeneratedPromptStats, report  # noqa: E402

from vapt_mm.clip import load_captions, load_vapt  # noqa: E402
from vapt_mm.clip.cli import add_model_arguments  # noqa: E402
from vapt_mm.clip.factory import create_clip  # noqa: E402
from vapt_mm.clip.metrics import recall_at_k  # noqa: E402
from vapt_mm.clip.retrieval import embed_images, embed_texts  # noqa: E402


def ablate(args: argparse.Namespace, weights: Path, data, text_emb: torch.Tensor) -> dict:
    """Mean recall (%) as trained and with mean generated prompts, and the shares."""
    model, _, preprocess, _ = create_clip(args.model, args.pretrained, args.model_config,
                                          trunk_weights=args.trunk_weights)
    load_vapt(model, str(weights))
    model.eval()
    stats, _ = GeneratedPromptStats.attach(model, weights)
    targets = torch.tensor(data.text_to_image)
    scores = []
    for replace in (False, True):
        stats.replace_by_mean = replace
        image_emb = embed_images(model, data.images, preprocess, torch.device('cpu'),
                                 args.batch_size, 0)
        scores.append(100 * recall_at_k(image_emb, text_emb, targets)['mean_recall'])
    shares = [stats.between_image_share(layer) for layer in sorted(stats.count)]
    return dict(run=weights.parent.name, adaptive=scores[0], mean_prompts=scores[1],
                shares=shares)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument('weights', nargs='+', type=Path, help='VAPT prompt files (save_vapt)')
    parser.add_argument('--data', required=True, help='caption JSON (or open_clip CSV)')
    parser.add_argument('--split', default=None, help='split of a caption JSON')
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--out', type=Path, help='also write the rows as JSON here')
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_captions(args.data, args.split)
    model, _, _, tokenizer = create_clip(args.model, args.pretrained, args.model_config,
                                         trunk_weights=args.trunk_weights)
    text_emb = embed_texts(model.eval(), data.captions, tokenizer, torch.device('cpu'),
                           args.batch_size)  # the text tower has no prompts
    report((ablate(args, weights, data, text_emb) for weights in args.weights), args.out,
           'mean recall')


if __name__ == '__main__':
    main()

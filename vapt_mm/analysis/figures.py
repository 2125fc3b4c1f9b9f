"""Matplotlib figures of the analysis: token-map grids and per-image rows of runs side by side."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

#: Side of one heatmap of the token-map grid, and of one panel of the image rows (inches).
TOKEN_INCHES, PANEL_INCHES = 1.0, 2.6
#: Extra width for the colour bars and height for the titles, and the strip kept free at the
#: right of the image rows for the last colour bar's labels (inches).
MARGIN_INCHES, LABEL_INCHES = 1.0, 0.25
#: Attention colour map; the blank column before the sum is drawn white.
VIRIDIS = colormaps['viridis'].with_extremes(bad='white')


@dataclass
class RunPanels:
    """One run on one image: attention to the prompts (layers, N) and Grad-CAM (H, W)."""

    attention: torch.Tensor
    cam: torch.Tensor


@dataclass
class ImageRow:
    """One image (H, W, 3 uint8) with its title, an optional region (H, W bool), the
    panels of each run, the query tokens of the attention and the target of Grad-CAM."""

    image: np.ndarray
    title: str
    region: Optional[np.ndarray]
    runs: List[RunPanels]
    query: str
    target: str


def token_map_figure(weights: torch.Tensor, layers: Sequence[int], name: str) -> Figure:
    """Heatmaps of the position weights (layers, K, N, H, W): one row per generated layer,
    one column per prompt, a symmetric colour scale and colour bar per row."""
    maps = weights.mean(dim=1).numpy()
    kernels = weights.shape[1]
    rows, cols = maps.shape[:2]
    fig = Figure(figsize=(cols * TOKEN_INCHES + MARGIN_INCHES, rows * TOKEN_INCHES
                          + MARGIN_INCHES), layout='constrained')
    axes = fig.subplots(rows, cols, squeeze=False)
    for row, layer in enumerate(layers):
        bound = float(np.abs(maps[row]).max()) or 1.0
        for col in range(cols):
            ax = axes[row, col]
            image = ax.imshow(maps[row, col], cmap='RdBu_r', vmin=-bound, vmax=bound)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f'prompt {col}', fontsize=8)
            if col == 0:
                ax.set_ylabel(f'layer {layer}', fontsize=8)
        fig.colorbar(image, ax=axes[row, :].tolist(), shrink=0.9, pad=0.01).ax.tick_params(
            labelsize=6)
    mean = f', mean over {kernels} per-channel kernels' if kernels > 1 else ''
    fig.suptitle(f'{name}: effective position weights M[n, p] of the generated prompts '
                 f'(token map x channel-wise conv{mean}) over the {maps.shape[2]}x'
                 f'{maps.shape[3]} reference patch grid', fontsize=9)
    return fig


def with_total(attention: torch.Tensor) -> np.ndarray:
    """(layers, N) attention with a blank column, then its sum over the prompts."""
    values = attention.numpy()
    blank = np.full((len(values), 1), np.nan)
    return np.concatenate([values, blank, values.sum(axis=1, keepdims=True)], axis=1)


def image_rows_figure(rows: Sequence[ImageRow], names: Sequence[str],
                      layers: Sequence[int]) -> Figure:
    """One row per image: the image (region outlined), then per run its attention from the
    row's query tokens to each prompt and to all of them (layers x prompts, then their sum),
    and its Grad-CAM of the row's target; the attention shares a colour scale per row."""
    cols = 1 + 2 * len(names)
    width = cols * PANEL_INCHES
    # Constrained layout lets the last colour bar's labels of fixed-aspect images spill over
    # the right edge; keep a strip free for them.
    fig = Figure(figsize=(width, len(rows) * PANEL_INCHES + MARGIN_INCHES),
                 layout=ConstrainedLayoutEngine(rect=(0, 0, 1 - LABEL_INCHES / width, 1)))
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for r, row in enumerate(rows):
        ax = axes[r, 0]
        ax.imshow(row.image)
        if row.region is not None:
            ax.contour(row.region.astype(float), levels=[0.5], colors='white', linewidths=1)
        ax.set_title(row.title, fontsize=8)
        ax.axis('off')
        top = max(float(p.attention.sum(dim=1).max()) for p in row.runs) or 1.0
        for k, (name, panels) in enumerate(zip(names, row.runs)):
            ax = axes[r, 1 + 2 * k]
            heat = ax.imshow(with_total(panels.attention), cmap=VIRIDIS, vmin=0, vmax=top,
                             aspect='auto')
            num_prompts = panels.attention.shape[1]
            ax.set_yticks(range(len(layers)), [str(i) for i in layers], fontsize=6)
            ax.set_xticks([*range(num_prompts), num_prompts + 1],
                          [*map(str, range(num_prompts)), 'sum'], fontsize=6)
            ax.set_xlabel('prompt', fontsize=7)
            ax.set_ylabel('layer', fontsize=7)
            ax.set_title(f'{name}: attention of\n{row.query} to the prompts', fontsize=8)
            fig.colorbar(heat, ax=ax, shrink=0.9).ax.tick_params(labelsize=6)
            ax = axes[r, 2 + 2 * k]
            ax.imshow(row.image)
            cam = ax.imshow(panels.cam.numpy(), cmap='jet', alpha=0.5, vmin=0, vmax=1)
            ax.set_title(f'{name}: Grad-CAM of\n{row.target}', fontsize=8)
            ax.axis('off')
            fig.colorbar(cam, ax=ax, shrink=0.9).ax.tick_params(labelsize=6)
    fig.suptitle('Where the prompts look: attention weight on each prompt and on all prompts per '
                 'layer\n(mean over heads and query tokens); Grad-CAM at the input of the last '
                 'block (scaled to a maximum of 1)', fontsize=9)
    return fig


def save_figure(fig: Figure, path: str, dpi: int) -> str:
    """Write ``fig`` as a PNG of exactly figsize x ``dpi`` pixels; returns ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi, format='png')
    return path

"""Command-line options shared by the retrieval tools."""
import argparse
import json
from typing import Any, Dict, Sequence


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--pretrained``, ``--model-config``, ``--trunk-weights`` (``create_clip``)."""
    parser.add_argument('--model', required=True, help='open_clip model name')
    parser.add_argument('--pretrained', default=None,
                        help='pretrained tag or local checkpoint file')
    parser.add_argument('--model-config', default=None, help='extra open_clip model config JSON')
    parser.add_argument('--trunk-weights', default=None,
                        help='backbone weights for a timm ViT image trunk (.npz, DINOv2, ...)')


def add_caption_file_arguments(parser: argparse.ArgumentParser) -> None:
    """How to read an open_clip CSV and where relative image paths start."""
    parser.add_argument('--csv-separator', default='\t')
    parser.add_argument('--csv-img-key', default='filepath')
    parser.add_argument('--csv-caption-key', default='title')
    parser.add_argument('--image-root', default=None, help='folder of relative image paths')


def parse_key_values(items: Sequence[str], option: str = '--prompt') -> Dict[str, Any]:
    """``KEY=VALUE`` strings -> a dict, values read as JSON where they parse (10, true, 0.1)."""
    options: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep:
            raise SystemExit(f'{option} expects KEY=VALUE, got {item!r}.')
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options

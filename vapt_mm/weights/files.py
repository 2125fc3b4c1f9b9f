"""Reading weight files without running pickled code: torch, safetensors and NumPy ``.npz``."""
from __future__ import annotations

import os
import pickle
import zipfile
from typing import Any, Dict

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file


def is_npz(path: str) -> bool:
    """True for a NumPy ``.npz`` archive (a zip of ``.npy`` members), whatever its name."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return bool(names) and all(name.endswith('.npy') for name in names)


def is_complete(path: str) -> bool:
    """Whether ``path`` is a whole torch checkpoint: its zip directory, written
    last, reads (a truncated or half-copied file has none)."""
    try:
        with zipfile.ZipFile(path):
            return True
    except (OSError, zipfile.BadZipFile):
        return False


def read_checkpoint(path: str) -> Dict[str, Any]:
    """Load a ``.safetensors`` or torch file on the CPU without running pickled code.

    Torch files are read with ``weights_only=True``: tensors, plain containers
    and the types registered with ``torch.serialization.add_safe_globals``
    (``import vapt_mm`` adds mmengine's, see ``vapt_mm.seg.safe_pickle``).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist.')
    if is_npz(path):
        raise ValueError(f'{path} is a NumPy .npz archive, not a torch or .safetensors '
                         'checkpoint; a Google ViT .npz loads as pretrained backbone weights '
                         "(VAPTBackbone init_cfg, or create_clip's trunk_weights).")
    if path.endswith('.safetensors'):
        try:
            return load_file(path, device='cpu')
        except SafetensorError as error:
            raise RuntimeError(f'refused to load {path}: it is not a complete .safetensors file '
                               f'({error}); download or save it again.') from error
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        if 'GLOBAL' in str(error.__context__):  # torch names the blocked global
            raise RuntimeError(f'refused to load {path}: it is not a plain weights file (the '
                               f'pickle holds objects outside the allow-list). {error}') from error
        raise RuntimeError(f'refused to load {path}: it is not a torch file ({error.__context__}); '
                           'pass a torch (.pth), .safetensors or Google .npz file.') from error
    except (RuntimeError, EOFError) as error:
        raise RuntimeError(f'refused to load {path}: it is not a complete torch file ({error}); '
                           'it may be truncated: download or save it again.') from error
